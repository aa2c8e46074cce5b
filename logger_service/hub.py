"""
The hub: the set of open connections, and where their lines go.

Protocols register with the hub when they connect and hand it every batch of
lines they frame; the hub passes them to the recorder.  At shutdown the hub
drains: it keeps reading each open connection until it has everything the
kernel had received for it when the shutdown began, then records any partial
lines, closes the connections and closes the recorder.

The drain counts bytes where the kernel counts them: on the socket, below
any TLS or PROXY-protocol layer (see L{InputDrain}).  What TLS clients send
is counted as ciphertext there, and every complete TLS record among those
bytes is decrypted and handed on before the count is reached, so nothing a
client of any transport sent before the signal is left unread.
"""

from __future__ import annotations

import fcntl
import itertools
import termios
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence

from twisted.application.service import Service
from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .limits import ConnectionLimits
from .recorder import Recorder
from .records import RecordContext, formatPeer

if TYPE_CHECKING:
    from .connlog import ConnectionLog
    from .protocol import LineLoggerProtocol

log = Logger()


class Hub:
    """
    Connections and their records.

    @ivar recorder: where lines go.
    @ivar limits: who may connect.
    @ivar connections: the open connections, by connection id.
    @ivar inputPaused: whether reading is paused for the output's sake.
    @ivar connectionsTotal: connections accepted since start.
    @ivar refused: connections refused, by reason.
    @ivar linesReceived: lines received since start.
    @ivar bytesReceived: bytes received since start.
    @ivar oversizeLines: lines longer than C{--max-line-length}, on closed
        connections (open ones keep their own count in their framer).
    @ivar droppedBytes: bytes C{--long-lines truncate} or C{close} dropped,
        on closed connections.
    @ivar idleTimeouts: connections closed for being idle.
    @ivar lineTimeouts: connections closed for holding an unfinished line
        too long (C{--line-timeout}).
    @ivar awaitingHeader: connections behind a PROXY-protocol listener
        whose header has not come yet (not yet in C{connections}), by
        C{id()}.
    @ivar framingErrors: connections whose octet-counted framing broke.
    @ivar inputPauses: times input was paused because the output was behind.
    @ivar rateDelays: times a connection was paused by C{--max-rate}.
    """

    def __init__(self, recorder: Recorder, limits: Optional[ConnectionLimits] = None) -> None:
        self.recorder = recorder
        self.limits = limits if limits is not None else ConnectionLimits()
        self.connections: Dict[int, LineLoggerProtocol] = {}
        self.inputPaused = False
        self.connectionsTotal = 0
        self.refused: Dict[str, int] = {}
        self.linesReceived = 0
        self.bytesReceived = 0
        self.oversizeLines = 0
        self.droppedBytes = 0
        self.idleTimeouts = 0
        self.lineTimeouts = 0
        self.awaitingHeader: Dict[int, LineLoggerProtocol] = {}
        self.framingErrors = 0
        self.inputPauses = 0
        self.rateDelays = 0
        self._perHost: Dict[str, int] = {}
        self._ids = itertools.count(1)
        self._refusalLog = LogThrottle(log, interval=10.0)
        self._pressureLog = LogThrottle(log, interval=60.0)
        recorder.onPressure = self._pressure
        recorder.onDurable = self._durable

    def admit(self, address: object) -> Optional[str]:
        """
        Decide whether a new connection from C{address} may stay.

        @return: C{None}, or the message to send the client before closing;
            refusals are counted and logged.
        """
        host = getattr(address, "host", None)
        # Connections waiting for their PROXY header hold descriptors too.
        openInAll = len(self.connections) + len(self.awaitingHeader)
        refusal = self.limits.refusal(host, openInAll, self._perHost.get(host, 0) if host else 0)
        if refusal is None:
            return None
        reason, message = refusal
        self.refuse(reason, address, message)
        return message

    def refuse(self, reason: str, address: object, message: str) -> None:
        """
        Count and log (at most once per 10 seconds per reason) a connection
        from C{address} refused for C{reason}.
        """
        host = getattr(address, "host", None)
        self.refused[reason] = self.refused.get(reason, 0) + 1
        self._refusalLog.warn(
            reason, "Refused a connection from {host}: {message}", host=host, message=message, reason=reason
        )

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
        host = getattr(peer, "host", None)
        if host is not None:
            self._perHost[host] = self._perHost.get(host, 0) + 1
        if isinstance(peer, UNIXAddress) and not peer.name:
            # An unbound UNIX client has no name: show the socket it came in on.
            peer = transport.getHost()
        if self.inputPaused:
            protocol.pauseReading("output")
        return RecordContext(formatPeer(peer, conn), conn, host=host)

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
        if self.connections.pop(context.conn, None) is not None and context.host is not None:
            left = self._perHost[context.host] - 1
            if left:
                self._perHost[context.host] = left
            else:
                del self._perHost[context.host]

    def _pressure(self, paused: bool) -> None:
        """
        The output is full or failing (or has recovered): pause (or resume)
        reading from every client.
        """
        self.inputPaused = paused
        if paused:
            self.inputPauses += 1
            # A burst can pause input for a moment many times a minute: say
            # so at most once a minute, with the count.
            self._pressureLog.warn(
                "pressure",
                "Output is behind ({pending} bytes waiting): pausing input from {count} connections",
                pending=self.recorder.pendingBytes,
                count=len(self.connections),
            )
        for protocol in list(self.connections.values()):
            if paused:
                protocol.pauseReading("output")
            else:
                protocol.resumeReading("output")

    def _durable(self, counts: Dict[int, int]) -> None:
        """
        Tell each connection how many more of its lines are safely written.
        """
        connections = self.connections
        for conn, count in counts.items():
            protocol = connections.get(conn)
            if protocol is not None:
                protocol.acknowledge(count)


