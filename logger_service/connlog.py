"""
Logging at a bounded rate: the connection log, and a throttle for warnings
that repeat.

The connection log gives each connection and disconnection a log event, at
a bounded rate.

Through twistd's text log observer one event costs tens of microseconds of
the reactor's time, so a storm of short connections would spend much of
its time logging them, and write two log lines per connection.
L{ConnectionLog} logs connections one by one only as fast as a token bucket
allows; the rest are counted and summed up in one event a second later.
L{LogThrottle} logs a warning at most once per interval for each key.
"""

from __future__ import annotations

from typing import Dict, Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .limits import TokenBucket
from .records import RecordContext
from .text import plural

log = Logger()

CONNECTED = "Got connection from {peer}"
"""The log format of a connection logged one by one."""

DISCONNECTED = "{peer} disconnected ({linesText}; {reason})"
"""The log format of a disconnection logged one by one (C{linesText}: C{1
line}, C{2 lines}...; the count itself is the field C{lines})."""

SUMMARY = (
    "Connection log over its limit of {rate}/s: {connections} connections and {disconnections} disconnections "
    "({lines} lines) in the last {seconds}s not logged one by one; from {hosts}"
)
"""The log format of the summary of the connections not logged one by one."""


def hostOf(context: RecordContext) -> str:
    """
    The host a connection came from: its peer without the port (C{192.0.2.1},
    C{[2001:db8::1]}), or for a UNIX socket the socket without the
    connection id.
    """
    host = context.host
    if host is not None:
        return f"[{host}]" if ":" in host else host
    peer = context.peer
    cut = peer.rfind("#")
    return peer[:cut] if cut > 0 else peer


