"""
Tests for L{logger_service.framing.nul}: records that end at LF, NUL, or NUL LF.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import (
    PARTIAL,
    SPLIT,
    TRUNCATED,
    LongLines,
    NulFramer,
)
from tests.framingmodels import (
    LOGGER_LF,
    LOGGER_MESSAGE,
    SYSLOGHANDLER,
    frame,
    records,
)


class NulFramerTests(SynchronousTestCase):
    """
    L{NulFramer}: a record ends at LF, NUL, or NUL directly followed by LF;
    a CR before the terminator is removed.
    """

    def test_sysLogHandler(self) -> None:
        """
        What Python's SysLogHandler sends over TCP gives its messages; a LF
        inside a message ends a record too.
        """
        recs, framer = frame(NulFramer, [SYSLOGHANDLER])
        self.assertEqual(recs, [(b"<12>hello", 0), (b"<12>two", 0), (b"lines", 0)])
        self.assertEqual(framer.buffered, 0)

    def test_lf(self) -> None:
        """
        LF-terminated senders (logger --tcp) are framed as by L{LineFramer}.
        """
        self.assertEqual(frame(NulFramer, [LOGGER_LF * 2])[0], [(LOGGER_MESSAGE, 0)] * 2)

    def test_nulLfIsOneTerminator(self) -> None:
        """
        C{msg NUL LF} gives one record, no empty record after it.
        """
        self.assertEqual(NulFramer(100).feed(b"one\x00\ntwo\x00\nthree\n"), [b"one", b"two", b"three"])

    def test_nulLfAcrossChunks(self) -> None:
        """
        A NUL ending one chunk and a LF starting a later one (empty chunks
        between them included) are still one terminator.
        """
        framer = NulFramer(100)
        self.assertEqual(framer.feed(b"one\x00"), [b"one"])
        self.assertEqual(framer.feed(b""), [])
        self.assertEqual(framer.feed(b"\n"), [])
        self.assertEqual(framer.feed(b"two\x00"), [b"two"])
        self.assertEqual(framer.feed(b"\nthree\x00\n"), [b"three"])
        self.assertEqual(framer.finish(), [])

    def test_onlyOneLfSwallowed(self) -> None:
        """
        Only the one LF directly after a NUL belongs to it; a second LF ends
        an empty record.
        """
        self.assertEqual(NulFramer(100).feed(b"a\x00\n\nb\n"), [b"a", b"", b"b"])
        framer = NulFramer(100)
        self.assertEqual(framer.feed(b"a\x00"), [b"a"])
        self.assertEqual(framer.feed(b"\n\nb\n"), [b"", b"b"])

    def test_lfThenNul(self) -> None:
        """
        A NUL after a LF is a terminator of its own: an empty record.
        """
        self.assertEqual(NulFramer(100).feed(b"a\n\x00b\x00"), [b"a", b"", b"b"])

    def test_severalNuls(self) -> None:
        """
        Every NUL ends a record; a LF after the last NUL is swallowed.
        """
        self.assertEqual(NulFramer(100).feed(b"a\x00\x00\n"), [b"a", b""])

    def test_swallowOnlyRightAfterNul(self) -> None:
        """
        A LF that does not directly follow a NUL ends a record, even when the
        chunk before ended in a NUL that was followed by other bytes.
        """
        framer = NulFramer(100)
        self.assertEqual(framer.feed(b"a\x00"), [b"a"])
        self.assertEqual(framer.feed(b"b"), [])
        self.assertEqual(framer.feed(b"\n"), [b"b"])

    def test_crBeforeTerminator(self) -> None:
        """
        A CR directly before NUL, NUL LF or LF is removed; another CR is kept.
        """
        self.assertEqual(NulFramer(100).feed(b"a\r\x00b\r\x00\nc\r\nd\re\x00"), [b"a", b"b", b"c", b"d\re"])

    def test_crThenNulAcrossChunks(self) -> None:
        """
        A CR ending a chunk is removed when the next chunk starts with NUL.
        """
        framer = NulFramer(100)
        self.assertEqual(framer.feed(b"abc\r"), [])
        self.assertEqual(framer.feed(b"\x00\n"), [b"abc"])

    def test_partial(self) -> None:
        """
        What follows the last terminator is a PARTIAL record at finish.
        """
        framer = NulFramer(100)
        self.assertEqual(framer.feed(b"a\x00rest"), [b"a"])
        self.assertEqual(framer.buffered, 4)
        self.assertEqual(records(framer.finish()), [(b"rest", PARTIAL)])
        self.assertEqual(framer.finish(), [])

    def test_finishForgetsNul(self) -> None:
        """
        After finish, a LF no longer belongs to an earlier NUL.
        """
        framer = NulFramer(100)
        framer.feed(b"a\x00")
        framer.finish()
        self.assertEqual(framer.feed(b"\n"), [b""])

    def test_plainBytes(self) -> None:
        """
        Unflagged records are plain L{bytes}.
        """
        for line in NulFramer(4).feed(b"ab\x00cd\x00\nef\n" * 3):
            self.assertIs(type(line), bytes)

    def test_split(self) -> None:
        """
        Under split a long record is cut into SPLIT pieces.
        """
        recs, framer = frame(NulFramer, [b"abcdefg\x00\nxy\x00"], 3)
        self.assertEqual(recs, [(b"abc", SPLIT), (b"def", SPLIT), (b"g", SPLIT), (b"xy", 0)])
        self.assertEqual(framer.oversizeLines, 1)

    def test_truncate(self) -> None:
        """
        Under truncate a long record keeps its first bytes; the rest up to
        its NUL is dropped and reading goes on, even when the LF after the
        NUL comes in a later chunk.
        """
        recs, framer = frame(NulFramer, [b"abcdefg\x00", b"\nxy\x00"], 3, LongLines.truncate)
        self.assertEqual(recs, [(b"abc", TRUNCATED), (b"xy", 0)])
        self.assertEqual(framer.droppedBytes, 4)
        self.assertEqual(framer.oversizeLines, 1)

    def test_close(self) -> None:
        """
        Under close a long record keeps its first bytes and the framer
        closes; droppedBytes counts every byte received after them, a NUL LF
        as two bytes, however the stream was cut.
        """
        data = b"ok\x00\nabcdef\x00\nmore\x00\n"
        for chunks in ([data], [data[:9], data[9:]], [data[:12], data[12:]], [bytes([b]) for b in data]):
            recs, framer = frame(NulFramer, chunks, 3, LongLines.close)
            self.assertEqual(recs, [(b"ok", 0), (b"abc", TRUNCATED)], chunks)
            self.assertTrue(framer.closed)
            self.assertEqual(framer.droppedBytes, len(b"def\x00\nmore\x00\n"), chunks)


# UTF-8 records, one with a CR before its NUL.
UTF8_RECORDS = ["<13>1 - h a - - - \ufeff文章".encode(), "日志\r".encode(), b"", "Zoë's café".encode() * 3]


class NulOnlyChunkTests(SynchronousTestCase):
    """
    A chunk with NULs and no LF is split at NUL directly; its records are
    those of the translation to LF, however the stream is cut.
    """

    def test_everyCut(self) -> None:
        """
        NUL-ended UTF-8 records cut in two chunks at every byte give the same
        records as whole, a CR before a NUL removed.
        """
        data = b"".join(r + b"\x00" for r in UTF8_RECORDS) * 2
        expected = [(r.rstrip(b"\r"), 0) for r in UTF8_RECORDS] * 2
        for i in range(len(data) + 1):
            self.assertEqual(frame(NulFramer, [data[:i], data[i:]])[0], expected, i)

    def test_heldBytesThenNul(self) -> None:
        """
        The unfinished record held from a chunk with a LF ends at the first
        NUL of a chunk without one.
        """
        framer = NulFramer(100)
        self.assertEqual(framer.feed(b"a\n\xe6\x97"), [b"a"])
        self.assertEqual(framer.feed(b"\xa5x\x00b\x00"), [b"\xe6\x97\xa5x", b"b"])

    def test_longRecords(self) -> None:
        """
        Long records in a chunk without LF follow the split and truncate
        policies; the rest of a truncated record is dropped up to its NUL,
        in the same or a later chunk.
        """
        self.assertEqual(
            frame(NulFramer, [b"abcdefg\x00hi\x00"], 3)[0],
            [(b"abc", SPLIT), (b"def", SPLIT), (b"g", SPLIT), (b"hi", 0)],
        )
        recs, framer = frame(NulFramer, [b"abcdef", b"gh\x00ij\x00"], 3, LongLines.truncate)
        self.assertEqual(recs, [(b"abc", TRUNCATED), (b"ij", 0)])
        self.assertEqual((framer.droppedBytes, framer.oversizeLines), (5, 1))

    def test_closeCountsRawBytes(self) -> None:
        """
        Under close, a chunk without LF counts every byte after the
        recorded ones as dropped.
        """
        recs, framer = frame(NulFramer, [b"ab\x00abcdef\x00gh\x00"], 3, LongLines.close)
        self.assertEqual(recs, [(b"ab", 0), (b"abc", TRUNCATED)])
        self.assertEqual(framer.droppedBytes, 7)
        self.assertTrue(framer.closed)