class LogThrottle:
    """
    Log an event at most once per interval for each key, saying how many
    like it were left out, so that a flood of refusals cannot flood the log.
    """

    def __init__(self, logger: Logger, interval: float, clock: Optional[IReactorTime] = None) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        self._last: Dict[str, float] = {}
        self._suppressed: Dict[str, int] = {}

    def _now(self) -> float:
        if self.clock is not None:
            return self.clock.seconds()
        return time.monotonic()

    def warn(self, key: str, format: str, **kwargs: object) -> None:
        """
        Log C{format} as a warning unless one for C{key} went out within the
        interval.
        """
        now = self._now()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            format += " ({suppressed} more like it not logged)"
        self.logger.warn(format, suppressed=suppressed, **kwargs)


def socketLayer(transport: Any) -> Any:
    """
    The transport at the bottom of C{transport}'s stack: the one that reads
    the socket.  A TLS or PROXY-protocol layer is a protocol wrapper that
    is the transport of the protocol above it and keeps the transport below
    it as its own C{transport}.
    """
    for _ in range(8):
        # From the instance itself: a protocol wrapper would pass a missing
        # attribute on to the transport below it.
        below = vars(transport).get("transport") if hasattr(transport, "__dict__") else None
        if below is None:
            break
        transport = below
    return transport


def pendingInput(protocol: LineLoggerProtocol) -> int:
    """
    How many bytes the kernel holds, not yet read, for C{protocol}'s socket
    (below any TLS or PROXY-protocol layer).

    @return: the count, or 0 where the transport has no socket to ask.
    """
    try:
        fileno = socketLayer(protocol.transport).getHandle().fileno()
        buf = fcntl.ioctl(fileno, termios.FIONREAD, b"\0\0\0\0")
    except (AttributeError, OSError, ValueError, TypeError):
        return 0
    return int.from_bytes(buf, "little", signed=True)


