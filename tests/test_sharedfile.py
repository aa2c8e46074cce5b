"""
Tests for L{logger_service.sharedfile}: two sinks on one file in one
process, as two workers are, with real files and real locks.
"""

from __future__ import annotations

import errno
import fcntl
import os
import threading
from typing import Any, List

from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from logger_service.assembly import workerRecorder
from logger_service.sharedfile import SharedFileSink, WorkersWriteSink

from .syscalls import SyscallLog


class SharedFileSinkTests(SynchronousTestCase):
    """
    Writers sharing one file through L{SharedFileSink}.
    """

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "records.log")

    def sink(self, **kwargs: Any) -> SharedFileSink:
        sink = SharedFileSink(self.path, **kwargs)
        self.addCleanup(sink.close)
        return sink

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def inode(self, path: str) -> int:
        return os.stat(path).st_ino

    def holdLock(self) -> int:
        """
        Take the lock the sinks take (the directory's C{flock}) from a
        descriptor of the test's own; return it.
        """
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def writeInThread(self, sink: SharedFileSink, data: bytes) -> threading.Thread:
        thread = threading.Thread(target=sink.write, args=(data,))
        thread.start()
        self.addCleanup(thread.join, 30)
        return thread

    def test_batchesWhole(self) -> None:
        """
        Batches from two writers are appended whole, in the order written.
        """
        a, b = self.sink(), self.sink()
        batches = [b"a%d 1\na%d 2\n" % (i, i) if i % 2 else b"b%d 1\nb%d 2\n" % (i, i) for i in range(6)]
        for i, batch in enumerate(batches):
            self.assertEqual((a if i % 2 else b).write(batch), len(batch))
        self.assertEqual(self.read(self.path), b"".join(batches))

    def test_writeWaitsForTheLock(self) -> None:
        """
        A write waits while another writer holds the lock, and goes on once
        it is released.
        """
        sink = self.sink()
        lock = self.holdLock()
        thread = self.writeInThread(sink, b"waited\n")
        thread.join(0.5)
        self.assertTrue(thread.is_alive())
        self.assertEqual(self.read(self.path), b"")
        fcntl.flock(lock, fcntl.LOCK_UN)
        thread.join(30)
        self.assertFalse(thread.is_alive())
        self.assertEqual(self.read(self.path), b"waited\n")

    def test_lockReleasedAfterWrite(self) -> None:
        """
        Once a write is done, the lock is free for others.
        """
        self.sink().write(b"done\n")
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY)
        self.addCleanup(os.close, fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def test_sizeOfOthersCounts(self) -> None:
        """
        The limit counts what every writer wrote: the batch that crosses it
        is split after the record that reaches it, and the rest goes to a
        new file.
        """
        a, b = self.sink(rotateSize=20), self.sink(rotateSize=20)
        a.write(b"0123456789abcd\n")
        b.write(b"aaaa\nbbbb\n")
        self.assertEqual(self.read(self.path + ".1"), b"0123456789abcd\naaaa\n")
        self.assertEqual(self.read(self.path), b"bbbb\n")

    def test_rotationSeenByTheOther(self) -> None:
        """
        A writer that finds another file at the path (another writer
        rotated) closes its old file and appends to the new one.
        """
        a, b = self.sink(rotateSize=10), self.sink(rotateSize=10)
        a.write(b"first\n")
        b.write(b"second\n")
        old = self.inode(self.path)
        b.write(b"third\n")
        self.assertNotEqual(self.inode(self.path), old)
        a.write(b"fourth\n")
        self.assertEqual(self.read(self.path + ".1"), b"first\nsecond\n")
        self.assertEqual(self.read(self.path), b"third\nfourth\n")
        self.assertEqual(os.fstat(a._file.fileno()).st_ino, self.inode(self.path))
        self.assertEqual(sorted(os.listdir(self.dir)), ["records.log", "records.log.1"])

    def test_neverPastTheLimit(self) -> None:
        """
        Writers taking turns: each file but the current one ends past the
        limit by less than one record, and every record is in one file.
        """
        writers = [self.sink(rotateSize=100), self.sink(rotateSize=100)]
        records: List[bytes] = []
        for i in range(60):
            batch = [b"%d-%d-%s\n" % (i, k, b"x" * (i % 7 * 5)) for k in range(1 + i % 4)]
            records.extend(batch)
            writers[i % 2].write(b"".join(batch))
        names = sorted(os.listdir(self.dir))
        rotated = sorted((int(name.rsplit(".", 1)[1]) for name in names if name != "records.log"), reverse=True)
        self.assertGreater(len(rotated), 5)
        found: List[bytes] = []
        for number in rotated:
            lines = self.read(f"{self.path}.{number}").splitlines(keepends=True)
            self.assertGreaterEqual(sum(map(len, lines)), 100)
            self.assertLess(sum(map(len, lines[:-1])), 100)
            found.extend(lines)
        found.extend(self.read(self.path).splitlines(keepends=True))
        self.assertEqual(found, records)

    def test_durableFollowSyncsTheOldFile(self) -> None:
        """
        When durable, a writer that follows another's rotation fsyncs its
        old file before closing it: lines it wrote there may wait for a sync.
        """
        a, b = self.sink(rotateSize=10, durable=True), self.sink(rotateSize=10, durable=True)
        a.write(b"0123456789\n")
        first = self.inode(self.path)
        b.write(b"rotates\n")
        second = self.inode(self.path)
        calls = SyscallLog(self.dir)
        calls.install(self.patch)
        a.write(b"after\n")
        a.sync()
        self.assertEqual(calls.events, [["fsync", first], ["write", second, 1], ["fsync", second], ["fsyncdir"]])

    def test_reopenSeenByTheOther(self) -> None:
        """
        After the file was moved away, one writer's reopen (SIGHUP) makes
        a new file, which the other then follows.
        """
        a, b = self.sink(), self.sink()
        a.write(b"before a\n")
        b.write(b"before b\n")
        os.rename(self.path, self.path + ".moved")
        b.write(b"moved b\n")
        a.reopen()
        b.write(b"after b\n")
        a.write(b"after a\n")
        self.assertEqual(self.read(self.path + ".moved"), b"before a\nbefore b\nmoved b\n")
        self.assertEqual(self.read(self.path), b"after b\nafter a\n")

    def test_tornRecordEnded(self) -> None:
        """
        A file that another writer left part way through a record (killed
        while writing) gets that record ended before the next batch.
        """
        a = self.sink()
        a.write(b"whole\n")
        with open(self.path, "ab") as f:
            f.write(b"torn")
        b = self.sink()
        self.assertEqual(b.tornRecords, 1)
        with open(self.path, "ab") as f:
            f.write(b"torn again")
        with capturedLogs() as events:
            a.write(b"next\n")
        self.assertEqual(a.tornRecords, 1)
        self.assertEqual([e["cause"] for e in events], ["a writer was killed while writing?"])
        self.assertEqual(self.read(self.path), b"whole\ntorn\ntorn again\nnext\n")

    def test_shortWriteKeepsTheLock(self) -> None:
        """
        A write cut short part way through a record keeps the lock until
        the rest of that record is written: no other writer's batch comes
        in between.
        """
        a, b = self.sink(), self.sink()
        realWrite = os.write
        state = {"left": 5}

        def write(fd: int, data: Any) -> int:
            if state["left"] < 0 or not os.path.realpath(f"/proc/self/fd/{fd}").startswith(self.dir):
                return realWrite(fd, data)
            if state["left"] == 0:
                state["left"] = -1
                raise OSError(errno.ENOSPC, "injected")
            n = realWrite(fd, bytes(data[: state["left"]]))
            state["left"] -= n
            return n

        self.patch(os, "write", write)
        self.assertEqual(a.write(b"abcdefgh\n"), 5)
        thread = self.writeInThread(b, b"other\n")
        thread.join(0.5)
        self.assertTrue(thread.is_alive())
        self.assertEqual(a.write(b"fgh\n"), 4)
        thread.join(30)
        self.assertFalse(thread.is_alive())
        self.assertEqual(self.read(self.path), b"abcdefgh\nother\n")


class WorkersWriteSinkTests(SynchronousTestCase):
    """
    The supervisor's side when the workers write the file.
    """

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "records.log")

    def test_endsATornRecordOnce(self) -> None:
        """
        At start it ends a record the last run left torn, before any worker
        opens the file.
        """
        with open(self.path, "wb") as f:
            f.write(b"whole\ntorn")
        sink = WorkersWriteSink(self.path)
        sink.close()
        with open(self.path, "rb") as f:
            self.assertEqual(f.read(), b"whole\ntorn\n")

    def test_cannotOpen(self) -> None:
        """
        An output that cannot be opened is an error at start, as with one
        process.
        """
        self.assertRaises(OSError, WorkersWriteSink, os.path.join(self.dir, "missing", "records.log"))

    def test_reopenPassedOn(self) -> None:
        """
        A reopen (SIGHUP) is passed on to the workers; a write never
        succeeds.
        """
        sink = WorkersWriteSink(self.path)
        calls: List[str] = []
        sink.reopenWorkers = lambda: calls.append("reopen")
        sink.reopen()
        self.assertEqual(calls, ["reopen"])
        self.assertRaises(OSError, sink.write, b"x\n")

    def test_systemdStatus(self) -> None:
        """
        The supervisor's systemd status says the workers write the output,
        rather than counting records it does not write.
        """
        from twisted.internet.task import Clock

        from logger_service.counters import Counters
        from logger_service.recorder import Recorder
        from logger_service.workers import PoolNotifyService, WorkerPool

        clock = Clock()
        pool = WorkerPool(Recorder(WorkersWriteSink(self.path), clock), clock, [], 2, [])
        pool.workersWrite = True
        self.assertEqual(PoolNotifyService(pool, Counters(), clock).status(), "0 workers, each writing the output")


