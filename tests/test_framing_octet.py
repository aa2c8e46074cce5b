"""
Tests for L{logger_service.framing.octet}: RFC 6587 octet counting.
"""

from __future__ import annotations

from typing import List

from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import (
    PARTIAL,
    SPLIT,
    TRUNCATED,
    AutoFramer,
    LongLines,
    NulFramer,
    OctetFramer,
    octet,
)
from tests.framingmodels import (
    LOGGER_LF,
    LOGGER_MESSAGE,
    LOGGER_OCTET,
    SYSLOGHANDLER,
    Record,
    frame,
    octetFrame,
    records,
)


class OctetFramerTests(SynchronousTestCase):
    """
    L{OctetFramer}: RFC 6587 octet counting, C{MSG-LEN SP SYSLOG-MSG}.
    """

    def test_logger(self) -> None:
        """
        What C{logger --tcp --octet-count} sends gives its message exactly.
        """
        self.assertEqual(len(LOGGER_MESSAGE), 95)
        recs, framer = frame(OctetFramer, [LOGGER_OCTET * 3])
        self.assertEqual(recs, [(LOGGER_MESSAGE, 0)] * 3)
        self.assertEqual(framer.framingErrors, 0)

    def test_loggerByteByByte(self) -> None:
        """
        Frames fed one byte at a time give the same messages.
        """
        data = LOGGER_OCTET * 2
        self.assertEqual(frame(OctetFramer, [data[i : i + 1] for i in range(len(data))])[0], [(LOGGER_MESSAGE, 0)] * 2)

    def test_messageHoldsAnyByte(self) -> None:
        """
        A message may hold LF, CR, NUL and digits; they are part of it.
        """
        messages = [b"a\nb", b"\r\n", b"\x00", b"12 x", b"\n"]
        recs, framer = frame(OctetFramer, [b"".join(octetFrame(m) for m in messages)])
        self.assertEqual(recs, [(m, 0) for m in messages])
        self.assertEqual(framer.framingErrors, 0)

    def test_trailingLfKept(self) -> None:
        """
        A trailing LF counted in MSG-LEN is kept: the message is recorded
        verbatim.
        """
        self.assertEqual(OctetFramer(100).feed(b"6 hello\n6 world\n"), [b"hello\n", b"world\n"])

    def test_lfBetweenFramesSkipped(self) -> None:
        """
        LFs where a frame should start (a LF sent after each frame, not
        counted) are skipped, not an error.
        """
        framer = OctetFramer(100)
        self.assertEqual(framer.feed(b"\n5 hello\n5 world\n\n"), [b"hello", b"world"])
        self.assertEqual(framer.feed(b"3 abc\n"), [b"abc"])
        self.assertEqual(framer.framingErrors, 0)
        self.assertEqual(framer.buffered, 0)

    def test_headerAcrossChunks(self) -> None:
        """
        MSG-LEN, its SP, and the message may be cut anywhere.
        """
        framer = OctetFramer(100)
        self.assertEqual(framer.feed(b"1"), [])
        self.assertEqual(framer.buffered, 1)
        self.assertEqual(framer.feed(b"1"), [])
        self.assertEqual(framer.feed(b" hello"), [])
        self.assertEqual(framer.buffered, 5)
        self.assertEqual(framer.feed(b" world2"), [b"hello world"])
        self.assertEqual(framer.feed(b" ok"), [b"ok"])

    def test_nineDigits(self) -> None:
        """
        MSG-LEN may have nine digits; a message that long is streamed under
        the policy, not buffered.
        """
        framer = OctetFramer(4, LongLines.truncate)
        self.assertEqual(records(framer.feed(b"999999999 abcdef")), [(b"abcd", TRUNCATED)])
        self.assertEqual(framer.buffered, 0)
        self.assertEqual(framer.framingErrors, 0)
        self.assertEqual(framer.droppedBytes, 2)

    def test_exactlyMaxLength(self) -> None:
        """
        A message of exactly maxLength bytes is one plain record under every
        policy.
        """
        for policy in LongLines:
            recs, framer = frame(OctetFramer, [b"4 abcd2 ef"], 4, policy)
            self.assertEqual(recs, [(b"abcd", 0), (b"ef", 0)], policy)
            self.assertEqual((framer.oversizeLines, framer.droppedBytes, framer.closed), (0, 0, False))

    def test_constructor(self) -> None:
        """
        Same defaults and checks as L{LineFramer}.
        """
        for factory in (OctetFramer, AutoFramer, NulFramer):
            framer = factory()
            self.assertEqual(framer.maxLength, 65536)
            self.assertIs(framer.policy, LongLines.split)
            self.assertFalse(framer.closed)
            self.assertEqual((framer.droppedBytes, framer.oversizeLines, framer.buffered), (0, 0, 0))
            self.assertRaises(ValueError, factory, 0)
            self.assertEqual(factory(7, LongLines.close).policy, LongLines.close)


