"""
Tests for L{logger_service.protocol}: the adapter between a transport and
the hub, driven through L{StringTransport} and a L{Clock}.
"""

from __future__ import annotations

import json
from typing import List, Optional, Tuple

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from logger_service.factory import LineLoggerFactory
from logger_service.framing import LongLines
from logger_service.hub import Hub
from logger_service.limits import ConnectionLimits, parseNetwork
from logger_service.protocol import LineLoggerProtocol
from logger_service.recorder import Recorder

from .memory import MemorySink, hubOf


def build(
    format: str = "json", greeting: Optional[bytes] = None, maxLineLength: int = 65536, longLines=LongLines.split
) -> Tuple[LineLoggerFactory, MemorySink, Clock]:
    """
    A factory over a hub and recorder writing to memory.
    """
    clock = Clock()
    sink = MemorySink()
    hub = Hub(Recorder(sink, clock, format=format))
    factory = LineLoggerFactory(hub, maxLineLength=maxLineLength, longLines=longLines, greeting=greeting)
    return factory, sink, clock


def connect(factory: LineLoggerFactory, port: int = 5555) -> Tuple[LineLoggerProtocol, StringTransport]:
    """
    Connect a new protocol from 192.0.2.1:PORT.
    """
    protocol = factory.buildProtocol(IPv4Address("TCP", "192.0.2.1", port))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", port))
    protocol.makeConnection(transport)
    return protocol, transport


def records(sink: MemorySink) -> List[dict]:
    """
    The JSON records written so far.
    """
    return [json.loads(line) for line in sink.data.splitlines()]


class ConnectionTests(SynchronousTestCase):
    """
    Connecting and disconnecting: greeting, log events, the hub's registry.
    """

    def test_greeting(self) -> None:
        """
        The greeting, if any, is sent with CRLF as soon as a client connects.
        """
        factory, _, _ = build(greeting=b"Thank you for connecting")
        _, transport = connect(factory)
        self.assertEqual(transport.value(), b"Thank you for connecting\r\n")
        factory, _, _ = build()
        _, transport = connect(factory)
        self.assertEqual(transport.value(), b"")

    def test_logsLikeTheSeed(self) -> None:
        """
        C{Got connection from HOST:PORT} on connect and C{HOST:PORT
        disconnected} with the line count on disconnect, as structured events.
        """
        factory, _, _ = build()
        with capturedLogs() as events:
            protocol, _ = connect(factory)
            protocol.dataReceived(b"a\nb\n")
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(events[0]["log_format"], "Got connection from {peer}")
        self.assertEqual(events[0]["peer"], "192.0.2.1:5555")
        self.assertEqual(events[-1]["peer"], "192.0.2.1:5555")
        self.assertEqual(events[-1]["lines"], 2)
        self.assertIn("disconnected", events[-1]["log_format"])

    def test_registry(self) -> None:
        """
        The hub knows each open connection by a unique id, and forgets it
        when it closes.
        """
        factory, _, _ = build()
        with capturedLogs():
            one, _ = connect(factory, 1)
            two, _ = connect(factory, 2)
            self.assertNotEqual(one.context.conn, two.context.conn)
            self.assertEqual(set(hubOf(factory).connections.values()), {one, two})
            one.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(list(hubOf(factory).connections.values()), [two])
        self.assertEqual(factory.hub.counters.connectionsTotal, 2)


