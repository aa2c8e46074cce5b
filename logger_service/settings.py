"""
What the connections of one listener share: the hub, the counters, the clock and the settings.
"""

from __future__ import annotations

from typing import Callable, Optional

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from .connlog import ConnectionLog
from .counters import Counters
from .fdlimit import AcceptPacer
from .framing import FRAMERS, LongLines
from .interfaces import IHub, ISession, ISessionConnection

log = Logger("logger_service.factory")


class ConnectionSettings:
    """
    What the connections of one listener share: one hub and one set of settings.

    @ivar hub: where lines go.
    @ivar counters: what the connections count (the hub's).
    @ivar maxLineLength: the longest line recorded as one record.
    @ivar longLines: what happens to longer lines.
    @ivar greeting: sent to each client on connect, or C{None}.
    @ivar idleTimeout: seconds of silence before a connection is closed
        (0: never).
    @ivar lineTimeout: seconds a connection may hold an unfinished line
        (one it has started and not ended) before it is closed (0: no
        limit): stops a client that trickles bytes, which the idle timeout
        never sees as idle.
    @ivar maxRate: lines per second a connection may send before reading
        from it pauses (0: no limit).
    @ivar acks: whether clients are told C{ok N} as their lines are written.
    @ivar clock: the reactor, for timeouts and rates (the hub's clock
        unless another is given).
    @ivar logConnections: whether connections and disconnections are
        logged.
    @ivar connectionLogRate: connections per second logged one by one (the
        rest are counted and summed up once a second); 0: every one.
    @ivar connectionLogger: logs connections and disconnections, or
        C{None} without C{logConnections}.
    @ivar framing: how lines end: C{lf}, C{nul}, C{octet} or C{auto} (see
        L{logger_service.framing}).
    @ivar acceptPacer: paces the listeners' accepts where the open-file
        limit is short, or C{None}.
    @ivar sessions: makes the session (L{ISession}) of each connection as
        it starts (a chat's), or C{None}: connections only record.
    """

    def __init__(
        self,
        hub: IHub,
        maxLineLength: int = 65536,
        longLines: LongLines = LongLines.split,
        greeting: Optional[bytes] = None,
        idleTimeout: float = 0,
        maxRate: float = 0,
        acks: bool = False,
        clock: Optional[IReactorTime] = None,
        framing: str = "lf",
        logConnections: bool = True,
        connectionLogRate: float = 20.0,
        lineTimeout: float = 0,
        acceptsPerTurn: int = 0,
        sessions: Optional[Callable[[ISessionConnection], ISession]] = None,
    ) -> None:
        self.hub = hub
        self.counters: Counters = hub.counters
        self.maxLineLength = maxLineLength
        self.longLines = longLines
        self.greeting = greeting
        self.idleTimeout = idleTimeout
        self.lineTimeout = lineTimeout
        self.maxRate = maxRate
        self.acks = acks
        self.framing = framing
        self.logConnections = logConnections
        self.connectionLogRate = connectionLogRate
        self.makeFramer = FRAMERS[framing]
        if clock is None:
            clock = hub.clock
        self.clock = clock
        self.acceptPacer: Optional[AcceptPacer] = AcceptPacer(acceptsPerTurn) if acceptsPerTurn else None
        self.connectionLogger: Optional[ConnectionLog] = None
        self.sessions = sessions
        if logConnections:
            self.connectionLogger = ConnectionLog(clock, connectionLogRate, logger=log)