class OctetLongMessageTests(SynchronousTestCase):
    """
    Messages whose MSG-LEN is over maxLength follow the L{LongLines} policy.
    """

    def test_split(self) -> None:
        """
        Under split the message is recorded in SPLIT pieces, nothing lost.
        """
        recs, framer = frame(OctetFramer, [b"10 abcdefghij2 ok"], 3)
        self.assertEqual(recs, [(b"abc", SPLIT), (b"def", SPLIT), (b"ghi", SPLIT), (b"j", SPLIT), (b"ok", 0)])
        self.assertEqual(framer.oversizeLines, 1)
        self.assertEqual(framer.droppedBytes, 0)

    def test_splitStreams(self) -> None:
        """
        Pieces are emitted as they arrive; the buffer holds at most one piece.
        """
        framer = OctetFramer(3)
        self.assertEqual(records(framer.feed(b"12 abcd")), [(b"abc", SPLIT)])
        self.assertEqual(framer.buffered, 1)
        self.assertEqual(records(framer.feed(b"ef")), [])
        self.assertEqual(framer.buffered, 3)
        self.assertEqual(records(framer.feed(b"ghijkl")), [(b"def", SPLIT), (b"ghi", SPLIT), (b"jkl", SPLIT)])
        self.assertEqual(framer.buffered, 0)

    def test_truncate(self) -> None:
        """
        Under truncate the first maxLength bytes are recorded as soon as they
        arrive, the rest of the message is skipped without being held, and
        the next frame is read.
        """
        framer = OctetFramer(3, LongLines.truncate)
        self.assertEqual(records(framer.feed(b"59 ab")), [])
        self.assertEqual(records(framer.feed(b"cd")), [(b"abc", TRUNCATED)])
        for _ in range(5):
            self.assertEqual(framer.feed(b"x" * 11), [])
            self.assertEqual(framer.buffered, 0)
        self.assertEqual(records(framer.feed(b"2 ok")), [(b"ok", 0)])
        self.assertEqual(framer.droppedBytes, 56)
        self.assertEqual(framer.oversizeLines, 1)
        self.assertFalse(framer.closed)

    def test_close(self) -> None:
        """
        Under close the first maxLength bytes are recorded and then all
        input is ignored and counted; oversizeLines becomes 1 only with that
        record, so a protocol closing on it has recorded it.
        """
        framer = OctetFramer(3, LongLines.close)
        self.assertEqual(records(framer.feed(b"2 ok10 ab")), [(b"ok", 0)])
        self.assertEqual((framer.oversizeLines, framer.closed), (0, False))
        self.assertEqual(records(framer.feed(b"cdefghij2 no")), [(b"abc", TRUNCATED)])
        self.assertEqual((framer.oversizeLines, framer.closed), (1, True))
        self.assertEqual(framer.feed(b"2 no"), [])
        self.assertEqual(framer.droppedBytes, 7 + 4 + 4)
        self.assertEqual(framer.finish(), [])
        self.assertEqual(framer.buffered, 0)


