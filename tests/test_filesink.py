"""
Tests for L{logger_service.filesink}: real files, real descriptors.
"""

from __future__ import annotations

import errno
import os
import threading
from typing import Any, List

from twisted.logger import LogLevel, capturedLogs
from twisted.python import threadable
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from logger_service import sinks
from logger_service.filesink import FileSink

from .syscalls import SyscallLog


class FileSinkTests(SynchronousTestCase):
    """
    Appending, rotating and reopening a file.
    """

    def setUp(self) -> None:
        self.dir = os.path.abspath(self.mktemp())
        os.makedirs(self.dir)
        self.path = os.path.join(self.dir, "records.log")

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def test_appendsAndCreates(self) -> None:
        """
        A missing file is created; an existing one is appended to.
        """
        with open(self.path, "wb") as f:
            f.write(b"old\n")
        sink = FileSink(self.path)
        self.assertEqual(sink.write(b"new\n"), 4)
        sink.sync()
        sink.close()
        self.assertEqual(self.read(self.path), b"old\nnew\n")

    def test_rotation(self) -> None:
        """
        Past the rotation size the file moves to FILE.1 (and older ones up),
        keeping at most C{rotateKeep}; whole batches never straddle files.
        """
        sink = FileSink(self.path, rotateSize=10, rotateKeep=2)
        batches = [b"%d-batch-of-records\n" % i for i in range(5)]
        for batch in batches:
            sink.write(batch)
        sink.close()
        names = sorted(os.listdir(self.dir))
        self.assertEqual(names, ["records.log", "records.log.1", "records.log.2"])
        self.assertEqual(self.read(self.path), batches[4])
        self.assertEqual(self.read(self.path + ".1"), batches[3])
        self.assertEqual(self.read(self.path + ".2"), batches[2])

    def test_reopen(self) -> None:
        """
        After the file was renamed away (logrotate), reopen writes to a new
        file at the path; nothing is lost or doubled.
        """
        sink = FileSink(self.path)
        sink.write(b"before\n")
        os.rename(self.path, self.path + ".old")
        sink.write(b"still old\n")
        sink.reopen()
        sink.write(b"after\n")
        sink.close()
        self.assertEqual(self.read(self.path + ".old"), b"before\nstill old\n")
        self.assertEqual(self.read(self.path), b"after\n")

    def rotatedFiles(self) -> List[bytes]:
        """
        The contents of the rotated files, oldest first, then the current.
        """
        rotated = sorted(
            (int(name.rsplit(".", 1)[1]) for name in os.listdir(self.dir) if name != "records.log"), reverse=True
        )
        return [self.read(f"{self.path}.{n}") for n in rotated] + [self.read(self.path)]

    def test_rotationSplitsBatches(self) -> None:
        """
        A batch is split after the record that brings the file to the size
        limit: each rotated file reached the limit and passed it by less
        than one record; no record is split, lost or doubled.
        """
        sink = FileSink(self.path, rotateSize=100)
        records = [b"record %03d %s\n" % (i, b"x" * (i % 17)) for i in range(60)]
        for start in range(0, 60, 20):
            batch = b"".join(records[start : start + 20])
            self.assertEqual(sink.write(batch), len(batch))
        sink.close()
        files = self.rotatedFiles()
        self.assertGreater(len(files), 10)
        for content in files[:-1]:
            self.assertGreaterEqual(len(content), 100)
            last = content[content.rstrip(b"\n").rfind(b"\n") + 1 :]
            self.assertLess(len(content) - len(last), 100, "a record was written after the limit was reached")
        self.assertLess(len(files[-1]), 100 + max(len(r) for r in records))
        self.assertEqual(b"".join(files), b"".join(records))

    def test_longRecord(self) -> None:
        """
        A record longer than the limit goes whole into the current file,
        which then rotates.
        """
        sink = FileSink(self.path, rotateSize=20)
        data = b"short\n" + b"L" * 50 + b"\n" + b"after\n"
        self.assertEqual(sink.write(data), len(data))
        sink.close()
        self.assertEqual(self.rotatedFiles(), [b"short\n" + b"L" * 50 + b"\n", b"after\n"])

    def test_existingFileOverLimit(self) -> None:
        """
        A file already past the limit at start is rotated before the first
        write.
        """
        with open(self.path, "wb") as f:
            f.write(b"x" * 200 + b"\n")
        sink = FileSink(self.path, rotateSize=100)
        sink.write(b"new\n")
        sink.close()
        self.assertEqual(self.rotatedFiles(), [b"x" * 200 + b"\n", b"new\n"])

    def test_rotationLogged(self) -> None:
        """
        Each rotation is logged at info level with the file names.
        """
        sink = FileSink(self.path, rotateSize=10)
        with capturedLogs() as events:
            sink.write(b"0123456789\nabc\n")
        sink.close()
        rotations = [e for e in events if "Rotated" in e["log_format"]]
        self.assertEqual(len(rotations), 1)
        self.assertEqual(rotations[0]["log_level"], LogLevel.info)
        self.assertEqual((rotations[0]["path"], rotations[0]["rotated"]), (self.path, self.path + ".1"))

    def test_rotationWriteErrorKeepsRest(self) -> None:
        """
        If rotating fails part way through a batch, the write reports what
        went to the old file; the rest is written by the next write.
        """
        sink = FileSink(self.path, rotateSize=10, durable=True)
        failures: List[int] = []

        def failingFsync(fd: int) -> None:
            failures.append(fd)
            raise OSError(errno.EIO, "injected")

        realFsync = os.fsync
        self.patch(os, "fsync", failingFsync)
        data = b"12345\n67890\nabc\n"
        self.assertEqual(sink.write(data), 12)
        self.assertEqual(len(failures), 1)
        self.patch(os, "fsync", realFsync)
        self.assertEqual(sink.write(data[12:]), 4)
        sink.close()
        self.assertEqual(self.rotatedFiles(), [b"12345\n67890\n", b"abc\n"])

    def syscalls(self) -> SyscallLog:
        calls = SyscallLog(self.dir)
        calls.install(self.patch)
        return calls

    def inode(self, path: str) -> int:
        return os.stat(path).st_ino

    def test_durableRotation(self) -> None:
        """
        When durable, the file is fsynced before it is renamed away (and
        closed), and the directory after.
        """
        sink = FileSink(self.path, rotateSize=10, durable=True)
        first = self.inode(self.path)
        calls = self.syscalls()
        sink.write(b"0123456789\n")
        sink.write(b"abc\n")
        second = self.inode(self.path)
        sink.sync()
        sink.close()
        kinds: List[Any] = [event[:2] for event in calls.events]
        self.assertEqual(
            kinds,
            [
                ["write", first],
                ["fsync", first],
                ["rename", self.path],
                ["fsyncdir"],
                ["write", second],
                ["fsync", second],
            ],
        )
        self.assertEqual(self.inode(self.path + ".1"), first)

    def test_notDurableNoSync(self) -> None:
        """
        Without C{durable} (no C{--fsync}), rotating costs no fsync.
        """
        sink = FileSink(self.path, rotateSize=10)
        calls = self.syscalls()
        sink.write(b"0123456789\nabc\n")
        sink.close()
        self.assertEqual([e[0] for e in calls.events], ["write", "rename", "write"])

    def test_durableReopen(self) -> None:
        """
        When durable, reopening fsyncs the old file before closing it, then
        the directory; it logs both names at info level.
        """
        sink = FileSink(self.path, durable=True)
        first = self.inode(self.path)
        sink.write(b"before\n")
        os.rename(self.path, self.path + ".old")
        calls = self.syscalls()
        with capturedLogs() as events:
            sink.reopen()
        sink.close()
        self.assertEqual(calls.events, [["fsync", first], ["fsyncdir"]])
        (reopened,) = [e for e in events if "Reopened" in e["log_format"]]
        self.assertEqual(reopened["log_level"], LogLevel.info)
        self.assertEqual((reopened["path"], reopened["previous"]), (self.path, self.path + ".old"))

    def test_syncAfterOpenSyncsDirectory(self) -> None:
        """
        The first sync after a file was opened syncs its directory too (the
        file may be new); later ones do not.
        """
        sink = FileSink(self.path, durable=True)
        calls = self.syscalls()
        sink.write(b"a\n")
        sink.sync()
        sink.write(b"b\n")
        sink.sync()
        sink.close()
        self.assertEqual([e[0] for e in calls.events], ["write", "fsync", "fsyncdir", "write", "fsync"])

    def test_unreadableDirectory(self) -> None:
        """
        A directory that may be written but not opened (no read permission)
        cannot be fsynced: that is logged, and syncing the file still works.
        """
        sink = FileSink(self.path, durable=True)
        sink.write(b"a\n")
        realOpen = os.open

        def refuseDirectory(path: str, flags: int, *args: Any) -> int:
            if flags & os.O_DIRECTORY:
                raise OSError(errno.EACCES, "injected", path)
            return realOpen(path, flags, *args)

        self.patch(os, "open", refuseDirectory)
        with capturedLogs() as events:
            sink.sync()
            sink.sync()
        sink.close()
        (warning,) = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(warning["directory"], self.dir)

    def test_tornRecord(self) -> None:
        """
        A file left ending part way through a record (kill -9 during a
        write) is ended with a newline when opened, counted and logged, so
        the next record starts a line of its own.
        """
        with open(self.path, "wb") as f:
            f.write(b"whole\npart")
        with capturedLogs() as events:
            sink = FileSink(self.path)
        sink.write(b"next\n")
        sink.close()
        self.assertEqual(self.read(self.path), b"whole\npart\nnext\n")
        self.assertEqual(sink.tornRecords, 1)
        (warning,) = [e for e in events if e["log_level"] == LogLevel.warn]
        self.assertEqual(warning["path"], self.path)

    def test_wholeRecordsUntouched(self) -> None:
        """
        A file ending with a newline, or empty, is left as it is.
        """
        for content in (b"", b"whole\n"):
            with open(self.path, "wb") as f:
                f.write(content)
            with capturedLogs() as events:
                sink = FileSink(self.path)
            sink.close()
            self.assertEqual(self.read(self.path), content)
            self.assertEqual((sink.tornRecords, list(events)), (0, []))

    def test_diskFull(self) -> None:
        """
        A write to a full device raises the OS error (ENOSPC), so the
        recorder can keep the records and retry.
        """
        if not os.path.exists("/dev/full"):
            raise SkipTest("no /dev/full")
        sink = FileSink("/dev/full")
        self.addCleanup(sink.close)
        with self.assertRaises(OSError) as raised:
            sink.write(b"x\n")
        self.assertEqual(raised.exception.errno, errno.ENOSPC)
        sink.sync()

    def shortWrites(self, after: int) -> None:
        """
        Make the next write to the output stop after C{after} bytes with
        ENOSPC, as a filling disk does; later writes work.
        """
        realWrite = os.write
        state = {"left": after, "failed": False}

        def write(fd: int, data: Any) -> int:
            if state["failed"] or not os.path.realpath(f"/proc/self/fd/{fd}").startswith(self.dir):
                return realWrite(fd, data)
            if state["left"] <= 0:
                state["failed"] = True
                raise OSError(errno.ENOSPC, "injected")
            n = realWrite(fd, bytes(data[: state["left"]]))
            state["left"] -= n
            return n

        self.patch(os, "write", write)

    def test_shortWriteThenReopen(self) -> None:
        """
        A reopen (SIGHUP) that comes part way through a record, after a
        short write, waits for the rest of the record: the record stays one
        line, in the old file, and nothing is mended as torn.
        """
        sink = FileSink(self.path)
        self.shortWrites(7)
        with capturedLogs() as events:
            self.assertEqual(sink.write(b"aaaa\nbbbb\n"), 7)
            self.assertIsInstance(sink.writeError, OSError)
            os.rename(self.path, self.path + ".old")
            sink.reopen()
            self.assertEqual(sink.write(b"bb\n"), 3)
            self.assertIsNone(sink.writeError)
            self.assertTrue(os.path.exists(self.path), "reopened once the record is whole")
            sink.write(b"next\n")
        sink.close()
        self.assertEqual(self.read(self.path + ".old"), b"aaaa\nbbbb\n")
        self.assertEqual(self.read(self.path), b"next\n")
        self.assertEqual(sink.tornRecords, 0)
        self.assertEqual([e for e in events if e["log_level"] >= LogLevel.warn], [])

    def test_shortWriteThenReopenSameFile(self) -> None:
        """
        A reopen of the same file part way through a record does not end
        that record with a newline of its own.
        """
        sink = FileSink(self.path)
        self.shortWrites(7)
        with capturedLogs():
            sink.write(b"aaaa\nbbbb\n")
            sink.reopen()
            sink.write(b"bb\n")
            sink.reopen()
            sink.write(b"next\n")
        sink.close()
        self.assertEqual(self.read(self.path), b"aaaa\nbbbb\nnext\n")
        self.assertEqual(sink.tornRecords, 0)

    def test_deferredReopenFails(self) -> None:
        """
        A reopen that waited for a record, and then fails, is logged; the
        records go on to the old file.
        """
        sink = FileSink(self.path)
        self.shortWrites(7)
        with capturedLogs() as events:
            sink.write(b"aaaa\nbbbb\n")
            sink.reopen()
            logFile = sink._file

            def openFile() -> None:
                raise OSError(errno.EMFILE, "injected")

            self.patch(logFile, "openFile", openFile)
            self.assertEqual(sink.write(b"bb\nnext\n"), 8)
            sink.write(b"more\n")
        sink.close()
        self.assertEqual(self.read(self.path), b"aaaa\nbbbb\nnext\nmore\n")
        (error,) = [e for e in events if e["log_level"] == LogLevel.error]
        self.assertIn("Cannot reopen", error["log_format"])

    def test_noRotationMidRecord(self) -> None:
        """
        A file that reached the rotation size part way through a record
        (a short write) rotates only after the rest of that record.
        """
        sink = FileSink(self.path, rotateSize=6)
        self.shortWrites(7)
        with capturedLogs():
            self.assertEqual(sink.write(b"aaaa\nbbbb\n"), 7)
            self.assertEqual(sink.write(b"bb\n"), 3)
            sink.write(b"cc\n")
        sink.close()
        self.assertEqual(self.rotatedFiles(), [b"aaaa\nbbbb\n", b"cc\n"])

    def test_rotationOpenFails(self) -> None:
        """
        If the new file cannot be opened when rotating (out of descriptors),
        the current file keeps its name and the error is raised; the next
        write rotates.
        """
        sink = FileSink(self.path, rotateSize=10)
        sink.write(b"0123456789\n")
        logFile = sink._file
        realOpen = logFile.openFile
        failures: List[int] = []

        def openFile() -> None:
            if not failures:
                failures.append(1)
                raise OSError(errno.EMFILE, "injected")
            realOpen()

        self.patch(logFile, "openFile", openFile)
        with capturedLogs() as events:
            with self.assertRaises(OSError):
                sink.write(b"x\n")
            self.assertEqual(sorted(os.listdir(self.dir)), ["records.log"])
            self.assertEqual(sink.write(b"x\n"), 2)
        sink.close()
        self.assertEqual(self.rotatedFiles(), [b"0123456789\n", b"x\n"])
        self.assertEqual([e for e in events if e["log_level"] >= LogLevel.warn], [])

    def test_rotationFileRemoved(self) -> None:
        """
        If the file was removed by the time it must rotate, a new file is
        opened at its path and nothing is renamed.
        """
        sink = FileSink(self.path, rotateSize=10)
        sink.write(b"0123456789\n")
        os.remove(self.path)
        with capturedLogs() as events:
            sink.write(b"x\n")
        sink.close()
        self.assertEqual(os.listdir(self.dir), ["records.log"])
        self.assertEqual(self.read(self.path), b"x\n")
        self.assertEqual([e for e in events if e["log_level"] >= LogLevel.warn], [])

    def test_rotationSyncErrorReported(self) -> None:
        """
        When a sync before rotating fails part way through a batch, the
        write keeps that error for the recorder to report.
        """
        sink = FileSink(self.path, rotateSize=10, durable=True)

        def failingFsync(fd: int) -> None:
            raise OSError(errno.EIO, "injected")

        self.patch(os, "fsync", failingFsync)
        self.assertEqual(sink.write(b"12345\n67890\nabc\n"), 12)
        error = sink.writeError
        assert error is not None
        self.assertEqual(error.errno, errno.EIO)
        sink.close()

    def test_logsInReactorThread(self) -> None:
        """
        Events logged while the sink runs in another thread (the writer's)
        are handed to the reactor thread, never emitted in the writer's.
        """
        calls: List[Any] = []
        self.patch(threadable, "ioThread", threadable.getThreadID())
        self.patch(sinks, "_callInReactor", lambda f, *a, **kw: calls.append((f, a, kw)))
        sink = FileSink(self.path, rotateSize=10)
        with capturedLogs() as events:
            thread = threading.Thread(target=sink.write, args=(b"0123456789\nabc\n",))
            thread.start()
            thread.join()
            self.assertEqual(list(events), [])
            for f, a, kw in calls:
                f(*a, **kw)
        sink.close()
        self.assertEqual(len([e for e in events if "Rotated" in e["log_format"]]), 1)
