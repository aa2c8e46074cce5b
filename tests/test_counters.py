"""
Tests for L{logger_service.counters}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from logger_service.counters import Counters
from logger_service.recorder import Recorder
from logger_service.records import RecordContext

from .memory import MemorySink


class CountersTests(SynchronousTestCase):
    """
    Counts are plain attributes; readings are what registered callables say.
    """

    def test_startAtZero(self) -> None:
        """
        Every count starts at zero, and no reason of refusal is counted.
        """
        counters = Counters()
        self.assertEqual(counters.linesReceived, 0)
        self.assertEqual(counters.connectionsTotal, 0)
        self.assertEqual(counters.refused, {})

    def test_readings(self) -> None:
        """
        A reading is what its callable returns when read, not when
        registered; the last part to register a name wins; an unregistered
        name reads C{None}.
        """
        counters = Counters()
        value = [1]
        counters.register("connectionsOpen", lambda: value[0])
        value[0] = 5
        self.assertEqual(counters.read("connectionsOpen"), 5)
        counters.register("connectionsOpen", lambda: 7)
        self.assertEqual(counters.read("connectionsOpen"), 7)
        self.assertIsNone(counters.read("chatMembers"))

    def test_registerOutput(self) -> None:
        """
        The output's readings follow the recorder that writes the output.
        """
        clock = Clock()
        sink = MemorySink()
        recorder = Recorder(sink, clock, flushInterval=0.01, bufferBytes=4096)
        counters = Counters()
        counters.registerOutput(recorder)
        self.assertEqual(counters.read("outputBufferLimitBytes"), 4096)
        recorder.record(RecordContext("127.0.0.1:1", 1), [b"one", b"two"])
        self.assertGreater(counters.read("outputBufferBytes") or 0, 0)
        clock.advance(0.01)
        self.assertEqual(counters.read("recordsWritten"), 2)
        self.assertEqual(counters.read("bytesWritten"), len(b"".join(sink.writes)))
        self.assertEqual(counters.read("outputBufferBytes"), 0)
        self.assertEqual(counters.read("writeErrors"), 0)