class OctetPartialTests(SynchronousTestCase):
    """
    A frame cut short by the end of the stream is recorded as far as it
    arrived, flagged PARTIAL.
    """

    def test_shortMessage(self) -> None:
        """
        A short message cut short is one PARTIAL record.
        """
        framer = OctetFramer(100)
        self.assertEqual(framer.feed(b"3 ab"), [])
        self.assertEqual(records(framer.finish()), [(b"ab", PARTIAL)])
        self.assertEqual(framer.finish(), [])
        self.assertEqual(framer.oversizeLines, 0)

    def test_longMessageSplit(self) -> None:
        """
        Under split the last piece of a long message cut short is flagged
        PARTIAL and SPLIT, even when it is a whole piece.
        """
        recs, framer = frame(OctetFramer, [b"10 abcdef"], 3)
        self.assertEqual(recs, [(b"abc", SPLIT), (b"def", SPLIT | PARTIAL)])
        self.assertEqual(framer.oversizeLines, 1)

    def test_longMessageTruncate(self) -> None:
        """
        Under truncate and close, a long message cut short before maxLength
        bytes arrived is flagged PARTIAL and TRUNCATED; nothing was dropped.
        """
        for policy in (LongLines.truncate, LongLines.close):
            recs, framer = frame(OctetFramer, [b"10 ab"], 3, policy)
            self.assertEqual(recs, [(b"ab", PARTIAL | TRUNCATED)], policy)
            self.assertEqual((framer.oversizeLines, framer.droppedBytes), (1, 0))

    def test_longMessageTruncatedThenCut(self) -> None:
        """
        A truncated message cut short after its record adds nothing.
        """
        recs, framer = frame(OctetFramer, [b"10 abcde"], 3, LongLines.truncate)
        self.assertEqual(recs, [(b"abc", TRUNCATED)])
        self.assertEqual(framer.droppedBytes, 2)

    def test_headerOnly(self) -> None:
        """
        A MSG-LEN and SP without any message byte give nothing.
        """
        self.assertEqual(frame(OctetFramer, [b"5 "])[0], [])

    def test_digitsOnly(self) -> None:
        """
        The digits of an unfinished MSG-LEN are recorded as a partial line;
        that is not a framing error.
        """
        recs, framer = frame(OctetFramer, [b"1", b"2"])
        self.assertEqual(recs, [(b"12", PARTIAL)])
        self.assertEqual(framer.framingErrors, 0)

    def test_digitsOnlyLong(self) -> None:
        """
        Unfinished digits longer than maxLength follow the policy as a line.
        """
        self.assertEqual(
            frame(OctetFramer, [b"12345"], 2)[0], [(b"12", SPLIT), (b"34", SPLIT), (b"5", SPLIT | PARTIAL)]
        )
        recs, framer = frame(OctetFramer, [b"12345"], 2, LongLines.truncate)
        self.assertEqual(recs, [(b"12", TRUNCATED)])
        self.assertEqual((framer.droppedBytes, framer.oversizeLines), (3, 1))


