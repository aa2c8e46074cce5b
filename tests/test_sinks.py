"""
Tests for L{logger_service.sinks}: real files, real descriptors.
"""

from __future__ import annotations

import errno
import os

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from logger_service.sinks import FileSink, StreamSink


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


class StreamSinkTests(SynchronousTestCase):
    """
    Writing to an open descriptor such as standard output.
    """

    def test_pipe(self) -> None:
        """
        Records reach the descriptor; syncing a pipe is harmless; closing the
        sink leaves the stream open.
        """
        readFd, writeFd = os.pipe()
        self.addCleanup(os.close, readFd)
        stream = os.fdopen(writeFd, "wb")
        self.addCleanup(stream.close)
        sink = StreamSink(stream)
        self.assertEqual(sink.write(b"one\ntwo\n"), 8)
        sink.sync()
        sink.reopen()
        sink.close()
        stream.write(b"still open\n")
        stream.flush()
        self.assertEqual(os.read(readFd, 100), b"one\ntwo\nstill open\n")