class OptionTests(SynchronousTestCase):
    """
    C{--worker-output}, and which workers write the output.
    """

    def options(self, *args: str) -> Any:
        from logger_service.tap import Options

        options = Options()
        options.parseOptions(list(args))
        return options

    def test_default(self) -> None:
        """
        By default the workers write C{--output FILE} themselves.
        """
        from twisted.internet.task import Clock

        path = os.path.join(os.path.abspath(self.mktemp()))
        recorder = workerRecorder(self.options("--output", path), Clock())
        assert recorder is not None
        self.addCleanup(recorder.sink.close)
        self.assertIsInstance(recorder.sink, SharedFileSink)

    def test_supervisorOrStdout(self) -> None:
        """
        With C{--worker-output supervisor}, or C{--output -} (a pipe could
        interleave large records), a worker sends its records to the
        supervisor instead.
        """
        from twisted.internet.task import Clock

        path = os.path.abspath(self.mktemp())
        self.assertIsNone(workerRecorder(self.options("--output", path, "--worker-output", "supervisor"), Clock()))
        self.assertIsNone(workerRecorder(self.options("--output", "-"), Clock()))
        self.assertFalse(os.path.exists(path))

    def test_bad(self) -> None:
        """
        Anything else is a usage error naming the option.
        """
        from twisted.python.usage import UsageError

        error = self.assertRaises(UsageError, self.options, "--worker-output", "both")
        self.assertIn("--worker-output", str(error))
