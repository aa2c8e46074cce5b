"""
Tests for L{logger_service.connlog}: connections logged one by one up to a
rate, the rest counted and summed up.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple, cast

from twisted.internet.task import Clock
from twisted.logger import ILogObserver, Logger, LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from logger_service.connlog import CONNECTED, DISCONNECTED, SUMMARY, ConnectionLog, LogThrottle, hostOf
from logger_service.records import RecordContext


def context(conn: int, host: str = "192.0.2.1", port: int = 0) -> RecordContext:
    """
    The record context of connection C{conn} from C{host}.
    """
    port = port or 10000 + conn
    peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return RecordContext(peer, conn, host=host)


class ConnectionLogTestCase(SynchronousTestCase):
    """
    A L{ConnectionLog} on a L{Clock}, its events in a list.
    """

    def build(self, rate: float = 10.0, **kwargs: Any) -> ConnectionLog:
        """
        A connection log at C{rate} per second; its events go to
        C{self.events}, its clock is C{self.clock}.
        """
        self.clock = Clock()
        self.clock.advance(1000)
        self.events: List[Dict[str, Any]] = []
        return ConnectionLog(self.clock, rate, logger=Logger(observer=cast(ILogObserver, self.events.append)), **kwargs)

    def formats(self) -> List[str]:
        """
        The formats of the events so far.
        """
        return [e["log_format"] for e in self.events]

    def individual(self, format: str) -> List[Dict[str, Any]]:
        """
        The events so far with the format C{format}.
        """
        return [e for e in self.events if e["log_format"] == format]

    def summaries(self) -> List[Dict[str, Any]]:
        """
        The summary events so far.
        """
        return self.individual(SUMMARY)

    def connectMany(
        self, connlog: ConnectionLog, count: int, first: int = 1, **kwargs: Any
    ) -> List[Tuple[RecordContext, bool]]:
        """
        Connect C{count} connections; return C{(context, logged)} for each.
        """
        out = []
        for conn in range(first, first + count):
            ctx = context(conn, **kwargs)
            out.append((ctx, connlog.connected(ctx)))
        return out


class UnderTheRateTests(ConnectionLogTestCase):
    """
    Within the rate, every connection is logged as it always was.
    """

    def test_events(self) -> None:
        """
        Each connection and disconnection is one info event with the
        historic format and fields.
        """
        connlog = self.build()
        ctx = context(7)
        logged = connlog.connected(ctx)
        connlog.disconnected(ctx, 3, "Connection was closed cleanly.", logged)
        self.assertTrue(logged)
        self.assertEqual(self.formats(), ["Got connection from {peer}", "{peer} disconnected ({linesText}; {reason})"])
        connected, disconnected = self.events
        self.assertEqual(connected["log_level"], LogLevel.info)
        self.assertEqual((connected["peer"], connected["conn"]), ("192.0.2.1:10007", 7))
        self.assertEqual(disconnected["log_level"], LogLevel.info)
        self.assertEqual(
            {k: disconnected[k] for k in ("peer", "conn", "lines", "reason")},
            {"peer": "192.0.2.1:10007", "conn": 7, "lines": 3, "reason": "Connection was closed cleanly."},
        )

    def test_lineOrLines(self) -> None:
        """
        A disconnection says C{1 line}, and C{0 lines} or C{2 lines}: the
        noun agrees with the count.
        """
        connlog = self.build()
        for conn, lines in enumerate((1, 0, 2), 1):
            ctx = context(conn)
            connlog.disconnected(ctx, lines, "gone", connlog.connected(ctx))
        texts = [formatEvent(e) for e in self.events if e["log_format"] == DISCONNECTED]
        self.assertEqual(
            texts,
            [
                "192.0.2.1:10001 disconnected (1 line; gone)",
                "192.0.2.1:10002 disconnected (0 lines; gone)",
                "192.0.2.1:10003 disconnected (2 lines; gone)",
            ],
        )

    def test_steadyRate(self) -> None:
        """
        The burst, then the rate, second after second: all logged, no
        summary, nothing scheduled.
        """
        connlog = self.build(rate=10)
        conns = self.connectMany(connlog, 10)
        for second in range(5):
            self.clock.advance(1)
            conns += self.connectMany(connlog, 10, first=100 * (second + 1))
        for ctx, logged in conns:
            connlog.disconnected(ctx, 1, "done", logged)
        self.assertTrue(all(logged for _, logged in conns))
        self.assertEqual(len(self.individual(CONNECTED)), 60)
        self.assertEqual(len(self.individual(DISCONNECTED)), 60)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        connlog.stop()
        self.assertEqual(self.summaries(), [])

    def test_noLimit(self) -> None:
        """
        Rate 0: every connection logged, however many at once.
        """
        connlog = self.build(rate=0)
        conns = self.connectMany(connlog, 5000)
        for ctx, logged in conns:
            connlog.disconnected(ctx, 2, "done", logged)
        self.assertEqual(len(self.individual(CONNECTED)), 5000)
        self.assertEqual(len(self.individual(DISCONNECTED)), 5000)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_badRate(self) -> None:
        """
        A negative or infinite rate is refused.
        """
        for rate in (-1.0, float("inf")):
            self.assertRaises(ValueError, ConnectionLog, Clock(), rate)

    def test_slowRate(self) -> None:
        """
        A rate under 1 per second still lets one connection through at once.
        """
        connlog = self.build(rate=0.5)
        self.assertEqual([logged for _, logged in self.connectMany(connlog, 2)], [True, False])
        self.clock.advance(2)
        self.assertEqual([logged for _, logged in self.connectMany(connlog, 2, first=10)], [True, False])


class OverTheRateTests(ConnectionLogTestCase):
    """
    Over the rate, connections are counted and summed up a second later.
    """

    def test_burst(self) -> None:
        """
        25 connections at once at 10/s: the first 10 are logged, the other
        15 make one summary a second later, with their hosts.
        """
        connlog = self.build(rate=10)
        conns = self.connectMany(connlog, 12, host="192.0.2.1")
        conns += self.connectMany(connlog, 8, first=20, host="198.51.100.2")
        conns += self.connectMany(connlog, 5, first=40, host="2001:db8::3")
        self.assertEqual([logged for _, logged in conns], [True] * 10 + [False] * 15)
        self.assertEqual(len(self.individual(CONNECTED)), 10)
        self.assertEqual(self.summaries(), [])
        self.clock.advance(0.999)
        self.assertEqual(self.summaries(), [])
        self.clock.advance(0.001)
        [summary] = self.summaries()
        self.assertEqual(summary["log_level"], LogLevel.info)
        self.assertEqual(
            {k: summary[k] for k in ("connections", "disconnections", "lines", "seconds", "rate", "hosts")},
            {
                "connections": 15,
                "disconnections": 0,
                "lines": 0,
                "seconds": 1.0,
                "rate": 10,
                "hosts": "198.51.100.2 (8), [2001:db8::3] (5), 192.0.2.1 (2)",
            },
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_summaryText(self) -> None:
        """
        The summary's format is constant, and reads as a sentence.
        """
        connlog = self.build(rate=1)
        ctx = context(2)
        connlog.connected(context(1))
        connlog.disconnected(ctx, 4, "done", connlog.connected(ctx))
        self.clock.advance(1)
        [summary] = self.summaries()
        self.assertEqual(summary["log_format"], SUMMARY)
        self.assertEqual(
            formatEvent(summary),
            "Connection log over its limit of 1/s: 1 connections and 1 disconnections (4 lines) in the last 1.0s "
            "not logged one by one; from 192.0.2.1 (1)",
        )

    def test_pairsComplete(self) -> None:
        """
        A connection logged on connect is logged on disconnect, even once
        over the rate; one that was not is counted, with its lines, even
        once under the rate again.
        """
        connlog = self.build(rate=5)
        conns = self.connectMany(connlog, 8)
        self.clock.advance(1)
        self.assertEqual(len(self.summaries()), 1)
        # The bucket is full again, then emptied by new connections.
        later = self.connectMany(connlog, 10, first=100)
        for n, (ctx, logged) in enumerate(conns + later):
            connlog.disconnected(ctx, n, "done", logged)
        self.clock.advance(1)
        loggedConns = {ctx.conn for ctx, logged in conns + later if logged}
        self.assertEqual(len(loggedConns), 10)
        self.assertEqual({e["conn"] for e in self.individual(CONNECTED)}, loggedConns)
        self.assertEqual({e["conn"] for e in self.individual(DISCONNECTED)}, loggedConns)
        first, second = self.summaries()
        self.assertEqual((first["connections"], first["disconnections"]), (3, 0))
        self.assertEqual((second["connections"], second["disconnections"]), (5, 8))
        notLogged = [n for n, (_, logged) in enumerate(conns + later) if not logged]
        self.assertEqual(second["lines"], sum(notLogged))

    def test_newEpisode(self) -> None:
        """
        After a summary, the next event over the rate starts a new episode,
        summed up a second after it.
        """
        connlog = self.build(rate=2)
        self.connectMany(connlog, 3)
        self.clock.advance(1)
        self.assertEqual(len(self.summaries()), 1)
        self.clock.advance(0.5)
        self.connectMany(connlog, 3, first=10)
        self.clock.advance(0.25)
        self.connectMany(connlog, 1, first=20)
        self.clock.advance(0.75)
        self.assertEqual([s["connections"] for s in self.summaries()], [1, 2])
        self.assertEqual(self.summaries()[1]["seconds"], 1.0)
        self.clock.advance(10)
        self.assertEqual(len(self.summaries()), 2)

    def test_disconnectionsOnly(self) -> None:
        """
        An episode of disconnections only counts their hosts; once a
        connection is counted too, the hosts are those of connections.
        """
        connlog = self.build(rate=1)
        conns = self.connectMany(connlog, 4, host="192.0.2.9")
        self.clock.advance(1)
        for ctx, logged in conns:
            connlog.disconnected(ctx, 1, "done", logged)
        self.clock.advance(1)
        self.assertEqual(self.summaries()[-1]["hosts"], "192.0.2.9 (3)")
        self.assertEqual(self.summaries()[-1]["disconnections"], 3)
        a = context(50, "192.0.2.5")
        b = context(51, "192.0.2.6")
        self.assertTrue(connlog.connected(a))
        self.assertFalse(connlog.connected(b))
        self.clock.advance(1)
        self.assertEqual(self.summaries()[-1]["hosts"], "192.0.2.6 (1)")
        # A new episode that starts with a disconnection, then a connection:
        connlog.disconnected(b, 0, "done", False)
        self.assertEqual(connlog.hostSummary(), "192.0.2.6 (1)")
        self.assertTrue(connlog.connected(context(52, "192.0.2.5")))
        self.assertFalse(connlog.connected(context(53, "192.0.2.7")))
        self.clock.advance(1)
        summary = self.summaries()[-1]
        self.assertEqual((summary["connections"], summary["disconnections"]), (1, 1))
        self.assertEqual(summary["hosts"], "192.0.2.7 (1)")

    def test_stop(self) -> None:
        """
        L{ConnectionLog.stop} logs a pending summary at once and cancels its
        timer; with nothing pending it logs nothing.
        """
        connlog = self.build(rate=3)
        conns = self.connectMany(connlog, 5)
        self.clock.advance(0.25)
        for ctx, logged in conns:
            connlog.disconnected(ctx, 2, "server shutting down", logged)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        connlog.stop()
        [summary] = self.summaries()
        self.assertEqual(
            {k: summary[k] for k in ("connections", "disconnections", "lines", "seconds")},
            {"connections": 2, "disconnections": 2, "lines": 4, "seconds": 0.25},
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])
        connlog.stop()
        self.clock.advance(5)
        self.assertEqual(len(self.summaries()), 1)
        self.assertEqual(len(self.individual(DISCONNECTED)), 3)


class HostTests(ConnectionLogTestCase):
    """
    Hosts in the summary: the top three, the rest counted, memory bounded.
    """

    def test_hostOf(self) -> None:
        """
        A host is its peer without the port; a UNIX socket's, without the
        connection id.
        """
        self.assertEqual(hostOf(context(1, "192.0.2.1")), "192.0.2.1")
        self.assertEqual(hostOf(context(1, "::1")), "[::1]")
        self.assertEqual(hostOf(RecordContext("unix:/run/s.sock#12", 12)), "unix:/run/s.sock")
        self.assertEqual(hostOf(RecordContext("elsewhere", 12)), "elsewhere")

    def test_others(self) -> None:
        """
        Beyond the top three, the others' count and number.
        """
        connlog = self.build(rate=1)
        connlog.connected(context(0))
        conn = 1
        for host, count in [("10.0.0.1", 5), ("10.0.0.2", 4), ("10.0.0.3", 3), ("10.0.0.4", 2), ("10.0.0.5", 1)]:
            self.connectMany(connlog, count, first=conn, host=host)
            conn += count
        self.assertEqual(
            connlog.hostSummary(), "10.0.0.1 (5), 10.0.0.2 (4), 10.0.0.3 (3) and 3 more from 2 other hosts"
        )
        self.connectMany(connlog, 1, first=100, host="10.0.0.1")
        self.clock.advance(1)
        self.assertEqual(
            self.summaries()[0]["hosts"], "10.0.0.1 (6), 10.0.0.2 (4), 10.0.0.3 (3) and 3 more from 2 other hosts"
        )
        self.assertEqual(connlog.hostSummary(), "nowhere")
        self.assertTrue(connlog.connected(context(199)))
        self.assertFalse(connlog.connected(context(200, "10.0.0.6")))
        self.assertEqual(connlog.hostSummary(), "10.0.0.6 (1)")
        self.connectMany(connlog, 1, first=201, host="10.0.0.9")
        self.connectMany(connlog, 1, first=202, host="10.0.0.8")
        self.connectMany(connlog, 1, first=203, host="10.0.0.7")
        self.assertEqual(connlog.hostSummary(), "10.0.0.6 (1), 10.0.0.7 (1), 10.0.0.8 (1) and 1 more from 1 other host")

    def test_manyHostsBounded(self) -> None:
        """
        However many hosts connect in an episode, at most C{maxHosts} are
        counted one by one; the rest are counted together, and the counts
        still add up.
        """
        connlog = self.build(rate=1, maxHosts=1000)
        connlog.connected(context(0))
        total = 0
        for n in range(5000):
            host = f"10.{n // 65536}.{n // 256 % 256}.{n % 256}"
            count = 3 if n == 4321 else 1
            self.connectMany(connlog, count, first=total + 1, host=host)
            total += count
        self.assertEqual(len(connlog._hosts), 1000)
        self.assertEqual(
            connlog.hostSummary(),
            "10.0.0.0 (1), 10.0.0.1 (1), 10.0.0.10 (1) and 4999 more from at least 998 other hosts",
        )
        self.clock.advance(1)
        [summary] = self.summaries()
        self.assertEqual(summary["connections"], total)
        self.assertEqual(connlog._hosts, {})


class LogThrottleTests(SynchronousTestCase):
    """
    A burst of like events is logged once per interval, with a count.
    """

    def test_throttle(self) -> None:
        """
        Within the interval, events are counted, not logged; the next one
        logged says how many were left out.
        """
        clock = Clock()
        throttle = LogThrottle(Logger(), interval=10, clock=clock)
        with capturedLogs() as events:
            for _ in range(5):
                throttle.warn("k", "refused {n}", n=1)
            throttle.warn("other", "other key")
            clock.advance(10)
            throttle.warn("k", "refused {n}", n=2)
        self.assertEqual(
            [e["log_format"] for e in events],
            [
                "refused {n}",
                "other key",
                "refused {n} ({suppressed} more like it not logged)",
            ],
        )
        self.assertEqual(events[-1]["suppressed"], 4)

    def test_reactorByDefault(self) -> None:
        """
        Without a clock, the throttle is timed by the reactor.
        """
        from twisted.internet import reactor

        self.assertIs(LogThrottle(Logger(), interval=1).clock, reactor)