class OctetFramingErrorTests(SynchronousTestCase):
    """
    Bad framing switches the connection to NUL/LF framing from the first
    byte of the bad frame: nothing is lost, C{framingErrors} becomes 1.
    """

    def assertFallsBack(self, data: bytes, expected: List[Record], maxLength: int = 100) -> None:
        """
        C{data} gives C{expected} whole and byte by byte, with one framing
        error.
        """
        for chunks in ([data], [data[i : i + 1] for i in range(len(data))]):
            recs, framer = frame(OctetFramer, chunks, maxLength)
            self.assertEqual(recs, expected, chunks)
            self.assertEqual(framer.framingErrors, 1)
            assert isinstance(framer, OctetFramer)
            self.assertEqual(framer.framingErrors, 1)

    def test_lfClient(self) -> None:
        """
        A LF-framed sender (logger --tcp without --octet-count) is recorded
        line by line.
        """
        self.assertFallsBack(LOGGER_LF * 2, [(LOGGER_MESSAGE, 0)] * 2)

    def test_nulClient(self) -> None:
        """
        SysLogHandler's NUL-terminated messages are recorded too.
        """
        self.assertFallsBack(SYSLOGHANDLER, [(b"<12>hello", 0), (b"<12>two", 0), (b"lines", 0)])

    def test_zeroLength(self) -> None:
        """
        MSG-LEN 0 is an error.
        """
        self.assertFallsBack(b"0 \n", [(b"0 ", 0)])

    def test_leadingZero(self) -> None:
        """
        A MSG-LEN with a leading zero is an error; frames before it are kept.
        """
        self.assertFallsBack(b"2 ok05 hello\n", [(b"ok", 0), (b"05 hello", 0)])

    def test_tenDigits(self) -> None:
        """
        A MSG-LEN of ten digits is an error.
        """
        self.assertFallsBack(b"1234567890 x\x002 ab", [(b"1234567890 x", 0), (b"2 ab", PARTIAL)])

    def test_missingSpace(self) -> None:
        """
        Digits followed by anything but SP are an error, and later valid
        frames are not parsed as frames any more.
        """
        self.assertFallsBack(b"12x\n3 abc\n", [(b"12x", 0), (b"3 abc", 0)])

    def test_spaceFirst(self) -> None:
        """
        A SP where a frame starts is an error.
        """
        self.assertFallsBack(b"3 abc 3 def", [(b"abc", 0), (b" 3 def", PARTIAL)])

    def test_countersCombined(self) -> None:
        """
        The counters include those of the LF/NUL framing after the error.
        """
        recs, framer = frame(OctetFramer, [b"10 abcdefghij", b"<1>abcdef\n"], 3, LongLines.truncate)
        self.assertEqual(recs, [(b"abc", TRUNCATED), (b"<1>", TRUNCATED)])
        self.assertEqual(framer.oversizeLines, 2)
        self.assertEqual(framer.droppedBytes, 7 + 6)
        self.assertEqual(framer.framingErrors, 1)

    def test_closeAfterError(self) -> None:
        """
        Under close, a long line after a framing error closes the framer.
        """
        framer = OctetFramer(3, LongLines.close)
        self.assertEqual(records(framer.feed(b"x\nabcdef\n")), [(b"x", 0), (b"abc", TRUNCATED)])
        self.assertTrue(framer.closed)
        self.assertEqual(framer.feed(b"more"), [])
        self.assertEqual(framer.buffered, 0)

    def test_bufferedAfterError(self) -> None:
        """
        C{buffered} counts what the LF/NUL framing holds.
        """
        framer = OctetFramer(100)
        framer.feed(b"<1>partial")
        self.assertEqual(framer.buffered, 10)
        self.assertEqual(records(framer.finish()), [(b"<1>partial", PARTIAL)])
        self.assertEqual(framer.buffered, 0)


# UTF-8 messages of 1- to 4-digit lengths: Chinese (3-byte characters),
# accented Latin (2-byte), an RFC 5424 message with a byte-order mark.
UTF8_MESSAGES = [
    "<13>1 - h a - - - \ufeff文章".encode(),
    b"x",
    "日志".encode() * 3,
    "Zoë's café façade, naïve résumé".encode() * 4,
    "<14>欢迎 ".encode() * 100,
    b"12 x",
    "é".encode(),
]


