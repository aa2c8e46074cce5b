"""
The live tail: records as they are written, to subscribers (browsers).

L{TeeSink} wraps the output's sink: whatever bytes it writes (the very
bytes of the output file) it also hands to a L{Tail}.  Sinks write in the
writer thread, so the bytes cross to the reactor thread with
C{callFromThread}, and only while someone subscribes, and only up to
C{limit} bytes in flight: beyond that they are counted and skipped, never
queued without bound.

Each subscriber is told the records one line at a time.  A subscriber whose
connection cannot keep up is paused by its transport; while paused it skips
records (and is told how many), so a slow browser costs no memory.
"""

from __future__ import annotations

import threading
from typing import Callable, List, Optional, Set

from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from zope.interface import Interface, implementer

from .sinks import IRecordSink

IN_FLIGHT = 4 * 1024 * 1024
"""Bytes of records that may wait to cross from the writer thread."""

KEEPALIVE = 15.0
"""Seconds between keep-alive comments to idle subscribers."""


class ITailSubscriber(Interface):
    """
    Someone watching the records.
    """

    def records(lines: List[bytes]) -> None:
        """
        Whole records, each without its final LF.
        """

    def keepalive() -> None:
        """
        Nothing happened for a while: show the connection is alive.
        """


class Tail:
    """
    Records as written, to whoever subscribes.

    @ivar subscribers: who is watching.
    @ivar skippedBytes: bytes not passed on because too many were in flight.
    """

    def __init__(self, clock: IReactorTime, callFromThread: Callable[..., object], limit: int = IN_FLIGHT) -> None:
        self.clock = clock
        self.callFromThread = callFromThread
        self.limit = limit
        self.subscribers: Set[ITailSubscriber] = set()
        self.skippedBytes = 0
        self._lock = threading.Lock()
        self._inFlight = 0
        self._partial = b""
        self._keepalive: Optional[LoopingCall] = None

    def subscribe(self, subscriber: ITailSubscriber) -> None:
        """
        Start telling C{subscriber} the records written from now on.
        """
        self.subscribers.add(subscriber)
        if self._keepalive is None:
            self._keepalive = LoopingCall(self._ping)
            self._keepalive.clock = self.clock
            self._keepalive.start(KEEPALIVE, now=False)

    def unsubscribe(self, subscriber: ITailSubscriber) -> None:
        """
        Stop telling C{subscriber}.
        """
        self.subscribers.discard(subscriber)
        if not self.subscribers and self._keepalive is not None:
            self._keepalive.stop()
            self._keepalive = None

    def _ping(self) -> None:
        for subscriber in list(self.subscribers):
            subscriber.keepalive()

    def written(self, data: bytes) -> None:
        """
        C{data} was written to the output (called in the writer thread).
        """
        if not self.subscribers:
            return
        with self._lock:
            if self._inFlight + len(data) > self.limit:
                self.skippedBytes += len(data)
                return
            self._inFlight += len(data)
        self.callFromThread(self._publish, data)

    def _publish(self, data: bytes) -> None:
        with self._lock:
            self._inFlight -= len(data)
        if self._partial:
            data = self._partial + data
        lines = data.split(b"\n")
        partial = lines.pop()
        # A partial record can only follow a short write; it is bounded
        # by the record it is part of.
        self._partial = partial if len(partial) <= self.limit else b""
        if not lines:
            return
        for subscriber in list(self.subscribers):
            subscriber.records(lines)


@implementer(IRecordSink)
class TeeSink:
    """
    A sink that writes to another and tells a L{Tail} what was written.
    """

    def __init__(self, sink: IRecordSink, tail: Tail) -> None:
        self.sink = sink
        self.tail = tail

    def write(self, data: bytes) -> int:
        """
        Write to the sink; pass on what it took.
        """
        written = self.sink.write(data)
        if written > 0:
            self.tail.written(data if written >= len(data) else data[:written])
        return written

    @property
    def writeError(self) -> Optional[OSError]:
        """
        The sink's error that stopped the last write short.
        """
        return self.sink.writeError

    def sync(self) -> None:
        """
        Sync the sink.
        """
        self.sink.sync()

    def reopen(self) -> None:
        """
        Reopen the sink.
        """
        self.sink.reopen()

    def close(self) -> None:
        """
        Close the sink.
        """
        self.sink.close()