class RecordingTests(SynchronousTestCase):
    """
    Lines become records, a received chunk at a time.
    """

    def setUp(self) -> None:
        self.factory, self.sink, self.clock = build()
        with capturedLogs():
            self.protocol, self.transport = connect(self.factory)

    def test_chunkIsOneBatch(self) -> None:
        """
        All lines of a chunk reach the hub in one call, and the output
        within the flush interval.
        """
        batches = []
        self.factory.hub.received = lambda context, lines: batches.append(list(lines))  # type: ignore[method-assign]
        self.protocol.dataReceived(b"one\r\ntwo\nthr")
        self.protocol.dataReceived(b"ee\n")
        self.assertEqual(batches, [[b"one", b"two"], [b"three"]])

    def test_records(self) -> None:
        """
        Records carry the peer, connection id and line; they are written
        after the flush interval, not per line.
        """
        self.protocol.dataReceived(b"hello\nworld\n")
        self.assertEqual(self.sink.writes, [])
        self.clock.advance(0.1)
        got = records(self.sink)
        self.assertEqual([r["line"] for r in got], ["hello", "world"])
        self.assertEqual({r["peer"] for r in got}, {"192.0.2.1:5555"})
        self.assertEqual({r["conn"] for r in got}, {self.protocol.context.conn})
        self.assertEqual(self.protocol.lineCount, 2)

    def test_partialLastLine(self) -> None:
        """
        An unterminated last line is recorded when the connection closes,
        marked partial.
        """
        self.protocol.dataReceived(b"done\nhalf a li")
        with capturedLogs():
            self.protocol.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(0.1)
        got = records(self.sink)
        self.assertEqual([r["line"] for r in got], ["done", "half a li"])
        self.assertTrue(got[1]["partial"])
        self.assertNotIn("partial", got[0])

    def test_lineReceived(self) -> None:
        """
        C{lineReceived}, the L{LineReceiver} API, records one line.
        """
        self.protocol.lineReceived(b"direct")
        self.clock.advance(0.1)
        self.assertEqual([r["line"] for r in records(self.sink)], ["direct"])

    def test_rawMode(self) -> None:
        """
        A subclass can switch to raw mode as with L{LineReceiver}; chunks go
        to C{rawDataReceived} until it switches back, and the rest of that
        chunk is framed as lines.
        """
        raw = []

        class Raw(LineLoggerProtocol):
            def rawDataReceived(self, data: bytes) -> None:
                raw.append(data)
                if data.endswith(b"!"):
                    self.setLineMode(b"after\n")

        factory, sink, clock = build()
        protocol = Raw()
        protocol.factory = factory
        with capturedLogs():
            protocol.makeConnection(StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.1", 1)))
        protocol.setRawMode()
        protocol.dataReceived(b"raw\nbytes")
        protocol.dataReceived(b"!")
        protocol.dataReceived(b"line\n")
        clock.advance(0.1)
        self.assertEqual(raw, [b"raw\nbytes", b"!"])
        self.assertEqual([r["line"] for r in records(sink)], ["after", "line"])


class FramerLifetimeTests(SynchronousTestCase):
    """
    A connection has a framer only while it holds something: none while
    idle between whole lines, so that idle connections cost less.
    """

    def setUp(self) -> None:
        self.factory, self.sink, self.clock = build()
        with capturedLogs():
            self.protocol, self.transport = connect(self.factory)

    def test_noneUntilData(self) -> None:
        """
        A new connection, and one that sent only whole lines, has none.
        """
        self.assertIsNone(self.protocol.framer)
        self.protocol.dataReceived(b"one\ntwo\r\n")
        self.assertIsNone(self.protocol.framer)

    def test_partialLineKept(self) -> None:
        """
        Part of a line keeps the framer, and the line is recorded whole
        once its end comes; a part left at disconnection is recorded as
        partial.
        """
        self.protocol.dataReceived(b"one\ntw")
        framer = self.protocol.framer
        assert framer is not None
        self.assertEqual(framer.buffered, 2)
        self.protocol.dataReceived(b"o\nthr")
        with capturedLogs():
            self.protocol.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(0.1)
        got = records(self.sink)
        self.assertEqual([r["line"] for r in got], ["one", "two", "thr"])
        self.assertEqual([r.get("partial", False) for r in got], [False, False, True])

    def test_longLineCountsKept(self) -> None:
        """
        After a long line the framer stays, with its counts, and they reach
        the hub at disconnection.
        """
        factory, sink, clock = build(maxLineLength=4, longLines=LongLines.truncate)
        with capturedLogs():
            protocol, transport = connect(factory)
            protocol.dataReceived(b"abcdefgh\n")
            self.assertIsNotNone(protocol.framer)
            protocol.dataReceived(b"ok\n")
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((factory.hub.counters.oversizeLines, factory.hub.counters.droppedBytes), (1, 4))


def buildWith(**settings: object) -> Tuple[LineLoggerFactory, MemorySink, Clock]:
    """
    A factory with extra settings (limits, timeouts, acks) over memory.
    """
    clock = Clock()
    sink = MemorySink()
    limits = settings.pop("limits", None)
    hub = Hub(Recorder(sink, clock, format="json"), limits)  # type: ignore[arg-type]
    factory = LineLoggerFactory(hub, clock=clock, **settings)  # type: ignore[arg-type]
    return factory, sink, clock


class AdmissionTests(SynchronousTestCase):
    """
    Refused clients get one line saying why, and are closed.
    """

    def test_maxPerAddress(self) -> None:
        """
        Past C{--max-per-ip}, a client from the same address is refused;
        one from elsewhere is not; a slot frees when a client leaves.
        """
        factory, _, _ = buildWith(limits=ConnectionLimits(maxPerAddress=2))
        with capturedLogs() as events:
            first, _ = connect(factory, 1)
            connect(factory, 2)
            _, third = connect(factory, 3)
            self.assertEqual(third.value(), b"error: too many connections from 192.0.2.1 (limit 2)\r\n")
            self.assertTrue(third.disconnecting)
            other = factory.buildProtocol(None)
            otherTransport = StringTransport(peerAddress=IPv4Address("TCP", "198.51.100.9", 9))
            other.makeConnection(otherTransport)
            self.assertEqual(otherTransport.value(), b"")
            first.connectionLost(Failure(ConnectionDone()))
            _, again = connect(factory, 4)
            self.assertEqual(again.value(), b"")
        self.assertEqual(factory.hub.counters.refused, {"max-per-ip": 1})
        self.assertTrue(any("Refused" in e["log_format"] for e in events))

    def test_maxConnectionsAndAllow(self) -> None:
        """
        The total limit and the allow list refuse with their own messages;
        refused connections are not registered and record nothing.
        """
        factory, sink, clock = buildWith(
            limits=ConnectionLimits(maxConnections=1, allow=[parseNetwork("192.0.2.0/24")])
        )
        with capturedLogs():
            connect(factory, 1)
            refused, full = connect(factory, 2)
            stranger = factory.buildProtocol(None)
            strangerTransport = StringTransport(peerAddress=IPv4Address("TCP", "203.0.113.5", 5))
            stranger.makeConnection(strangerTransport)
            refused.dataReceived(b"ignored\n")
            refused.connectionLost(Failure(ConnectionDone()))
        self.assertTrue(full.value().startswith(b"error: too many connections (limit 1)"))
        self.assertEqual(strangerTransport.value(), b"error: your address is not allowed to connect\r\n")
        self.assertEqual(len(hubOf(factory).connections), 1)
        self.assertEqual(factory.hub.counters.refused, {"max-connections": 1, "not-allowed": 1})
        clock.advance(1)
        self.assertEqual(sink.data, b"")


class IdleTimeoutTests(SynchronousTestCase):
    """
    C{--idle-timeout} closes silent connections, with a message.
    """

    def test_idle(self) -> None:
        """
        Data keeps a connection open; silence for the timeout closes it.
        """
        factory, _, clock = buildWith(idleTimeout=10)
        with capturedLogs():
            protocol, transport = connect(factory)
            clock.advance(9)
            protocol.dataReceived(b"still here\n")
            clock.advance(9)
            self.assertFalse(transport.disconnecting)
            clock.advance(1)
        self.assertEqual(transport.value(), b"error: idle for 10 seconds; closing connection\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(factory.hub.counters.idleTimeouts, 1)
        self.assertEqual(hubOf(factory).connections, {})


class RateTests(SynchronousTestCase):
    """
    C{--max-rate} pauses reading; it drops nothing.
    """

    def test_pauseForDebt(self) -> None:
        """
        A chunk beyond the rate is recorded in full, then reading pauses
        for as long as the excess takes at that rate.
        """
        factory, sink, clock = buildWith(maxRate=10)
        with capturedLogs():
            protocol, transport = connect(factory)
        protocol.dataReceived(b"x\n" * 30)
        self.assertEqual(transport.producerState, "paused")
        clock.advance(1.9)
        self.assertEqual(transport.producerState, "paused")
        clock.advance(0.1)
        self.assertEqual(transport.producerState, "producing")
        self.assertEqual(len(records(sink)), 30)
        self.assertEqual(factory.hub.counters.rateDelays, 1)

    def test_pauseReasonsCounted(self) -> None:
        """
        Reading resumes only when every reason to pause is gone.
        """
        factory, _, _ = buildWith()
        with capturedLogs():
            protocol, transport = connect(factory)
        protocol.pauseReading("rate")
        protocol.pauseReading("output")
        protocol.resumeReading("rate")
        self.assertEqual(transport.producerState, "paused")
        protocol.resumeReading("output")
        self.assertEqual(transport.producerState, "producing")


class AckTests(SynchronousTestCase):
    """
    C{--ack}: clients hear how many of their lines are written.
    """

    def test_ok(self) -> None:
        """
        Each batch written sends each of its connections one C{ok N}, N
        counting that connection's lines only.
        """
        clock = Clock()
        sink = MemorySink()
        hub = Hub(Recorder(sink, clock, acks=True))
        factory = LineLoggerFactory(hub, acks=True, clock=clock)
        with capturedLogs():
            a, at = connect(factory, 1)
            b, bt = connect(factory, 2)
        a.dataReceived(b"1\n2\n")
        b.dataReceived(b"x\n")
        a.dataReceived(b"3\n")
        self.assertEqual(at.value(), b"")
        clock.advance(0.1)
        a.dataReceived(b"4\n")
        clock.advance(0.1)
        self.assertEqual(at.value(), b"ok 3\r\nok 4\r\n")
        self.assertEqual(bt.value(), b"ok 1\r\n")

    def test_noAcksByDefault(self) -> None:
        """
        Without C{--ack} nothing is sent back.
        """
        factory, _, clock = buildWith()
        with capturedLogs():
            protocol, transport = connect(factory)
        protocol.dataReceived(b"line\n")
        clock.advance(1)
        self.assertEqual(transport.value(), b"")


class IdleWhilePausedTests(SynchronousTestCase):
    """
    A connection we stopped reading is not idle.
    """

    def test_noTimeoutWhilePaused(self) -> None:
        """
        While reading is paused (rate limit, full output), the idle timer
        stops; it starts again, from zero, when reading resumes.
        """
        factory, _, clock = buildWith(idleTimeout=1, maxRate=10)
        with capturedLogs():
            protocol, transport = connect(factory)
            protocol.dataReceived(b"x\n" * 40)
            self.assertEqual(transport.producerState, "paused")
            clock.advance(2.9)
            self.assertFalse(transport.disconnecting, "paused for the rate: not idle")
            clock.advance(0.1)
            self.assertEqual(transport.producerState, "producing")
            clock.advance(0.9)
            self.assertFalse(transport.disconnecting)
            clock.advance(0.1)
        self.assertTrue(transport.disconnecting, "idle for a second of reading")


class ConnectionLogTests(SynchronousTestCase):
    """
    C{--no-connection-log} turns off the per-connection log events only.
    """

    def test_quiet(self) -> None:
        """
        No connect or disconnect events; lines are still recorded and
        warnings still logged.
        """
        factory, sink, clock = buildWith(logConnections=False, maxLineLength=2)
        with capturedLogs() as events:
            protocol, _ = connect(factory)
            protocol.dataReceived(b"abc\n")
            protocol.connectionLost(Failure(ConnectionDone()))
        clock.advance(1)
        self.assertEqual([e["log_format"] for e in events], ["{peer} sent a line longer than {limit} bytes ({policy})"])
        self.assertEqual([r["line"] for r in records(sink)], ["ab", "c"])

    def test_rateLimited(self) -> None:
        """
        Over C{connectionLogRate} per second, connections are not logged one
        by one, at connect nor at disconnect: a second later one event sums
        them up.
        """
        factory, sink, clock = buildWith(connectionLogRate=2)
        with capturedLogs() as events:
            protocols = [connect(factory, port)[0] for port in range(1, 6)]
            for protocol in protocols:
                protocol.dataReceived(b"a line\n")
                protocol.connectionLost(Failure(ConnectionDone()))
            clock.advance(1)
        self.assertEqual([p._connectionLogged for p in protocols], [True, True, False, False, False])
        formats = [e["log_format"] for e in events]
        self.assertEqual(formats.count("Got connection from {peer}"), 2)
        self.assertEqual(formats.count("{peer} disconnected ({linesText}; {reason})"), 2)
        self.assertEqual([e["peer"] for e in events if "peer" in e], ["192.0.2.1:1", "192.0.2.1:2"] * 2)
        [summary] = [e for e in events if "hosts" in e]
        self.assertEqual((summary["connections"], summary["disconnections"], summary["lines"]), (3, 3, 3))
        self.assertEqual(summary["hosts"], "192.0.2.1 (3)")
        self.assertEqual(len(records(sink)), 5)

    def test_noLimit(self) -> None:
        """
        C{connectionLogRate=0}: every connection is logged one by one.
        """
        factory, _, _ = buildWith(connectionLogRate=0)
        with capturedLogs() as events:
            for port in range(1, 301):
                connect(factory, port)[0].connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(events), 600)

    def test_stopFactory(self) -> None:
        """
        When its last listener stops, the factory logs the pending summary
        at once.
        """
        factory, _, clock = buildWith(connectionLogRate=1)
        with capturedLogs() as events:
            for port in range(1, 4):
                connect(factory, port)
            factory.doStart()
            factory.doStop()
        self.assertEqual([e.get("connections") for e in events if "hosts" in e], [2])
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_flagSetInInit(self) -> None:
        """
        Whether a connection was logged is an attribute every protocol has
        from C{__init__} on, so that protocols share their attribute names.
        """
        self.assertIs(LineLoggerProtocol().__dict__.get("_connectionLogged"), False)


class LineTimeoutTests(SynchronousTestCase):
    """
    C{--line-timeout} closes a connection that holds an unfinished line too
    long: a client trickling bytes, which the idle timeout never sees.
    """

    def test_trickle(self) -> None:
        """
        One byte every 2 seconds keeps the idle timeout (5 s) away, but the
        line never ends: after the line timeout the client is told why and
        closed, and what it sent is recorded as a partial line.
        """
        factory, sink, clock = buildWith(idleTimeout=5, lineTimeout=7)
        with capturedLogs() as events:
            protocol, transport = connect(factory)
            for byte in b"abc":
                protocol.dataReceived(bytes([byte]))
                clock.advance(2)
            self.assertFalse(transport.disconnecting)
            clock.advance(1)
        self.assertEqual(transport.value(), b"error: no end of line in 7 seconds; closing connection\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(factory.hub.counters.lineTimeouts, 1)
        self.assertEqual(factory.hub.counters.idleTimeouts, 0)
        clock.advance(1)
        self.assertEqual([(r["line"], r.get("partial")) for r in records(sink)], [("abc", True)])
        self.assertTrue(any("unfinished line" in e["log_format"] for e in events))
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_eachLineGetsTheTime(self) -> None:
        """
        The time runs from the first byte of each unfinished line: lines
        ending steadily keep a connection open however long it lasts, and
        a line ended in time stops the clock.
        """
        factory, sink, clock = buildWith(lineTimeout=5)
        with capturedLogs():
            protocol, transport = connect(factory)
            for n in range(10):
                protocol.dataReceived(b"end %d\nstart %d" % (n, n))
                clock.advance(4)
            protocol.dataReceived(b"\n")
            clock.advance(100)
        self.assertFalse(transport.disconnecting)
        self.assertEqual(factory.hub.counters.lineTimeouts, 0)
        self.assertIsNone(protocol._lineCall)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_alternatingChunksKeepOneCall(self) -> None:
        """
        Chunks ending alternately mid-line and on LF keep one timer call,
        reset for each new unfinished line rather than cancelled and made
        again; each unfinished line still gets the whole time.
        """
        factory, _, clock = buildWith(lineTimeout=5)
        with capturedLogs():
            protocol, transport = connect(factory)
            protocol.dataReceived(b"ab")
            call = protocol._lineCall
            assert call is not None
            for _ in range(5):
                clock.advance(2)
                protocol.dataReceived(b"c\n")
                self.assertIs(protocol._lineCall, call)
                clock.advance(2)
                protocol.dataReceived(b"ab")
                self.assertIs(protocol._lineCall, call)
            self.assertTrue(call.active())
            clock.advance(4.9)
            self.assertFalse(transport.disconnecting)
            clock.advance(0.1)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(factory.hub.counters.lineTimeouts, 1)

    def test_notWhilePaused(self) -> None:
        """
        While reading is paused the line cannot end: the time does not run.
        """
        factory, _, clock = buildWith(lineTimeout=5)
        with capturedLogs():
            protocol, transport = connect(factory)
            protocol.dataReceived(b"half")
            protocol.pauseReading("output")
            clock.advance(60)
            self.assertFalse(transport.disconnecting)
            protocol.resumeReading("output")
            clock.advance(4.9)
            self.assertFalse(transport.disconnecting)
            clock.advance(0.1)
        self.assertTrue(transport.disconnecting)

    def test_defaultStopsATrickler(self) -> None:
        """
        C{twistd linelogger} without the option has a line timeout.
        """
        from logger_service.tap import Options

        options = Options()
        options.parseOptions([])
        self.assertEqual(options["line-timeout"], 60)
        options = Options()
        options.parseOptions(["--line-timeout", "0"])
        self.assertEqual(options["line-timeout"], 0)
