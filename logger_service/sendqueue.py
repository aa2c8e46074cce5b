"""
What waits to be sent to one client: a bounded queue in front of its
transport.
"""

from __future__ import annotations

from typing import Callable, List

from twisted.internet.interfaces import IPushProducer, ITransport
from zope.interface import implementer

from .sendnow import sendNow


@implementer(IPushProducer)
class SendQueue:
    """
    What waits to be sent to one client, bounded.

    Registered as a streaming producer on the client's transport: while the
    transport's own buffer is full it pauses us, and data waits here.
    Otherwise data goes out at once (L{sendNow}).  Once
    more than C{limit} bytes wait, C{overflow} is called.

    @ivar size: bytes waiting here.
    """

    def __init__(self, transport: ITransport, limit: int, overflow: Callable[[], None]) -> None:
        self.transport = transport
        self.limit = limit
        self.overflow = overflow
        self.paused = False
        self.size = 0
        self._queue: List[bytes] = []
        self._write = sendNow(transport)
        transport.registerProducer(self, True)  # type: ignore[attr-defined]

    def write(self, data: bytes) -> None:
        """
        Send C{data}, or queue it while the transport is full.
        """
        if not self.paused:
            self._write(data)
            return
        self._queue.append(data)
        self.size += len(data)
        if self.size > self.limit:
            self.overflow()

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: queue from now on.
        """
        self.paused = True

    def resumeProducing(self) -> None:
        """
        The transport has room again: hand it what waits.
        """
        self.paused = False
        if self._queue:
            data = b"".join(self._queue)
            self._queue = []
            self.size = 0
            self._write(data)

    def stopProducing(self) -> None:
        """
        The connection is going: drop what waits.
        """
        self.paused = True
        self._queue = []
        self.size = 0