class InputDrain:
    """
    Count the bytes one connection's socket delivers from now on, and say
    when C{pending} of them have come.

    The count is taken where the socket's transport hands its bytes to the
    protocol above it: to the line protocol itself on plain TCP, UNIX or an
    adopted socket; to Twisted's TLS or PROXY-protocol wrapper otherwise.
    That protocol's C{dataReceived} is shadowed, on that instance and only
    while the drain lasts, by L{dataReceived}.  The wrapper has done with
    the bytes when its C{dataReceived} returns: Twisted's TLS layer
    decrypts every complete record they hold (reading until OpenSSL has
    nothing more to give) and hands the plaintext on at once, and the PROXY
    layer hands on whatever follows the header, so when the count is
    reached the line protocol has had all that the client sent before.

    @ivar protocol: the line protocol being drained.
    @ivar receiver: the protocol the socket's transport delivers to.
    @ivar left: bytes still to come.
    """

    def __init__(self, protocol: LineLoggerProtocol, pending: int, done: Callable[[], None]) -> None:
        self.protocol = protocol
        bottom = socketLayer(protocol.transport)
        receiver = getattr(bottom, "protocol", None)
        self.receiver: Any = protocol
        if receiver is not None:
            self.receiver = receiver
        self.left = pending
        self._done: Optional[Callable[[], None]] = done
        self._original = self.receiver.dataReceived
        self.receiver.dataReceived = self.dataReceived

    def dataReceived(self, data: bytes) -> None:
        """
        Count C{data}, hand it on, and end the drain once all has come.
        """
        self.left -= len(data)
        self._original(data)
        if self.left <= 0:
            self.stop()

    def stop(self) -> None:
        """
        Stop counting (the count was reached, or the connection is gone),
        and say so, once.
        """
        if vars(self.receiver).get("dataReceived") == self.dataReceived:
            del self.receiver.dataReceived
        done, self._done = self._done, None
        if done is not None:
            done()


class HubService(Service):
    """
    Stops the hub cleanly: drain, record, close.

    Put it in the service tree before the listeners, so that a
    L{MultiService} stops the listeners first.

    @ivar drainTimeout: the longest a shutdown waits for input to drain, and
        then again for the output to take the last records.
    @ivar connectionLog: the connection log whose pending summary is logged
        once the last connections are closed, or C{None}.
    """

    def __init__(
        self,
        hub: Hub,
        clock: IReactorTime,
        drainTimeout: float = 30.0,
        connectionLog: Optional[ConnectionLog] = None,
    ) -> None:
        self.hub = hub
        self.clock = clock
        self.drainTimeout = drainTimeout
        self.connectionLog = connectionLog
        self._stopped: Optional[Deferred[None]] = None
        self._waiting: Dict[int, InputDrain] = {}
        self._timeout: Optional[IDelayedCall] = None

    def stopService(self) -> Deferred[None]:
        """
        Read what the open connections already sent, record it, close the
        connections, and wait until the records are written.
        """
        Service.stopService(self)
        stopped: Deferred[None] = Deferred()
        self._stopped = stopped
        # Connections still waiting for their PROXY header too: what they
        # sent is as much before the signal as what the others sent.
        for protocol in list(self.hub.connections.values()) + list(self.hub.awaitingHeader.values()):
            pending = pendingInput(protocol)
            if protocol.closing is not None:
                # This side is closing it, and reads nothing more from it.
                continue
            if pending > 0:
                key = id(protocol)
                progress = lambda key=key: self._progress(key)  # noqa: E731
                self._waiting[key] = InputDrain(protocol, pending, progress)
                protocol.drain(progress)
            else:
                # What it sends from now on was sent after the signal.
                protocol.pauseReading("stopping")
        if self._waiting:
            log.info("Stopping: reading what {count} connections already sent", count=len(self._waiting))
            self._timeout = self.clock.callLater(self.drainTimeout, self._finish)
        else:
            self._finish()
        return stopped

    def _progress(self, key: int) -> None:
        """
        The connection whose C{id()} is C{key} has delivered all it had, or
        closed: stop reading it, so that the connections still draining get
        the time.
        """
        drain = self._waiting.pop(key, None)
        if drain is None:
            return
        drain.stop()
        drain.protocol.pauseReading("stopping")
        if not self._waiting and self._timeout is not None:
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
            for drain in list(self._waiting.values()):
                drain.stop()
            self._waiting.clear()
        for protocol in list(self.hub.connections.values()):
            protocol.finish("server shutting down")
        for protocol in list(self.hub.awaitingHeader.values()):
            # No header yet, so no lines either.
            protocol.closeUnstarted()
        if self.connectionLog is not None:
            # Those disconnections may be waiting for a summary that the
            # reactor would not live to run.
            self.connectionLog.stop()
        stopped, self._stopped = self._stopped, None
        assert stopped is not None
        self.hub.recorder.close(self.drainTimeout).addBoth(lambda _: stopped.callback(None))
