"""
Tests for L{logger_service.longlines}: long lines and broken frames, at the
protocol level.
"""

from __future__ import annotations

from typing import List, Tuple

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from logger_service.factory import LineLoggerFactory
from logger_service.framing import LongLines
from logger_service.hub import Hub
from logger_service.recorder import Recorder

from .memory import MemorySink
from .test_protocol import build, buildWith, connect, records


class LongLineTests(SynchronousTestCase):
    """
    Each C{--long-lines} policy, at the protocol level.
    """

    def run_policy(self, policy: LongLines) -> Tuple[List[dict], StringTransport, list]:
        factory, sink, clock = build(maxLineLength=4, longLines=policy)
        with capturedLogs() as events:
            protocol, transport = connect(factory)
            protocol.dataReceived(b"abcdefghij\nok\n")
            protocol.dataReceived(b"second too long\n")
            clock.advance(0.1)
        return records(sink), transport, list(events)

    def test_split(self) -> None:
        """
        C{split} records every byte, in pieces flagged split.
        """
        got, transport, events = self.run_policy(LongLines.split)
        self.assertEqual([r["line"] for r in got][:4], ["abcd", "efgh", "ij", "ok"])
        self.assertEqual("".join(r["line"] for r in got[4:]), "second too long")
        self.assertTrue(all(r.get("split") for r in got if r["line"] != "ok"))
        self.assertFalse(transport.disconnecting)
        warnings = [e for e in events if "longer than" in e["log_format"]]
        self.assertEqual(len(warnings), 1, "warned once per connection")

    def test_truncate(self) -> None:
        """
        C{truncate} keeps the first bytes of each long line and goes on.
        """
        got, transport, _ = self.run_policy(LongLines.truncate)
        self.assertEqual([r["line"] for r in got], ["abcd", "ok", "seco"])
        self.assertEqual([bool(r.get("truncated")) for r in got], [True, False, True])
        self.assertFalse(transport.disconnecting)

    def test_close(self) -> None:
        """
        C{close} keeps the first bytes, tells the client why, and closes.
        """
        got, transport, _ = self.run_policy(LongLines.close)
        self.assertEqual([r["line"] for r in got], ["abcd"])
        self.assertTrue(got[0]["truncated"])
        self.assertEqual(transport.value(), b"error: line longer than 4 bytes; closing connection\r\n")
        self.assertTrue(transport.disconnecting)


class LongLineAckTests(SynchronousTestCase):
    """
    C{--long-lines close} with C{--ack}: the lines recorded before the close
    are acknowledged before it.
    """

    def test_okBeforeError(self) -> None:
        """
        Lines that came in the same chunk as the long one (and its recorded
        first bytes) are acknowledged, then the client hears why, then the
        connection closes.
        """
        clock = Clock()
        sink = MemorySink()
        hub = Hub(Recorder(sink, clock, format="json", acks=True))
        factory = LineLoggerFactory(hub, acks=True, clock=clock, maxLineLength=4, longLines=LongLines.close)
        with capturedLogs():
            protocol, transport = connect(factory)
            protocol.dataReceived(b"one\ntwo\nmuch too long\nafter\n")
            self.assertEqual(transport.value(), b"")
            self.assertFalse(transport.disconnecting)
            self.assertEqual(transport.producerState, "paused")
            self.assertEqual(protocol.closing, "after acks")
            clock.advance(0.1)
            self.assertEqual(protocol.closing, "now")
        self.assertEqual(transport.value(), b"ok 3\r\nerror: line longer than 4 bytes; closing connection\r\n")
        self.assertTrue(transport.disconnecting)
        self.assertEqual([r["line"] for r in records(sink)], ["one", "two", "much"])

    def test_withoutAckAtOnce(self) -> None:
        """
        Without C{--ack} the close comes at once, as before.
        """
        factory, _, _ = build(maxLineLength=4, longLines=LongLines.close)
        with capturedLogs():
            protocol, transport = connect(factory)
            self.assertIsNone(protocol.closing)
            protocol.dataReceived(b"one\nmuch too long\n")
        self.assertEqual(protocol.closing, "now")
        self.assertEqual(transport.value(), b"error: line longer than 4 bytes; closing connection\r\n")
        self.assertTrue(transport.disconnecting)


class FramingFallbackTests(SynchronousTestCase):
    """
    A client whose octet-counted framing breaks is a warning, in C{auto}
    mode too.
    """

    def test_warning(self) -> None:
        """
        Bytes that are no octet-counted frame are logged at warn level, once
        per connection, and counted.
        """
        for framing in ("octet", "auto"):
            factory, _, _ = buildWith(framing=framing)
            with capturedLogs() as events:
                protocol, _ = connect(factory)
                protocol.dataReceived(b"12x is not a frame\nnor this\n")
                protocol.dataReceived(b"5 more\n")
            [event] = [e for e in events if "octet-counted" in e["log_format"]]
            self.assertEqual(event["log_level"], LogLevel.warn, framing)
            self.assertEqual(factory.hub.counters.framingErrors, 1)
