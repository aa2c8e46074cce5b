"""
Tests for L{logger_service.framing.lf}: the default framing, LF and, on syslog
connections, NUL.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import (
    TRUNCATED,
    LongLines,
    SyslogLineFramer,
)
from tests.framingmodels import (
    LOGGER_LF,
    LOGGER_MESSAGE,
    SYSLOGHANDLER,
    frame,
)


class SyslogLineFramerTests(SynchronousTestCase):
    """
    L{SyslogLineFramer}, the default: LF framing, and NUL framing from the
    first record that starts with C{<} (a syslog message).
    """

    def test_sysLogHandler(self) -> None:
        """
        What Python's SysLogHandler sends over TCP gives its messages, those
        with a LF in them included (the first one too), however it is cut.
        """
        data = b"<11>Traceback\n  File x\nValueError\x00" + SYSLOGHANDLER + b"<12>after\x00"
        expected = [(b"<11>Traceback", 0), (b"  File x", 0), (b"ValueError", 0)]
        expected += [(b"<12>hello", 0), (b"<12>two", 0), (b"lines", 0), (b"<12>after", 0)]
        for chunks in ([data], [bytes([b]) for b in data], [data[:14], data[14:20], data[20:]]):
            recs, framer = frame(SyslogLineFramer, chunks)
            self.assertEqual(recs, expected, chunks)
            self.assertEqual(framer.buffered, 0)

    def test_lf(self) -> None:
        """
        LF-terminated senders (logger --tcp) are framed as by L{LineFramer}.
        """
        self.assertEqual(frame(SyslogLineFramer, [LOGGER_LF * 2])[0], [(LOGGER_MESSAGE, 0)] * 2)

    def test_nulInLine(self) -> None:
        """
        Until a record starts with C{<}, a NUL is a byte of its line, even
        before a C{<} that does not start a record.
        """
        recs, _ = frame(SyslogLineFramer, [b"nul\x00byte\n\x00\ny\x00<1>z\x00\n"])
        self.assertEqual(recs, [(b"nul\x00byte", 0), (b"\x00", 0), (b"y\x00<1>z\x00", 0)])

    def test_nulFramingFromThen(self) -> None:
        """
        From the first record that starts with C{<}, every NUL ends a
        record, and a NUL directly followed by a LF is one terminator, in
        that chunk or a later one; a CR before either is removed.
        """
        framer = SyslogLineFramer(100)
        self.assertEqual(framer.feed(b"a\x00b\n<1>c\x00"), [b"a\x00b", b"<1>c"])
        self.assertEqual(framer.feed(b"\nd\x00e\x00\n"), [b"d", b"e"])
        self.assertEqual(framer.feed(b"f\r\x00"), [b"f"])
        self.assertEqual(framer.finish(), [])
        framer = SyslogLineFramer(100)
        self.assertEqual(framer.feed(b"ab"), [])
        self.assertEqual(framer.feed(b"<c\x00d\n"), [b"ab<c\x00d"])
        self.assertEqual(framer.feed(b"<e\x00"), [b"<e"])

    def test_idle(self) -> None:
        """
        The framer is idle after whole LF-ended lines, but not once NUL
        framing has begun (a new one would not know of it).
        """
        framer = SyslogLineFramer()
        framer.feed(b"one\ntwo\n")
        self.assertTrue(framer.idle)
        framer.feed(b"<13>three\n")
        self.assertFalse(framer.idle)

    def test_close(self) -> None:
        """
        Under close, droppedBytes counts every byte received after the
        recorded ones, a NUL LF as two bytes, however the stream was cut.
        """
        data = b"<1\x00\nabcdef\x00\nmore\x00\n"
        for chunks in ([data], [data[:9], data[9:]], [data[:12], data[12:]], [bytes([b]) for b in data]):
            recs, framer = frame(SyslogLineFramer, chunks, 3, LongLines.close)
            self.assertEqual(recs, [(b"<1", 0), (b"abc", TRUNCATED)], chunks)
            self.assertTrue(framer.closed)
            self.assertEqual(framer.droppedBytes, len(b"def\x00\nmore\x00\n"), chunks)
