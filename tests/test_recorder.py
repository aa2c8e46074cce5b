"""
Tests for L{logger_service.recorder}.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from logger_service.recorder import Recorder
from logger_service.records import RecordContext

from .memory import ENOSPC, MemorySink

CONTEXT = RecordContext("10.0.0.1:4000", 7)


class BatchingTests(SynchronousTestCase):
    """
    Records are written in batches: after a short delay, or once enough wait.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_700_000_000.25)
        self.sink = MemorySink()
        self.recorder = Recorder(self.sink, self.clock, flushInterval=0.05, flushBytes=1000)

    def test_timestampOfArrival(self) -> None:
        """
        Each record carries the time its line arrived, not the time of the
        write.
        """
        self.recorder.record(CONTEXT, [b"one"])
        self.clock.advance(0.01)
        self.recorder.record(CONTEXT, [b"two"])
        self.clock.advance(0.05)
        self.assertEqual(
            self.sink.data,
            b"2023-11-14T22:13:20.250000Z 10.0.0.1:4000 one\n2023-11-14T22:13:20.260000Z 10.0.0.1:4000 two\n",
        )

    def test_oneWritePerInterval(self) -> None:
        """
        Lines arriving within the flush interval go out in one write, no
        later than the interval after the first of them.
        """
        for i in range(5):
            self.recorder.record(CONTEXT, [b"line %d" % i])
            self.clock.advance(0.009)
        self.assertEqual(self.sink.writes, [])
        self.clock.advance(0.006)
        self.assertEqual(len(self.sink.writes), 1)
        self.assertEqual(self.sink.data.count(b"\n"), 5)
        self.assertEqual(self.recorder.recordsWritten, 5)
        self.assertEqual(self.recorder.pendingBytes, 0)

    def test_flushWhenFull(self) -> None:
        """
        Once C{flushBytes} are waiting, they are written at once.
        """
        self.recorder.record(CONTEXT, [b"x" * 500] * 2)
        self.assertEqual(len(self.sink.writes), 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_idleMeansNoTimer(self) -> None:
        """
        With nothing to write no timer is left running.
        """
        self.recorder.record(CONTEXT, [b"a"])
        self.clock.advance(1)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_jsonFormat(self) -> None:
        """
        The format named at construction is used.
        """
        recorder = Recorder(self.sink, self.clock, format="json")
        recorder.record(CONTEXT, [b"hi"])
        recorder.flush()
        self.assertEqual(
            self.sink.data,
            b'{"time":"2023-11-14T22:13:20.250000Z","peer":"10.0.0.1:4000","conn":7,"line":"hi"}\n',
        )


class FailureTests(SynchronousTestCase):
    """
    A failed write loses nothing, is logged once, and is retried.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.recorder = Recorder(self.sink, self.clock, flushInterval=0.05)

    def test_retryAfterError(self) -> None:
        """
        After an error every record is still written, once, in order, when
        the sink works again; the error is logged once per episode.
        """
        self.sink.failWith = ENOSPC
        with capturedLogs() as events:
            self.recorder.record(CONTEXT, [b"a", b"b"])
            self.clock.advance(0.05)
            self.recorder.record(CONTEXT, [b"c"])
            for _ in range(3):
                self.clock.advance(self.recorder.retryInterval)
            self.assertEqual(self.sink.writes, [])
            self.assertEqual(self.recorder.writeErrors, 4)
            self.sink.failWith = None
            self.clock.advance(self.recorder.retryInterval)
        payloads = [line.split(b" ", 2)[2] for line in self.sink.data.splitlines()]
        self.assertEqual(payloads, [b"a", b"b", b"c"])
        errors = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1)
        self.assertIn("injected failure", str(errors[0]["error"]))
        self.assertEqual(self.recorder.recordsWritten, 3)

    def test_shortWriteKeepsRest(self) -> None:
        """
        When a write stops part way, the rest is written next time, so the
        output is exactly the records, each once.
        """
        self.recorder.record(CONTEXT, [b"first", b"second"])
        expected = b"".join(self.recorder._pending)
        self.sink.acceptOnly = 10
        with capturedLogs():
            self.assertFalse(self.recorder.flush())
        self.assertTrue(self.recorder.flush())
        self.assertEqual(self.sink.data, expected)
        self.assertEqual(self.recorder.recordsWritten, 2)

    def test_closeReportsLoss(self) -> None:
        """
        Closing while the sink still fails says so, and closes the sink.
        """
        self.recorder.record(CONTEXT, [b"a"])
        self.sink.failWith = ENOSPC
        with capturedLogs() as events:
            self.assertFalse(self.recorder.close())
        self.assertTrue(self.sink.closed)
        self.assertTrue(any("unwritten" in e["log_format"] for e in events))
        self.assertEqual(self.clock.getDelayedCalls(), [])
