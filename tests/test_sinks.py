"""
Tests for L{logger_service.sinks}: real descriptors.
"""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from logger_service.sinks import StreamSink


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