class OctetFastPathTests(SynchronousTestCase):
    """
    Whole frames in one chunk take a fast path that looks each C{MSG-LEN SP}
    up among those seen before (L{octet._LENGTHS}); its records are exactly
    those of the careful path, however the stream is cut.
    """

    def setUp(self) -> None:
        # Start every test with no header known, and leave the shared
        # table as it was.
        self.patch(octet, "_LENGTHS", {})

    def test_utf8Frames(self) -> None:
        """
        Frames of UTF-8 messages of every MSG-LEN width, in any order, give
        their messages.
        """
        messages = UTF8_MESSAGES + UTF8_MESSAGES[::-1] + UTF8_MESSAGES
        self.assertEqual(max(len(m) for m in messages), 1100)
        data = b"".join(octetFrame(m) for m in messages)
        recs, framer = frame(OctetFramer, [data], 2000)
        self.assertEqual(recs, [(m, 0) for m in messages])
        self.assertEqual((framer.framingErrors, framer.buffered), (0, 0))

    def test_everyCut(self) -> None:
        """
        Cut in two or three chunks at every byte, the stream gives the same
        records, the fast path's table filled or not.
        """
        data = b"".join(octetFrame(m) for m in UTF8_MESSAGES)
        expected = [(m, 0) for m in UTF8_MESSAGES]
        for i in range(len(data) + 1):
            for chunks in ([data[:i], data[i:]], [data[:i], data[i : i + 7], data[i + 7 :]]):
                self.assertEqual(frame(OctetFramer, chunks, 2000)[0], expected, i)
                octet._LENGTHS.clear()
                self.assertEqual(frame(OctetFramer, chunks, 2000)[0], expected, i)

    def test_lfAfterEveryFrame(self) -> None:
        """
        A LF after every frame, uncounted, is skipped on the fast path too.
        """
        data = b"".join(octetFrame(m) + b"\n" for m in UTF8_MESSAGES)
        self.assertEqual(OctetFramer(2000).feed(data), UTF8_MESSAGES)

    def test_knownLengthOverMaxLength(self) -> None:
        """
        A MSG-LEN known from another connection, over this framer's
        maxLength, follows this framer's policy.
        """
        message = "日志".encode() * 5
        data = octetFrame(message) * 2
        self.assertEqual(OctetFramer(100).feed(data), [message] * 2)
        self.assertIn(b"30 ", octet._LENGTHS)
        pieces = [(message[i : i + 12], SPLIT) for i in range(0, 30, 12)]
        self.assertEqual(frame(OctetFramer, [data], 12)[0], pieces * 2)
        recs, framer = frame(OctetFramer, [data], 12, LongLines.truncate)
        self.assertEqual(recs, [(message[:12], TRUNCATED)] * 2)
        self.assertEqual((framer.droppedBytes, framer.oversizeLines), (36, 2))

    def test_invalidAfterKnown(self) -> None:
        """
        A bad header after frames the table knows is a framing error from
        that frame on, whatever the width guessed: a leading zero, a SP
        first, digits without SP, a tenth digit.
        """
        good = octetFrame("é".encode() * 5) + octetFrame(b"abc")
        for bad in (b"010 \xc3\xa9\xc3\xa9", b" 3 abc", b"3\xc3\xa9", b"3x abc", b"1234567890 x"):
            self.patch(octet, "_LENGTHS", {})
            for chunks in ([good * 2 + bad], [good, good + bad]):
                recs, framer = frame(OctetFramer, chunks, 100)
                messages = [("é".encode() * 5, 0), (b"abc", 0)] * 2
                self.assertEqual(recs[:4], messages, bad)
                self.assertEqual(recs[4:], frame(NulFramer, [bad])[0], bad)
                self.assertEqual(framer.framingErrors, 1, bad)

    def test_wrongWidthGuess(self) -> None:
        """
        A header of another width than the one before, whose first bytes
        look like a known header, is read whole: C{12 } known, C{123 } is a
        frame of 123 bytes, not one of 12; and a narrower one after it.
        """
        long = b"y" * 123
        data = octetFrame(b"x" * 12) + octetFrame(long) + octetFrame(b"x" * 12) + octetFrame(b"z")
        self.assertEqual(
            frame(OctetFramer, [data], 200)[0],
            [(b"x" * 12, 0), (long, 0), (b"x" * 12, 0), (b"z", 0)],
        )

    def test_tableOnlyValid(self) -> None:
        """
        The table holds only valid headers, each with its length, whatever
        was fed.
        """
        for data in (
            b"".join(octetFrame(m) for m in UTF8_MESSAGES),
            b"3 abc012 x 4 abcd",
            b"5 abcde\n\n7 \xe6\x97\xa5x",
        ):
            OctetFramer(2000).feed(data)
        self.assertTrue(octet._LENGTHS)
        for key, length in octet._LENGTHS.items():
            self.assertRegex(key, rb"\A[1-9][0-9]{0,8} \Z")
            self.assertEqual(int(key), length)

    def test_tableBounded(self) -> None:
        """
        The table stops growing at its bound; later headers are read the
        careful way, with the same records.
        """
        self.patch(octet, "_MAX_LENGTHS", 3)
        messages = [b"m" * n for n in range(1, 12)]
        data = b"".join(octetFrame(m) for m in messages)
        self.assertEqual(OctetFramer(100).feed(data), messages)
        self.assertEqual(len(octet._LENGTHS), 3)
        self.assertEqual(OctetFramer(100).feed(data), messages)
