"""
The hub: the set of open connections, and where their lines go.

Protocols register with the hub when they connect and hand it every batch of
lines they frame; the hub passes them to the recorder.  At shutdown the hub
drains: it keeps reading each open connection until it has everything the
kernel had received for it when the shutdown began, then records any partial
lines, closes the connections and closes the recorder.
"""

from __future__ import annotations

import fcntl
import itertools
import termios
from typing import TYPE_CHECKING, Dict, Optional, Sequence

from twisted.application.service import Service
from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .recorder import Recorder
from .records import RecordContext, formatPeer

if TYPE_CHECKING:
    from .protocol import LineLoggerProtocol

log = Logger()


class Hub:
    """
    Connections and their records.

    @ivar connections: the open connections, by connection id.
    @ivar connectionsTotal: connections accepted since start.
    @ivar linesReceived: lines received since start.
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.connections: Dict[int, LineLoggerProtocol] = {}
        self.connectionsTotal = 0
        self.linesReceived = 0
        self._ids = itertools.count(1)

    def connected(self, protocol: LineLoggerProtocol) -> RecordContext:
        """
        Register a new connection.

        @return: the context its records carry.
        """
        conn = next(self._ids)
        self.connections[conn] = protocol
        self.connectionsTotal += 1
        transport = protocol.transport
        peer = transport.getPeer()
        if isinstance(peer, UNIXAddress) and not peer.name:
            # An unbound UNIX client has no name: show the socket it came in on.
            peer = transport.getHost()
        return RecordContext(formatPeer(peer, conn), conn)

    def received(self, context: RecordContext, lines: Sequence[bytes]) -> None:
        """
        Record C{lines}, just received on the connection of C{context}.
        """
        self.linesReceived += len(lines)
        self.recorder.record(context, lines)

    def disconnected(self, context: RecordContext) -> None:
        """
        Forget a closed connection.
        """
        self.connections.pop(context.conn, None)


def pendingInput(protocol: LineLoggerProtocol) -> int:
    """
    How many bytes the kernel holds, not yet read, for C{protocol}'s socket.

    @return: the count, or 0 where the transport has no socket to ask.
    """
    try:
        fileno = protocol.transport.getHandle().fileno()  # type: ignore[attr-defined]
        buf = fcntl.ioctl(fileno, termios.FIONREAD, b"\0\0\0\0")
    except (AttributeError, OSError, ValueError):
        return 0
    return int.from_bytes(buf, "little", signed=True)


class HubService(Service):
    """
    Stops the hub cleanly: drain, record, close.

    Put it in the service tree before the listeners, so that a
    L{MultiService} stops the listeners first.

    @ivar drainTimeout: the longest a shutdown waits for input to drain.
    """

    def __init__(self, hub: Hub, clock: IReactorTime, drainTimeout: float = 30.0) -> None:
        self.hub = hub
        self.clock = clock
        self.drainTimeout = drainTimeout
        self._drained: Optional[Deferred[None]] = None
        self._waiting: Dict[int, int] = {}
        self._timeout: Optional[IDelayedCall] = None

    def stopService(self) -> Deferred[None]:
        """
        Read what the open connections already sent, record it, and close.
        """
        Service.stopService(self)
        for conn, protocol in list(self.hub.connections.items()):
            pending = pendingInput(protocol)
            if pending > 0:
                self._waiting[conn] = protocol.bytesReceived + pending
                protocol.drainTarget(self._waiting[conn], self._progress)
            else:
                # What it sends from now on was sent after the signal.
                protocol.transport.pauseProducing()
        if not self._waiting:
            self._finish()
            return succeed(None)
        log.info(
            "Stopping: reading what {count} connections already sent",
            count=len(self._waiting),
        )
        self._drained = Deferred()
        self._timeout = self.clock.callLater(self.drainTimeout, self._finish)
        return self._drained

    def _progress(self, conn: int) -> None:
        """
        Connection C{conn} has delivered all it had, or closed: stop reading
        it, so that the connections still draining get the time.
        """
        self._waiting.pop(conn, None)
        protocol = self.hub.connections.get(conn)
        if protocol is not None:
            protocol.transport.pauseProducing()
        if not self._waiting and self._drained is not None:
            self._finish()

    def _finish(self) -> None:
        if self._timeout is not None and self._timeout.active():
            self._timeout.cancel()
        self._timeout = None
        if self._waiting:
            log.warn(
                "Stopping: {count} connections still had unread input after {timeout}s",
                count=len(self._waiting),
                timeout=self.drainTimeout,
            )
            self._waiting.clear()
        for protocol in list(self.hub.connections.values()):
            protocol.finish("server shutting down")
        self.hub.recorder.close()
        drained, self._drained = self._drained, None
        if drained is not None:
            drained.callback(None)
