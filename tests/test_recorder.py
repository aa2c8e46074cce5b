"""
Tests for L{logger_service.recorder} and L{logger_service.writer}.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any, Callable, Dict, List, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from logger_service.filesink import FileSink
from logger_service.recorder import Recorder
from logger_service.records import RecordContext
from logger_service.writer import IWriter, ThreadWriter

from .memory import ENOSPC, MemorySink, RecordListener
from .syscalls import SyscallLog, unsyncedAcks

CONTEXT = RecordContext("10.0.0.1:4000", 7)
OTHER = RecordContext("10.0.0.2:4000", 8)


def payloads(sink: MemorySink) -> List[bytes]:
    return [line.split(b" ", 2)[2] for line in sink.data.splitlines()]


@implementer(IWriter)
class ManualWriter:
    """
    A writer whose operations run only when the test says: a stand-in for a
    slow disk or a stalled pipe.
    """

    def __init__(self) -> None:
        self.queue: List[Tuple[Deferred[Any], Callable[..., Any], Tuple[Any, ...]]] = []
        self.finished: List[Tuple[Deferred[Any], Callable[[], None]]] = []
        self.stopped = False

    def run(self, operation: Callable[..., Any], *args: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self.queue.append((d, operation, args))
        return d

    def stop(self) -> None:
        self.stopped = True

    def step(self) -> None:
        """
        Run the oldest queued operation, and deliver its result.
        """
        self.finish()
        self.poll()

    def finish(self) -> None:
        """
        Run the oldest queued operation, keeping its result until L{poll}
        (as the writer thread does until the reactor's next turn).
        """
        d, operation, args = self.queue.pop(0)
        try:
            result = operation(*args)
        except BaseException:
            failure = Failure()
            self.finished.append((d, lambda: d.errback(failure)))
        else:
            self.finished.append((d, lambda: d.callback(result)))

    def poll(self) -> None:
        """
        Deliver the results of finished operations.
        """
        while self.finished:
            _, deliver = self.finished.pop(0)
            deliver()


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

    def test_batchesGrowWhileWriting(self) -> None:
        """
        While a write is under way, records pile up; when it ends they all
        go out in the next write, at once.
        """
        writer = ManualWriter()
        recorder = Recorder(self.sink, self.clock, writer=writer, flushBytes=10)
        recorder.record(CONTEXT, [b"first batch"])
        self.assertEqual(len(writer.queue), 1)
        for i in range(5):
            recorder.record(CONTEXT, [b"waiting %d" % i])
        self.assertEqual(len(writer.queue), 1, "one write at a time")
        writer.step()
        self.assertEqual(len(writer.queue), 1, "the next write starts as soon as the first ends")
        writer.step()
        self.assertEqual(len(self.sink.writes), 2)
        self.assertEqual(payloads(self.sink), [b"first batch"] + [b"waiting %d" % i for i in range(5)])


class PressureTests(SynchronousTestCase):
    """
    Past C{bufferBytes} the recorder asks for input to pause, and to resume
    at half.
    """

    def test_pauseAndResume(self) -> None:
        """
        A stalled output makes records pile up to the buffer: input pauses;
        once it drains, input resumes; nothing is lost or doubled.
        """
        clock = Clock()
        sink = MemorySink()
        writer = ManualWriter()
        recorder = Recorder(sink, clock, writer=writer, flushBytes=100, bufferBytes=1000)
        calls: List[bool] = []
        recorder.listen(RecordListener(pressure=calls.append))
        sent = 0
        with capturedLogs():
            while not calls:
                recorder.record(CONTEXT, [b"%04d %s" % (sent, b"x" * 60)])
                sent += 1
            self.assertEqual(calls, [True])
            self.assertGreater(recorder.pendingBytes, 1000)
            self.assertLess(recorder.pendingBytes, 1200, "paused as soon as the buffer was passed")
            while writer.queue:
                writer.step()
        self.assertEqual(calls, [True, False])
        self.assertEqual([p[:4] for p in payloads(sink)], [b"%04d" % i for i in range(sent)])


class SmallBufferTests(SynchronousTestCase):
    """
    A C{bufferBytes} smaller than a batch (C{flushBytes}) still writes as
    soon as there is data, not on the timer.
    """

    def test_writeStartsWithoutTimer(self) -> None:
        """
        With a 64 KiB buffer and the default 256 KiB batches, records worth
        half the buffer start a write at once: the clock never moves.
        """
        clock = Clock()
        sink = MemorySink()
        writer = ManualWriter()
        recorder = Recorder(sink, clock, writer=writer, bufferBytes=64 * 1024)
        pressure: List[bool] = []
        recorder.listen(RecordListener(pressure=pressure.append))
        line = b"x" * 100
        while recorder.pendingBytes < 32 * 1024:
            self.assertEqual(writer.queue, [])
            recorder.record(CONTEXT, [line])
        self.assertEqual(len(writer.queue), 1, "the write started without the timer")
        self.assertEqual(pressure, [])
        # Input pauses only once a write is under way, and the write's end
        # starts the next one at once: the timer is never needed.
        while not pressure:
            recorder.record(CONTEXT, [line])
        sent = recorder.pendingBytes
        while writer.queue:
            writer.step()
        self.assertEqual(pressure, [True, False])
        self.assertEqual(len(sink.data), sent)
        self.assertEqual(clock.seconds(), 0)


class FailureTests(SynchronousTestCase):
    """
    A failed write loses nothing, is logged once, and is retried; input
    pauses meanwhile.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.recorder = Recorder(self.sink, self.clock, flushInterval=0.05)
        self.pressure: List[bool] = []
        self.recorder.listen(RecordListener(pressure=self.pressure.append))

    def test_retryAfterError(self) -> None:
        """
        After an error every record is still written, once, in order, when
        the sink works again; the error is logged once per episode, input
        pauses while it lasts.
        """
        self.sink.failWith = ENOSPC
        with capturedLogs() as events:
            self.recorder.record(CONTEXT, [b"a", b"b"])
            self.clock.advance(0.05)
            self.assertEqual(self.pressure, [True])
            self.recorder.record(CONTEXT, [b"c"])
            for _ in range(3):
                self.clock.advance(self.recorder.retryInterval)
            self.assertEqual(self.sink.writes, [])
            self.assertEqual(self.recorder.writeErrors, 4)
            self.sink.failWith = None
            self.clock.advance(self.recorder.retryInterval)
        self.assertEqual(payloads(self.sink), [b"a", b"b", b"c"])
        errors = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(len(errors), 1)
        self.assertIn("injected failure", str(errors[0]["error"]))
        self.assertEqual(self.recorder.recordsWritten, 3)
        self.assertEqual(self.pressure, [True, False])

    def test_noTightRetryLoop(self) -> None:
        """
        While failing, new records do not trigger writes: only the retry
        timer does.
        """
        self.sink.failWith = ENOSPC
        self.recorder.flushBytes = 1
        with capturedLogs():
            self.recorder.record(CONTEXT, [b"a"])
            for _ in range(10):
                self.recorder.record(CONTEXT, [b"more"])
        self.assertEqual(self.recorder.writeErrors, 1)

    def test_shortWriteKeepsRest(self) -> None:
        """
        When a write stops part way, the rest is written next time, so the
        output is exactly the records, each once.
        """
        self.recorder.record(CONTEXT, [b"first", b"second"])
        expected = b"".join(self.recorder._pending)
        self.sink.acceptOnly = 10
        with capturedLogs():
            self.recorder.flush()
            self.assertEqual(len(self.sink.data), 10)
            self.clock.advance(self.recorder.retryInterval)
        self.assertEqual(self.sink.data, expected)
        self.assertEqual(self.recorder.recordsWritten, 2)

    def test_shortWriteReportsError(self) -> None:
        """
        The error that cut a write short (the sink's C{writeError}, such as
        an fsync failing before a rotation) is the one logged.
        """
        self.recorder.record(CONTEXT, [b"first", b"second"])
        self.sink.acceptOnly = 10
        error = OSError(errno.EIO, "injected sync failure")
        self.sink.writeError = error
        with capturedLogs() as events:
            self.recorder.flush()
        (logged,) = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertIs(logged["error"], error)

    def test_closeGivesUp(self) -> None:
        """
        Closing while the sink still fails waits for the timeout, then says
        how much is lost.
        """
        self.recorder.record(CONTEXT, [b"a"])
        self.sink.failWith = ENOSPC
        with capturedLogs() as events:
            closed = self.recorder.close(timeout=3)
            self.clock.advance(2.5)
            self.assertNoResult(closed)
            self.clock.advance(0.5)
        self.assertFalse(self.successResultOf(closed))
        self.assertTrue(any("unwritten" in e["log_format"] for e in events))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_closeWritesEverything(self) -> None:
        """
        Closing writes what is pending, closes the sink, and fires True.
        """
        self.recorder.record(CONTEXT, [b"a"])
        closed = self.recorder.close()
        self.assertTrue(self.successResultOf(closed))
        self.assertEqual(payloads(self.sink), [b"a"])
        self.assertTrue(self.sink.closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class DurabilityTests(SynchronousTestCase):
    """
    C{fsync} and acknowledgements.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.acks: List[Dict[int, int]] = []

    def make(self, **kwargs: Any) -> Recorder:
        recorder = Recorder(self.sink, self.clock, acks=True, flushInterval=0.05, **kwargs)
        recorder.listen(RecordListener(durable=self.acks.append))
        return recorder

    def test_acksAfterWrite(self) -> None:
        """
        Without fsync, lines are acknowledged per connection once written,
        once per batch.
        """
        recorder = self.make()
        recorder.record(CONTEXT, [b"a", b"b"])
        recorder.record(OTHER, [b"c"])
        recorder.record(CONTEXT, [b"d"])
        self.assertEqual(self.acks, [])
        self.clock.advance(0.05)
        self.assertEqual(self.acks, [{7: 3, 8: 1}])
        self.assertEqual(self.sink.syncs, 0)

    def test_fsyncAlways(self) -> None:
        """
        With C{fsync=0}, each write is synced before its lines are
        acknowledged.
        """
        recorder = self.make(fsync=0)
        recorder.record(CONTEXT, [b"a"])
        self.clock.advance(0.05)
        recorder.record(CONTEXT, [b"b"])
        self.clock.advance(0.05)
        self.assertEqual(self.sink.syncs, 2)
        self.assertEqual(self.acks, [{7: 1}, {7: 1}])
        self.assertEqual(recorder.syncs, 2)

    def test_groupCommit(self) -> None:
        """
        With C{fsync=S}, writes are synced at most every S seconds, and acks
        wait for the sync that covers them.
        """
        recorder = self.make(fsync=1.0)
        recorder.record(CONTEXT, [b"a"])
        self.clock.advance(0.05)
        self.assertEqual(self.sink.syncs, 1, "the first sync is due at once")
        self.assertEqual(self.acks, [{7: 1}])
        for _ in range(5):
            recorder.record(CONTEXT, [b"x"])
            self.clock.advance(0.1)
        self.assertEqual(len(self.sink.writes), 6)
        self.assertEqual(self.sink.syncs, 1, "no second sync within the second")
        self.assertEqual(self.acks, [{7: 1}])
        self.clock.advance(0.45)
        self.assertEqual(self.sink.syncs, 1)
        self.clock.advance(0.1)
        self.assertEqual(self.sink.syncs, 2)
        self.assertEqual(self.acks, [{7: 1}, {7: 5}])

    def test_syncFailure(self) -> None:
        """
        A failed fsync is retried, and its lines acknowledged only after it
        succeeds.
        """
        recorder = self.make(fsync=0)
        self.sink.failSyncWith = ENOSPC
        with capturedLogs():
            recorder.record(CONTEXT, [b"a"])
            self.clock.advance(0.05)
            self.assertEqual(self.acks, [])
            self.assertEqual(recorder.writeErrors, 1)
            self.sink.failSyncWith = None
            self.clock.advance(recorder.retryInterval)
        self.assertEqual(self.acks, [{7: 1}])
        self.assertEqual(payloads(self.sink), [b"a"], "the write was not repeated")

    def test_closeSyncs(self) -> None:
        """
        Closing syncs what is written but unsynced.
        """
        recorder = self.make(fsync=10.0)
        recorder.record(CONTEXT, [b"a"])
        self.clock.advance(0.05)
        recorder.record(CONTEXT, [b"b"])
        self.clock.advance(0.05)
        self.assertEqual(self.sink.syncs, 1)
        self.assertTrue(self.successResultOf(recorder.close()))
        self.assertEqual(self.sink.syncs, 2)
        self.assertEqual(self.acks, [{7: 1}, {7: 1}])

    def test_closeSyncsWithoutWaiting(self) -> None:
        """
        Lines written while closing, as a sync runs, are synced as soon as
        it ends, not a group commit interval later.
        """
        writer = ManualWriter()
        recorder = self.make(fsync=10.0, writer=writer)
        recorder.record(CONTEXT, [b"a"])
        self.clock.advance(0.05)
        writer.step()
        self.clock.advance(0)
        recorder.record(CONTEXT, [b"b"])
        self.clock.advance(0.05)
        closed = recorder.close()
        writer.step()
        writer.step()
        self.clock.advance(0)
        writer.step()
        writer.step()
        self.assertTrue(self.successResultOf(closed))
        self.assertEqual(self.sink.syncs, 2)
        self.assertEqual(self.acks, [{7: 1}, {7: 1}])


class RotationDurabilityTests(SynchronousTestCase):
    """
    With C{fsync}, a line is acknowledged only once it is on disk, even if
    its file was rotated or reopened since it was written.
    """

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "records.log")
        self.clock = Clock()
        self.calls = SyscallLog(self.dir)
        self.acked = 0

    def make(self, fsync: float, rotateSize: int = 0) -> Recorder:
        sink = FileSink(self.path, rotateSize=rotateSize or None, durable=True)
        recorder = Recorder(sink, self.clock, acks=True, fsync=fsync, flushBytes=300)
        self.calls.install(self.patch)

        def durable(counts: Dict[int, int]) -> None:
            self.acked += counts[CONTEXT.conn]
            self.calls.note(["ack", self.acked])

        recorder.listen(RecordListener(durable=durable))
        return recorder

    def feed(self, recorder: Recorder, lines: int) -> None:
        with capturedLogs():
            for i in range(lines):
                recorder.record(CONTEXT, [b"line %04d" % i])
                self.clock.advance(0.01)
            self.assertTrue(self.successResultOf(recorder.close()))
        self.assertEqual(self.acked, lines)
        self.assertEqual(unsyncedAcks(self.calls.events), [])

    def test_groupCommitAcrossRotation(self) -> None:
        """
        With group commit, lines written to a file that then rotates are
        acknowledged only after that file was fsynced.
        """
        recorder = self.make(fsync=0.5, rotateSize=500)
        self.feed(recorder, 300)
        self.assertGreater(len([e for e in self.calls.events if e[0] == "rename"]), 10)

    def test_fsyncAlwaysAcrossRotation(self) -> None:
        """
        With C{fsync} after every write, too.
        """
        recorder = self.make(fsync=0, rotateSize=500)
        self.feed(recorder, 300)

    def test_groupCommitAcrossReopen(self) -> None:
        """
        Lines written to a file before a reopen (logrotate moved it) are
        acknowledged only after that file was fsynced.
        """
        recorder = self.make(fsync=10.0)
        recorder.record(CONTEXT, [b"first"])
        self.clock.advance(0.05)
        self.assertEqual(self.acked, 1, "the first sync is due at once")
        recorder.record(CONTEXT, [b"second"])
        self.clock.advance(0.05)
        os.rename(self.path, self.path + ".1")
        with capturedLogs():
            recorder.reopen()
        recorder.record(CONTEXT, [b"third"])
        self.clock.advance(10)
        self.assertEqual(self.acked, 3)
        self.assertEqual(unsyncedAcks(self.calls.events), [])


class FakeReactorThreads:
    """
    Collects C{callFromThread} calls, to be run in the test's thread.
    """

    def __init__(self) -> None:
        self.calls: List[Tuple[Callable[..., Any], Tuple[Any, ...]]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Semaphore(0)

    def callFromThread(self, f: Callable[..., Any], *args: Any) -> None:
        with self.lock:
            self.calls.append((f, args))
        self.arrived.release()

    def runOne(self) -> None:
        if not self.arrived.acquire(timeout=10):
            raise AssertionError("no result from the writer thread")
        with self.lock:
            f, args = self.calls.pop(0)
        f(*args)


class PollTests(SynchronousTestCase):
    """
    A write that has finished, its result not yet delivered, does not hold
    up the next one once a batch is full.
    """

    def test_fullBatchTakesFinishedWrite(self) -> None:
        """
        With a write finished but undelivered, a full batch makes the
        recorder take that result and start the next write at once.
        """
        clock = Clock()
        sink = MemorySink()
        writer = ManualWriter()
        recorder = Recorder(sink, clock, writer=writer, flushBytes=1000)
        context = RecordContext("192.0.2.1:5555", 1)
        recorder.record(context, [b"a" * 1100])
        self.assertEqual(len(writer.queue), 1)
        writer.finish()
        recorder.record(context, [b"b" * 500])
        self.assertEqual((len(writer.queue), len(writer.finished)), (0, 1), "a small batch waits")
        recorder.record(context, [b"c" * 600])
        self.assertEqual((len(writer.queue), len(writer.finished)), (1, 0))
        self.assertEqual(payloads(sink), [b"a" * 1100])
        writer.step()
        self.assertEqual(payloads(sink), [b"a" * 1100, b"b" * 500, b"c" * 600])


class ThreadWriterTests(SynchronousTestCase):
    """
    L{ThreadWriter} runs operations in order in another thread and reports
    back through C{callFromThread}.
    """

    def test_poll(self) -> None:
        """
        L{ThreadWriter.poll} delivers finished results at once, in the
        calling thread; the reactor's later call delivers nothing twice.
        """
        reactor = FakeReactorThreads()
        writer = ThreadWriter(reactor)  # type: ignore[arg-type]
        self.addCleanup(writer.stop)
        results: List[int] = []
        writer.run(lambda: 1).addCallback(results.append)
        writer.run(lambda: 2).addCallback(results.append)
        for _ in range(2):
            self.assertTrue(reactor.arrived.acquire(timeout=10))
        writer.poll()
        self.assertEqual(results, [1, 2])
        for f, args in reactor.calls:
            f(*args)
        self.assertEqual(results, [1, 2])

    def test_orderAndResults(self) -> None:
        """
        Results and failures come back in submission order, from a thread
        that is not the caller's.
        """
        reactor = FakeReactorThreads()
        writer = ThreadWriter(reactor)  # type: ignore[arg-type]
        self.addCleanup(writer.stop)
        threads: List[str] = []
        results: List[object] = []

        def op(n: int) -> int:
            threads.append(threading.current_thread().name)
            if n == 2:
                raise OSError("boom")
            return n * 10

        for n in range(4):
            writer.run(op, n).addCallbacks(results.append, lambda f: results.append(f.value.args[0]))
        for _ in range(4):
            reactor.runOne()
        self.assertEqual(results, [0, 10, "boom", 30])
        self.assertEqual(set(threads), {"linelogger-writer"})
        self.assertNotEqual(threading.current_thread().name, "linelogger-writer")
