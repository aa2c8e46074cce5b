"""
Writers: where sink operations run.

Writing to a file or a pipe can block: a slow disk, a reader that stopped
reading.  The recorder therefore never calls a sink from the reactor thread
in the service: L{ThreadWriter} runs sink operations one at a time, in
order, in a thread of its own, and reports each result back to the reactor
thread.  A write stuck in the kernel then stalls only that thread, while the
reactor goes on reading, counting and, when the output's buffer is full,
pausing clients.

L{ImmediateWriter} runs operations at once in the caller's thread; unit
tests drive the recorder with it and a L{Clock}.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Optional, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

T = TypeVar("T")


class IWriter(Interface):
    """
    Runs operations on a sink one at a time, in submission order.
    """

    def run(operation: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """
        Run C{operation(*args)} after everything submitted before it.

        @return: a L{Deferred} firing, in the reactor thread, with its
            result or failure.
        """

    def stop() -> None:
        """
        Run nothing more after what is already submitted.
        """


@implementer(IWriter)
class ImmediateWriter:
    """
    Run each operation at once, in the calling thread.
    """

    def run(self, operation: Callable[..., T], *args: Any) -> Deferred[T]:
        """
        Run C{operation(*args)} now.
        """
        try:
            return succeed(operation(*args))
        except BaseException:
            return fail(Failure())

    def stop(self) -> None:
        """
        Nothing to stop.
        """


_STOP = object()


@implementer(IWriter)
class ThreadWriter:
    """
    Run operations in order in one daemon thread.

    The thread is a daemon so that a write blocked for good (a pipe nobody
    reads) cannot keep the process from exiting.
    """

    def __init__(self, reactor: IReactorFromThreads, name: str = "linelogger-writer") -> None:
        self._reactor = reactor
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._name = name

    def run(self, operation: Callable[..., T], *args: Any) -> Deferred[T]:
        """
        Queue C{operation(*args)} for the writer thread.
        """
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        d: Deferred[T] = Deferred()
        self._queue.put((d, operation, args))
        return d

    def stop(self) -> None:
        """
        Let the thread end once it has run what was queued.
        """
        if self._thread is not None:
            self._queue.put(_STOP)

    def _work(self) -> None:
        callFromThread = self._reactor.callFromThread
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            d, operation, args = item
            try:
                result = operation(*args)
            except BaseException:
                callFromThread(d.errback, Failure())
            else:
                callFromThread(d.callback, result)