class ConnectionLog:
    """
    Log connections and disconnections one by one up to a rate; count and
    sum up the rest.

    Whether a connection is logged one by one is decided once, when it
    connects: its disconnection is then logged one by one if and only if
    its connection was, so that the log always holds both or neither.

    Connections over the rate start an episode: they and the disconnections
    of connections not logged one by one are counted, with the lines those
    sent and the hosts they came from, and C{interval} seconds after the
    first of them one summary event says how many there were.  The next
    one after a summary starts a new episode.  L{stop} emits a pending
    summary at once.

    @ivar clock: gives the time, and schedules summaries.
    @ivar rate: connections per second logged one by one, in the long run,
        with bursts of up to C{max(rate, 1)}; 0 for every connection.
    @ivar interval: seconds from the first event of an episode to its
        summary.
    @ivar maxHosts: the most distinct hosts counted in one episode; further
        hosts are counted together as others.
    @ivar logger: where the events go.
    """

    def __init__(
        self,
        clock: IReactorTime,
        rate: float = 20.0,
        interval: float = 1.0,
        maxHosts: int = 1000,
        logger: Optional[Logger] = None,
    ) -> None:
        if not 0 <= rate < float("inf"):
            raise ValueError(f"rate must be 0 (no limit) or a finite positive number, not {rate!r}")
        self.clock = clock
        self.rate = rate
        self.interval = interval
        self.maxHosts = maxHosts
        self.logger = logger if logger is not None else log
        self._bucket: Optional[TokenBucket] = None
        if rate:
            self._bucket = TokenBucket(rate, max(rate, 1.0), clock.seconds())
        # What the summary shows: 20 rather than 20.0.
        self._rateShown = int(rate) if rate == int(rate) else rate
        self._summaryCall: Optional[IDelayedCall] = None
        self._started = 0.0
        self._connections = 0
        self._disconnections = 0
        self._lines = 0
        # Connections by host; in an episode without connections, the
        # disconnections by host instead.
        self._hosts: Dict[str, int] = {}
        self._otherHosts = 0

    def connected(self, context: RecordContext) -> bool:
        """
        A connection has started: log it, or count it if over the rate.

        @return: whether it was logged one by one; pass it to
            L{disconnected}.
        """
        bucket = self._bucket
        if bucket is None or bucket.take(1, self.clock.seconds()):
            self.logger.info(CONNECTED, peer=context.peer, conn=context.conn)
            return True
        if not self._connections and self._disconnections:
            # Until now the hosts counted were those of disconnections.
            self._hosts.clear()
            self._otherHosts = 0
        self._connections += 1
        self._countHost(context)
        self._counted()
        return False

    def disconnected(self, context: RecordContext, lines: int, reason: str, logged: bool) -> None:
        """
        A connection has ended: log it if its connection was logged, else
        count it.

        @param lines: lines received on it.
        @param reason: why it ended.
        @param logged: what L{connected} returned for it.
        """
        if logged:
            self.logger.info(
                DISCONNECTED,
                peer=context.peer,
                conn=context.conn,
                lines=lines,
                linesText=plural(lines, "line"),
                reason=reason,
            )
            return
        self._disconnections += 1
        self._lines += lines
        if not self._connections:
            self._countHost(context)
        self._counted()

    def _countHost(self, context: RecordContext) -> None:
        host = hostOf(context)
        hosts = self._hosts
        count = hosts.get(host)
        if count is not None:
            hosts[host] = count + 1
        elif len(hosts) < self.maxHosts:
            hosts[host] = 1
        else:
            self._otherHosts += 1

    def _counted(self) -> None:
        """
        An event was counted: the first of an episode schedules its summary.
        """
        if self._summaryCall is None:
            self._started = self.clock.seconds()
            self._summaryCall = self.clock.callLater(self.interval, self._summarize)

    def hostSummary(self) -> str:
        """
        The hosts counted in this episode, for the summary: the three with
        the most connections not logged one by one, with their counts, and
        how many came from the others, e.g. C{192.0.2.1 (40), 192.0.2.2 (7),
        192.0.2.3 (2) and 5 more from 3 other hosts}.  (In an episode of
        disconnections only, the disconnections are counted instead.)
        """
        ranked = sorted(self._hosts.items(), key=lambda item: (-item[1], item[0]))
        text = ", ".join(f"{host} ({count})" for host, count in ranked[:3])
        more = sum(count for _, count in ranked[3:]) + self._otherHosts
        if not more:
            return text or "nowhere"
        others = len(ranked[3:])
        if self._otherHosts:
            others += 1
            hosts = f"at least {others} other host"
        else:
            hosts = f"{others} other host"
        if others != 1:
            hosts += "s"
        if not text:
            return f"{more} from {hosts}"
        return f"{text} and {more} more from {hosts}"

    def _summarize(self) -> None:
        """
        Emit the episode's summary, and start afresh.
        """
        self._summaryCall = None
        self.logger.info(
            SUMMARY,
            rate=self._rateShown,
            connections=self._connections,
            disconnections=self._disconnections,
            lines=self._lines,
            seconds=round(self.clock.seconds() - self._started, 2),
            hosts=self.hostSummary(),
        )
        self._connections = 0
        self._disconnections = 0
        self._lines = 0
        self._hosts = {}
        self._otherHosts = 0

    def stop(self) -> None:
        """
        Emit a pending summary now, instead of later.

        Events that come after are counted as before, in a new episode.
        """
        call = self._summaryCall
        if call is not None:
            if call.active():
                call.cancel()
            self._summarize()


class LogThrottle:
    """
    Log an event at most once per interval for each key, saying how many
    like it were left out, so that a flood of refusals cannot flood the log.

    @ivar clock: what tells the time: the reactor unless another is given.
    """

    def __init__(self, logger: Logger, interval: float, clock: Optional[IReactorTime] = None) -> None:
        if clock is None:
            from twisted.internet import reactor

            clock = reactor
        self.logger = logger
        self.interval = interval
        self.clock: IReactorTime = clock
        self._last: Dict[str, float] = {}
        self._suppressed: Dict[str, int] = {}

    def warn(self, key: str, format: str, **kwargs: object) -> None:
        """
        Log C{format} as a warning unless one for C{key} went out within the
        interval.
        """
        now = self.clock.seconds()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            format += " ({suppressed} more like it not logged)"
        self.logger.warn(format, suppressed=suppressed, **kwargs)
