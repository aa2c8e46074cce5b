"""
The hub: the registry of open connections, who may connect, and where their
lines go.

Connections (L{IConnection}) register with the hub when they start and hand
it every batch of lines they frame; the hub passes them to the recorder
(L{IRecorder}).  The hub listens to the recorder (L{IRecordListener}): it
pauses and resumes reading from every connection as the output fills and
drains, and hands each connection the count of its lines that are written.
The shutdown drain is in L{logger_service.drain}.
"""

from __future__ import annotations

import itertools
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from twisted.internet.address import UNIXAddress
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from .connlog import LogThrottle
from .counters import Counters
from .interfaces import IConnection, IHub, IRecorder, IRecordListener
from .limits import ConnectionLimits
from .records import RecordContext, formatPeer

log = Logger()


@implementer(IHub, IRecordListener)
class Hub:
    """
    Connections and their records.

    @ivar recorder: where lines go.
    @ivar limits: who may connect.
    @ivar clock: the clock of timeouts and rates (the recorder's unless
        another is given).
    @ivar counters: the counters the hub, and the connections, add to.
    @ivar connections: the open connections, by connection id.
    @ivar inputPaused: whether reading is paused for the output's sake.
    @ivar awaitingHeader: connections behind a PROXY-protocol listener
        whose header has not come yet (not yet in C{connections}), by
        C{id()}.
    """

    def __init__(
        self,
        recorder: IRecorder,
        limits: Optional[ConnectionLimits] = None,
        clock: Optional[IReactorTime] = None,
        counters: Optional[Counters] = None,
    ) -> None:
        self.recorder = recorder
        self.limits = limits if limits is not None else ConnectionLimits()
        self.clock: IReactorTime = clock if clock is not None else recorder.clock
        self.counters = counters if counters is not None else Counters()
        self.connections: Dict[int, IConnection] = {}
        self.inputPaused = False
        self.awaitingHeader: Dict[int, IConnection] = {}
        self._perHost: Dict[str, int] = {}
        self._ids: Iterator[int] = itertools.count(1)
        self._refusalLog = LogThrottle(log, interval=10.0, clock=self.clock)
        self._pressureLog = LogThrottle(log, interval=60.0, clock=self.clock)
        recorder.listen(self)
        self._registerReadings()

    def _registerReadings(self) -> None:
        """
        Register what the counters read of the hub and its recorder.
        """
        counters, recorder = self.counters, self.recorder
        counters.register("connectionsOpen", lambda: len(self.connections))
        counters.register("inputPaused", lambda: 1 if self.inputPaused else 0)
        counters.register("openOversizeLines", lambda: sum(counts[0] for counts in self._openLineCounts()))
        counters.register("openDroppedBytes", lambda: sum(counts[1] for counts in self._openLineCounts()))
        counters.registerOutput(recorder)

    def _openLineCounts(self) -> List[Tuple[int, int]]:
        """
        The long-line counts of the open connections, not yet in the
        counters.
        """
        return [connection.lineCounts() for connection in self.connections.values()]

    def connectionIds(self, ids: Iterator[int]) -> None:
        """
        Number connections from C{ids} from now on (a worker process takes
        every Nth number, so that numbers are unique across the workers).
        """
        self._ids = ids

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
        refused = self.counters.refused
        refused[reason] = refused.get(reason, 0) + 1
        self._refusalLog.warn(
            reason, "Refused a connection from {host}: {message}", host=host, message=message, reason=reason
        )

    def awaitHeader(self, connection: IConnection) -> None:
        """
        C{connection} waits for its PROXY header: known to the hub, so that
        it counts against the limits and a shutdown drains what it sent.
        """
        self.awaitingHeader[id(connection)] = connection

    def headerDone(self, connection: IConnection) -> None:
        """
        C{connection} no longer waits for its PROXY header (it came, or the
        connection is gone).
        """
        self.awaitingHeader.pop(id(connection), None)

    def connected(self, connection: IConnection) -> RecordContext:
        """
        Register a new connection.

        @return: the context its records carry.
        """
        conn = next(self._ids)
        self.connections[conn] = connection
        self.counters.connectionsTotal += 1
        transport = connection.transport
        peer = transport.getPeer()
        host = getattr(peer, "host", None)
        if host is not None:
            self._perHost[host] = self._perHost.get(host, 0) + 1
        if isinstance(peer, UNIXAddress) and not peer.name:
            # An unbound UNIX client has no name: show the socket it came in on.
            peer = transport.getHost()
        if self.inputPaused:
            connection.pauseReading("output")
        return RecordContext(formatPeer(peer, conn), conn, host=host)

    def received(self, context: RecordContext, lines: Sequence[bytes]) -> None:
        """
        Record C{lines}, just received on the connection of C{context}.
        """
        self.counters.linesReceived += len(lines)
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

    def pressure(self, paused: bool) -> None:
        """
        The output is full or failing (or has recovered): pause (or resume)
        reading from every client.
        """
        self.inputPaused = paused
        if paused:
            self.counters.inputPauses += 1
            # A burst can pause input for a moment many times a minute: say
            # so at most once a minute, with the count.
            self._pressureLog.warn(
                "pressure",
                "Output is behind ({pending} bytes waiting): pausing input from {count} connections",
                pending=self.recorder.pendingBytes,
                count=len(self.connections),
            )
        for connection in list(self.connections.values()):
            if paused:
                connection.pauseReading("output")
            else:
                connection.resumeReading("output")

    def durable(self, counts: Dict[int, int]) -> None:
        """
        Tell each connection how many more of its lines are safely written.
        """
        connections = self.connections
        for conn, count in counts.items():
            connection = connections.get(conn)
            if connection is not None:
                connection.acknowledge(count)

    def closeOutput(self, timeout: float) -> Deferred[bool]:
        """
        Close the recorder, once the connections are closed: it writes what
        waits (for up to C{timeout} seconds).
        """
        return self.recorder.close(timeout)
