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
from collections import deque
from typing import Any, Callable, Deque, Optional, Tuple, TypeVar

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

    def poll() -> None:
        """
        Fire now, in the reactor thread, the L{Deferred}s of operations that
        have finished, rather than on the reactor's next turn.
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

    def poll(self) -> None:
        """
        Nothing waits: results are delivered at once.
        """


_STOP = object()


@implementer(IWriter)
class ThreadWriter:
    """
    Run operations in order in one daemon thread.

    The thread is a daemon so that a write blocked for good (a pipe nobody
    reads) cannot keep the process from exiting.

    Finished operations wait in a queue of results that the reactor thread
    empties on its next turn, or sooner through L{poll}: a reactor turn that
    reads a thousand connections at once would otherwise leave the writer
    idle until the turn ends, however long the turn.
    """

    def __init__(self, reactor: IReactorFromThreads, name: str = "linelogger-writer") -> None:
        self._reactor = reactor
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: Optional[threading.Thread] = None
        self._name = name
        # (deferred, succeeded, result or failure), oldest first; appended by
        # the writer thread, emptied by the reactor thread only.
        self._done: Deque[Tuple[Deferred[Any], bool, Any]] = deque()

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

    def poll(self) -> None:
        """
        Fire the L{Deferred}s of the operations that have finished, in
        order.  Call from the reactor thread only.
        """
        done = self._done
        while done:
            d, succeeded, result = done.popleft()
            if succeeded:
                d.callback(result)
            else:
                d.errback(result)

    def _work(self) -> None:
        callFromThread = self._reactor.callFromThread
        done = self._done
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            d, operation, args = item
            try:
                result = operation(*args)
            except BaseException:
                done.append((d, False, Failure()))
            else:
                done.append((d, True, result))
            callFromThread(self.poll)
