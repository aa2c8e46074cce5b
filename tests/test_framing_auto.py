"""
Tests for L{logger_service.framing.auto}: the first byte chooses the framing.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import (
    TRUNCATED,
    AutoFramer,
    LongLines,
)
from tests.framingmodels import (
    LOGGER_LF,
    LOGGER_MESSAGE,
    LOGGER_OCTET,
    SYSLOGHANDLER,
    frame,
)


class AutoFramerTests(SynchronousTestCase):
    """
    L{AutoFramer} chooses octet counting when the stream starts with a digit
    1-9, NUL/LF framing otherwise.
    """

    def test_octet(self) -> None:
        """
        logger --octet-count is recognised.
        """
        recs, framer = frame(AutoFramer, [LOGGER_OCTET * 2])
        self.assertEqual(recs, [(LOGGER_MESSAGE, 0)] * 2)
        assert isinstance(framer, AutoFramer)
        self.assertEqual(framer.framing, "octet")

    def test_lf(self) -> None:
        """
        logger without --octet-count is framed by LF.
        """
        recs, framer = frame(AutoFramer, [LOGGER_LF * 2])
        self.assertEqual(recs, [(LOGGER_MESSAGE, 0)] * 2)
        assert isinstance(framer, AutoFramer)
        self.assertEqual(framer.framing, "nul")
        self.assertEqual(framer.framingErrors, 0)

    def test_nul(self) -> None:
        """
        SysLogHandler is framed by NUL.
        """
        self.assertEqual(frame(AutoFramer, [SYSLOGHANDLER])[0], [(b"<12>hello", 0), (b"<12>two", 0), (b"lines", 0)])

    def test_emptyAndOneByteChunks(self) -> None:
        """
        Empty chunks choose nothing; a first chunk of one byte chooses.
        """
        framer = AutoFramer(100)
        self.assertEqual(framer.feed(b""), [])
        self.assertIsNone(framer.framing)
        self.assertEqual((framer.buffered, framer.droppedBytes, framer.oversizeLines, framer.closed), (0, 0, 0, False))
        self.assertEqual(framer.framingErrors, 0)
        self.assertEqual(framer.feed(b"5"), [])
        self.assertEqual(framer.framing, "octet")
        self.assertEqual(framer.buffered, 1)
        self.assertEqual(framer.feed(b""), [])
        self.assertEqual(framer.feed(b" hello"), [b"hello"])

    def test_zeroIsNotOctet(self) -> None:
        """
        A first byte 0 means NUL/LF framing (MSG-LEN never starts with 0).
        """
        framer = AutoFramer(100)
        self.assertEqual(framer.feed(b"0 x\n"), [b"0 x"])
        self.assertEqual(framer.framing, "nul")

    def test_digitLineFallsBack(self) -> None:
        """
        A LF client whose first line starts with a digit is recorded line by
        line, and the framing error is reported.
        """
        recs, framer = frame(AutoFramer, [b"2026-11-27 started\n", b"3 apples\n"])
        self.assertEqual(recs, [(b"2026-11-27 started", 0), (b"3 apples", 0)])
        self.assertEqual(framer.framingErrors, 1)

    def test_nothing(self) -> None:
        """
        A connection that sent nothing finishes with nothing.
        """
        self.assertEqual(AutoFramer(5).finish(), [])

    def test_policyPassedOn(self) -> None:
        """
        The chosen framer has the same maximum length and policy.
        """
        for data in (b"10 abcdefghij", b"abcdefghij\n"):
            recs, framer = frame(AutoFramer, [data], 4, LongLines.truncate)
            self.assertEqual(recs, [(b"abcd", TRUNCATED)], data)
            self.assertEqual((framer.droppedBytes, framer.oversizeLines), (6, 1))
