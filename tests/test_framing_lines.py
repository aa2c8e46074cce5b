"""
Tests for L{logger_service.framing.lines}: splitting a TCP byte stream into LF lines.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import PARTIAL, SPLIT, TRUNCATED, Line, LineFramer, LongLines, lineFlags

PROPERTY = settings(max_examples=300, deadline=None)

Record = Tuple[bytes, int]


def records(lines: Sequence[bytes]) -> List[Record]:
    """
    Return C{lines} as C{(payload, flags)} pairs, which compare exactly.
    """
    return [(bytes(line), lineFlags(line)) for line in lines]


def frame(
    chunks: Sequence[bytes], maxLength: int = 8, policy: LongLines = LongLines.split
) -> Tuple[List[Record], LineFramer]:
    """
    Feed C{chunks} to a new framer, finish the stream, and return the records
    and the framer.
    """
    framer = LineFramer(maxLength, policy)
    out: List[bytes] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    out.extend(framer.finish())
    return records(out), framer


def logicalLines(data: bytes) -> Tuple[List[bytes], bytes]:
    """
    The reference framing: the terminated lines of C{data} (LF removed, and a
    CR directly before it), and the unterminated rest.
    """
    parts = data.split(b"\n")
    rest = parts.pop()
    return [p[:-1] if p.endswith(b"\r") else p for p in parts], rest


# Streams rich in the bytes that matter to framing (CR, LF, CRLF), plus
# arbitrary bytes.
_PIECES = st.sampled_from([b"a", b"b", b"\r", b"\n", b"\r\n", b"\x00", b"\xff", b"xyz"])
STREAMS = st.one_of(st.lists(_PIECES, max_size=40).map(b"".join), st.binary(max_size=40))
MAX_LENGTHS = st.integers(min_value=1, max_value=8)
POLICIES = st.sampled_from(list(LongLines))


@st.composite
def chunkedStreams(draw: st.DrawFn) -> Tuple[bytes, List[bytes]]:
    """
    A stream and one way of cutting it into chunks (empty chunks included).
    """
    data = draw(STREAMS)
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return data, [data[a:b] for a, b in zip(bounds, bounds[1:])]


class LineTests(SynchronousTestCase):
    """
    L{Line} is bytes with flags; L{lineFlags} reads the flags of any line.
    """

    def test_lineIsBytes(self) -> None:
        """
        A L{Line} compares equal to the bytes it holds and keeps its flags.
        """
        line = Line(b"abc", SPLIT | PARTIAL)
        self.assertIsInstance(line, bytes)
        self.assertEqual(line, b"abc")
        self.assertEqual(line.flags, SPLIT | PARTIAL)
        self.assertEqual(lineFlags(line), SPLIT | PARTIAL)

    def test_plainBytesHaveNoFlags(self) -> None:
        """
        Plain bytes have flags 0.
        """
        self.assertEqual(lineFlags(b"abc"), 0)
        self.assertEqual(lineFlags(b""), 0)

    def test_repr(self) -> None:
        """
        The repr of a L{Line} shows its payload and flags.
        """
        self.assertEqual(repr(Line(b"x\r", TRUNCATED)), "Line(b'x\\r', flags=4)")

    def test_flagsDistinct(self) -> None:
        """
        The flags are distinct bits, so they can be combined.
        """
        self.assertEqual(PARTIAL | SPLIT | TRUNCATED, 7)
        self.assertEqual(len({PARTIAL, SPLIT, TRUNCATED}), 3)


class ConstructionTests(SynchronousTestCase):
    """
    A framer needs a positive maximum length; its defaults are documented.
    """

    def test_defaults(self) -> None:
        """
        By default lines may be 65536 bytes and longer ones are split.
        """
        framer = LineFramer()
        self.assertEqual(framer.maxLength, 65536)
        self.assertIs(framer.policy, LongLines.split)
        self.assertFalse(framer.closed)
        self.assertEqual((framer.droppedBytes, framer.oversizeLines, framer.buffered), (0, 0, 0))

    def test_maxLengthMustBePositive(self) -> None:
        """
        A maximum length below 1 is refused.
        """
        self.assertRaises(ValueError, LineFramer, 0)
        self.assertRaises(ValueError, LineFramer, -5)

    def test_maxLengthOne(self) -> None:
        """
        A maximum length of 1 is allowed and works.
        """
        self.assertEqual(frame([b"a\nbc\n"], 1)[0], [(b"a", 0), (b"b", SPLIT), (b"c", SPLIT)])


class TerminatorTests(SynchronousTestCase):
    """
    A line ends at LF; a CR directly before the LF is removed, any other CR
    is kept.
    """

    def test_lf(self) -> None:
        """
        LF ends a line; the LF is not part of it.
        """
        framer = LineFramer(100)
        self.assertEqual(framer.feed(b"one\ntwo\n"), [b"one", b"two"])
        self.assertEqual(framer.buffered, 0)

    def test_crlf(self) -> None:
        """
        CRLF clients give the same lines as LF clients.
        """
        self.assertEqual(LineFramer(100).feed(b"one\r\ntwo\r\n"), [b"one", b"two"])

    def test_mixed(self) -> None:
        """
        LF and CRLF may be mixed within one stream.
        """
        self.assertEqual(LineFramer(100).feed(b"one\ntwo\r\nthree\n"), [b"one", b"two", b"three"])

    def test_loneCR(self) -> None:
        """
        A CR that is not directly before a LF does not end a line and is kept.
        """
        framer = LineFramer(100)
        self.assertEqual(framer.feed(b"a\rb\n\rc\n"), [b"a\rb", b"\rc"])
        self.assertEqual(framer.feed(b"d\r"), [])
        self.assertEqual(records(framer.finish()), [(b"d\r", PARTIAL)])

    def test_onlyOneCRRemoved(self) -> None:
        """
        Of several CRs before a LF only the last is removed.
        """
        self.assertEqual(LineFramer(100).feed(b"a\r\r\n\r\r\n"), [b"a\r", b"\r"])

    def test_emptyLines(self) -> None:
        """
        Empty lines, with LF or CRLF, are recorded as empty lines.
        """
        self.assertEqual(LineFramer(100).feed(b"\n\r\n\n"), [b"", b"", b""])

    def test_crlfAcrossChunks(self) -> None:
        """
        A CRLF cut between two chunks is still one terminator.
        """
        framer = LineFramer(100)
        self.assertEqual(framer.feed(b"abc\r"), [])
        self.assertEqual(framer.feed(b"\nxyz\r"), [b"abc"])
        self.assertEqual(framer.feed(b"\n"), [b"xyz"])

    def test_byteByByte(self) -> None:
        """
        Feeding one byte at a time gives the same lines.
        """
        data = b"one\r\ntwo\nthr\ree\r\n\n"
        framer = LineFramer(100)
        out: List[bytes] = []
        for i in range(len(data)):
            out.extend(framer.feed(data[i : i + 1]))
        self.assertEqual(out, [b"one", b"two", b"thr\ree", b""])

    def test_emptyChunk(self) -> None:
        """
        Feeding nothing completes nothing and changes nothing.
        """
        framer = LineFramer(100)
        self.assertEqual(framer.feed(b""), [])
        framer.feed(b"ab")
        self.assertEqual(framer.feed(b""), [])
        self.assertEqual(framer.buffered, 2)

    def test_ordinaryLinesArePlainBytes(self) -> None:
        """
        Lines without flags are plain L{bytes}, not L{Line}, on both the short
        and the long-chunk paths.
        """
        framer = LineFramer(4)
        lines = framer.feed(b"ab\n") + framer.feed(b"cd\nefgh\nij\r\n" * 3)
        self.assertEqual(lines, [b"ab"] + [b"cd", b"efgh", b"ij"] * 3)
        for line in lines:
            self.assertIs(type(line), bytes)


class PartialTests(SynchronousTestCase):
    """
    L{LineFramer.finish} returns the unterminated rest flagged L{PARTIAL}.
    """

    def test_partialLastLine(self) -> None:
        """
        Bytes after the last LF are returned by finish, flagged PARTIAL.
        """
        framer = LineFramer(100)
        self.assertEqual(framer.feed(b"one\ntwo"), [b"one"])
        self.assertEqual(framer.buffered, 3)
        self.assertEqual(records(framer.finish()), [(b"two", PARTIAL)])
        self.assertEqual(framer.buffered, 0)

    def test_trailingCRKept(self) -> None:
        """
        A CR at the very end of the stream is part of the partial line: no
        LF followed it.
        """
        framer = LineFramer(100)
        framer.feed(b"two\r")
        self.assertEqual(records(framer.finish()), [(b"two\r", PARTIAL)])

    def test_nothingLeft(self) -> None:
        """
        finish returns nothing when the stream ended with a terminator or was
        empty.
        """
        self.assertEqual(LineFramer(100).finish(), [])
        framer = LineFramer(100)
        framer.feed(b"one\r\n")
        self.assertEqual(framer.finish(), [])

    def test_finishTwice(self) -> None:
        """
        The partial line is returned only once.
        """
        framer = LineFramer(100)
        framer.feed(b"x")
        self.assertEqual(records(framer.finish()), [(b"x", PARTIAL)])
        self.assertEqual(framer.finish(), [])

    def test_partialOfExactlyMaxLength(self) -> None:
        """
        An unterminated rest of exactly maxLength bytes is one PARTIAL record
        under every policy.
        """
        for policy in LongLines:
            recs, framer = frame([b"abcd"], 4, policy)
            self.assertEqual(recs, [(b"abcd", PARTIAL)], policy)
            self.assertEqual(framer.oversizeLines, 0, policy)


class MaxLengthTests(SynchronousTestCase):
    """
    Lines of exactly maxLength bytes are ordinary; one more byte makes them
    over-long.  The CR of a CRLF does not count.
    """

    def test_exactlyMaxLength(self) -> None:
        """
        A line of exactly maxLength bytes is one ordinary record under every
        policy, with LF or CRLF.
        """
        for policy in LongLines:
            for data in (b"abcd\nef\n", b"abcd\r\nef\r\n"):
                recs, framer = frame([data], 4, policy)
                self.assertEqual(recs, [(b"abcd", 0), (b"ef", 0)], (policy, data))
                self.assertEqual(framer.oversizeLines, 0)
                self.assertEqual(framer.droppedBytes, 0)
                self.assertFalse(framer.closed)

    def test_fullChunkAfterHeldBytesIsFastPath(self) -> None:
        """
        A chunk as long as the limit, after part of a line held from the
        last one, is split without a step per line when none of its lines
        is too long: the transport's 64 KiB reads are longer than the
        default limit as soon as a line was cut between them.
        """

        class Watched(LineFramer):
            def _slowPath(self, parts: List[bytes], rest: bytes) -> List[bytes]:
                raise AssertionError("the per-line path was taken")

        framer = Watched(65536)
        self.assertEqual(framer.feed(b"held part"), [])
        chunk = (b"x" * 99 + b"\n") * 655 + b"y" * 36
        self.assertEqual(len(chunk), 65536)
        lines = framer.feed(chunk)
        self.assertEqual(lines, [b"held part" + b"x" * 99] + [b"x" * 99] * 654)
        self.assertEqual(framer.buffered, 36)

    def test_exactlyMaxLengthCRLFAcrossChunks(self) -> None:
        """
        A maxLength line whose CRLF is cut between chunks is not over-long:
        the framer holds the line and its CR (maxLength + 1 bytes) until it
        knows whether a LF follows.
        """
        for policy in LongLines:
            framer = LineFramer(4, policy)
            self.assertEqual(framer.feed(b"abcd\r"), [], policy)
            self.assertEqual(framer.buffered, 5)
            self.assertEqual(records(framer.feed(b"\nnext\r")), [(b"abcd", 0)], policy)
            self.assertEqual(records(framer.feed(b"\n")), [(b"next", 0)], policy)
            self.assertEqual(framer.oversizeLines, 0)
            self.assertEqual(framer.droppedBytes, 0)
            self.assertFalse(framer.closed)

    def test_maxLengthThenCRThenOtherByte(self) -> None:
        """
        When the byte after a held CR is not LF, the CR was content and the
        line is over-long.
        """
        framer = LineFramer(4, LongLines.split)
        self.assertEqual(framer.feed(b"abcd\r"), [])
        self.assertEqual(records(framer.feed(b"x\n")), [(b"abcd", SPLIT), (b"\rx", SPLIT)])
        self.assertEqual(framer.oversizeLines, 1)

    def test_maxLengthPlusOneSplit(self) -> None:
        """
        Under split a line of maxLength + 1 bytes becomes a full record and a
        one-byte record, both flagged SPLIT.
        """
        recs, framer = frame([b"abcde\r\nz\n"], 4, LongLines.split)
        self.assertEqual(recs, [(b"abcd", SPLIT), (b"e", SPLIT), (b"z", 0)])
        self.assertEqual(framer.oversizeLines, 1)
        self.assertEqual(framer.droppedBytes, 0)

    def test_maxLengthPlusOneTruncate(self) -> None:
        """
        Under truncate a line of maxLength + 1 bytes keeps its first maxLength
        bytes, flagged TRUNCATED, and one byte is dropped.
        """
        recs, framer = frame([b"abcde\nz\n"], 4, LongLines.truncate)
        self.assertEqual(recs, [(b"abcd", TRUNCATED), (b"z", 0)])
        self.assertEqual(framer.oversizeLines, 1)
        self.assertEqual(framer.droppedBytes, 1)

    def test_maxLengthPlusOneClose(self) -> None:
        """
        Under close a line of maxLength + 1 bytes keeps its first maxLength
        bytes, flagged TRUNCATED, and the framer closes.
        """
        recs, framer = frame([b"abcde\nz\n"], 4, LongLines.close)
        self.assertEqual(recs, [(b"abcd", TRUNCATED)])
        self.assertTrue(framer.closed)
        self.assertEqual(framer.oversizeLines, 1)

    def test_lineWithInnerCRIsLonger(self) -> None:
        """
        A CR inside the line counts towards its length.
        """
        recs, framer = frame([b"ab\rcd\n"], 4, LongLines.truncate)
        self.assertEqual(recs, [(b"ab\rc", TRUNCATED)])
        self.assertEqual(framer.oversizeLines, 1)


class SplitTests(SynchronousTestCase):
    """
    L{LongLines.split} records an over-long line as several records of at
    most maxLength bytes, flagged SPLIT, losing nothing.
    """

    def test_split(self) -> None:
        """
        A long line is cut into maxLength pieces, the last one shorter.
        """
        framer = LineFramer(3, LongLines.split)
        self.assertEqual(
            records(framer.feed(b"abcdefgh\nij\n")),
            [(b"abc", SPLIT), (b"def", SPLIT), (b"gh", SPLIT), (b"ij", 0)],
        )
        self.assertEqual(framer.oversizeLines, 1)
        self.assertEqual(framer.droppedBytes, 0)
        self.assertFalse(framer.closed)

    def test_splitMultipleOfMaxLength(self) -> None:
        """
        A line of twice maxLength gives exactly two full records; no empty
        record follows.
        """
        self.assertEqual(frame([b"abcdef\n"], 3)[0], [(b"abc", SPLIT), (b"def", SPLIT)])

    def test_splitAcrossChunks(self) -> None:
        """
        Pieces are emitted as soon as they are known, the buffer stays
        bounded, and the cuts fall where they would for the whole line.
        """
        framer = LineFramer(3, LongLines.split)
        self.assertEqual(records(framer.feed(b"abcde")), [(b"abc", SPLIT)])
        self.assertLessEqual(framer.buffered, 4)
        self.assertEqual(records(framer.feed(b"fghij")), [(b"def", SPLIT), (b"ghi", SPLIT)])
        self.assertLessEqual(framer.buffered, 4)
        self.assertEqual(records(framer.feed(b"\r\nok\n")), [(b"j", SPLIT), (b"ok", 0)])
        self.assertEqual(framer.oversizeLines, 1)

    def test_splitPartial(self) -> None:
        """
        The unterminated end of a long line is flagged both SPLIT and PARTIAL.
        """
        framer = LineFramer(3, LongLines.split)
        self.assertEqual(records(framer.feed(b"abcdefg")), [(b"abc", SPLIT), (b"def", SPLIT)])
        self.assertEqual(records(framer.finish()), [(b"g", SPLIT | PARTIAL)])
        self.assertEqual(framer.oversizeLines, 1)

    def test_splitPartialTrailingCR(self) -> None:
        """
        An unterminated rest of maxLength bytes and a CR is longer than
        maxLength (no LF removed the CR): it is split and nothing is lost.
        """
        recs, framer = frame([b"abc\r"], 3, LongLines.split)
        self.assertEqual(b"".join(p for p, _ in recs), b"abc\r")
        for payload, flags in recs:
            self.assertTrue(flags & SPLIT)
            self.assertLessEqual(len(payload), 3)
        self.assertTrue(recs[-1][1] & PARTIAL)
        self.assertEqual(framer.oversizeLines, 1)

    def test_oversizeLinesCounted(self) -> None:
        """
        Each over-long line counts once, however many chunks it spans.
        """
        framer = LineFramer(2, LongLines.split)
        for chunk in (b"aaa", b"aaa", b"a\n", b"bb\n", b"ccc\n"):
            framer.feed(chunk)
        self.assertEqual(framer.oversizeLines, 2)


class TruncateTests(SynchronousTestCase):
    """
    L{LongLines.truncate} records the first maxLength bytes of a long line,
    drops the rest of that line, and keeps reading.
    """

    def test_truncate(self) -> None:
        """
        The start of the long line is kept, its rest dropped and counted, and
        the next line is recorded normally.
        """
        framer = LineFramer(3, LongLines.truncate)
        self.assertEqual(records(framer.feed(b"abcdefg\nxy\n")), [(b"abc", TRUNCATED), (b"xy", 0)])
        self.assertEqual(framer.droppedBytes, 4)
        self.assertEqual(framer.oversizeLines, 1)
        self.assertFalse(framer.closed)

    def test_truncateAcrossChunks(self) -> None:
        """
        The rest of a long line spanning many chunks is dropped without being
        buffered, and reading resumes after its LF.
        """
        framer = LineFramer(3, LongLines.truncate)
        self.assertEqual(records(framer.feed(b"abcd")), [(b"abc", TRUNCATED)])
        self.assertEqual(framer.buffered, 0)
        for _ in range(5):
            self.assertEqual(framer.feed(b"zzzzzzzzzz"), [])
            self.assertEqual(framer.buffered, 0)
        self.assertEqual(framer.feed(b"zz\nok"), [])
        self.assertEqual(records(framer.feed(b"\n")), [(b"ok", 0)])
        self.assertEqual(framer.droppedBytes, 1 + 50 + 2)
        self.assertEqual(framer.oversizeLines, 1)

    def test_truncateSeveral(self) -> None:
        """
        Every long line is truncated and counted.
        """
        recs, framer = frame([b"aaaa\nbb\ncccccc\n"], 2, LongLines.truncate)
        self.assertEqual(recs, [(b"aa", TRUNCATED), (b"bb", 0), (b"cc", TRUNCATED)])
        self.assertEqual(framer.oversizeLines, 2)
        self.assertEqual(framer.droppedBytes, 2 + 4)

    def test_truncatePartial(self) -> None:
        """
        A long unterminated last line gives one TRUNCATED record and finish
        adds nothing more.
        """
        framer = LineFramer(3, LongLines.truncate)
        self.assertEqual(records(framer.feed(b"abcdef")), [(b"abc", TRUNCATED)])
        self.assertEqual(framer.finish(), [])
        self.assertEqual(framer.droppedBytes, 3)

    def test_truncateCRLFDroppedBytesAcrossChunks(self) -> None:
        """
        The count of dropped bytes of a truncated CRLF line does not depend
        on where the stream was cut; the CR before the LF is counted among
        the dropped bytes (the LF is not).
        """
        for chunks in ([b"aaaa\r\n"], [b"aaa", b"a\r\n"], [b"aaaa\r", b"\n"]):
            self.assertEqual(frame(chunks, 2, LongLines.truncate)[1].droppedBytes, 3, chunks)


class CloseTests(SynchronousTestCase):
    """
    L{LongLines.close} records the first maxLength bytes of a long line, then
    closes the framer: later input is ignored.
    """

    def test_close(self) -> None:
        """
        Lines before the long line are recorded, the long line is truncated,
        and nothing after it is.
        """
        framer = LineFramer(3, LongLines.close)
        self.assertEqual(framer.feed(b"o"), [])
        self.assertEqual(records(framer.feed(b"k\nabcdef\nlater\n")), [(b"ok", 0), (b"abc", TRUNCATED)])
        self.assertTrue(framer.closed)
        self.assertEqual(framer.oversizeLines, 1)
        self.assertEqual(framer.buffered, 0)

    def test_laterInputIgnored(self) -> None:
        """
        Once closed, feed returns nothing, counts what it ignored, and finish
        returns nothing.
        """
        framer = LineFramer(3, LongLines.close)
        self.assertEqual(records(framer.feed(b"abcd")), [(b"abc", TRUNCATED)])
        self.assertTrue(framer.closed)
        dropped = framer.droppedBytes
        self.assertEqual(framer.feed(b"short\n"), [])
        self.assertEqual(framer.feed(b"x"), [])
        self.assertEqual(framer.droppedBytes, dropped + 7)
        self.assertEqual(framer.finish(), [])
        self.assertEqual(framer.buffered, 0)
        self.assertEqual(framer.oversizeLines, 1)

    def test_closeWhileUnterminated(self) -> None:
        """
        The framer closes as soon as the unterminated line is known to be too
        long, without waiting for its LF.
        """
        framer = LineFramer(3, LongLines.close)
        self.assertEqual(framer.feed(b"abc"), [])
        self.assertFalse(framer.closed)
        self.assertEqual(records(framer.feed(b"d")), [(b"abc", TRUNCATED)])
        self.assertTrue(framer.closed)

    def test_closeDroppedBytesAcrossChunks(self) -> None:
        """
        The count of dropped bytes under close does not depend on where the
        stream was cut.
        """
        whole = frame([b"aaa\nb\n"], 2, LongLines.close)[1]
        cut = frame([b"aaa", b"\nb\n"], 2, LongLines.close)[1]
        self.assertEqual(whole.droppedBytes, cut.droppedBytes)


class ChunkingPropertyTests(SynchronousTestCase):
    """
    Properties over arbitrary streams, chunkings, maximum lengths (1 to 8)
    and POLICIES.
    """

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_chunkingDoesNotMatter(self, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines) -> None:
        """
        Any cut of a stream into chunks gives the same records, payloads and
        flags, as feeding it whole, and the same closed state.
        """
        data, chunks = chunked
        whole, wholeFramer = frame([data], maxLength, policy)
        cut, cutFramer = frame(chunks, maxLength, policy)
        self.assertEqual(cut, whole)
        self.assertEqual(cutFramer.closed, wholeFramer.closed)

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_oversizeLinesDoNotDependOnChunking(
        self, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines
    ) -> None:
        """
        The over-long line count is the number of over-long logical lines (up
        to the first under close), for every chunking.
        """
        data, chunks = chunked
        lines, rest = logicalLines(data)
        expected = 0
        for line in [*lines, rest]:
            if len(line) > maxLength:
                expected += 1
                if policy is LongLines.close:
                    break
        self.assertEqual(frame(chunks, maxLength, policy)[1].oversizeLines, expected)

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_droppedBytesDoNotDependOnChunking(
        self, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines
    ) -> None:
        """
        The dropped-byte count is the same for every chunking of a stream.
        """
        data, chunks = chunked
        self.assertEqual(
            frame(chunks, maxLength, policy)[1].droppedBytes, frame([data], maxLength, policy)[1].droppedBytes
        )

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_bufferBounded(self, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines) -> None:
        """
        Between chunks the buffer never holds more than maxLength + 1 bytes,
        and no record is longer than maxLength.
        """
        _, chunks = chunked
        framer = LineFramer(maxLength, policy)
        out: List[bytes] = []
        for chunk in chunks:
            out.extend(framer.feed(chunk))
            self.assertLessEqual(framer.buffered, maxLength + 1)
        out.extend(framer.finish())
        self.assertEqual(framer.buffered, 0)
        for line in out:
            self.assertLessEqual(len(line), maxLength)

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS)
    def test_splitLosesNothing(self, chunked: Tuple[bytes, List[bytes]], maxLength: int) -> None:
        """
        Under split, the records of each logical line join to exactly that
        line; an over-long line gives ceil(len / maxLength) records, all full
        but the last, all flagged SPLIT; a short line gives one plain record;
        the unterminated rest ends with a PARTIAL record.
        """
        data, chunks = chunked
        recs, framer = frame(chunks, maxLength, LongLines.split)
        lines, rest = logicalLines(data)
        position = 0
        for index, line in enumerate([*lines, rest]):
            last = index == len(lines)
            if last and not line:
                break
            count = max(1, -(-len(line) // maxLength))
            pieces = recs[position : position + count]
            position += count
            self.assertEqual(b"".join(p for p, _ in pieces), line)
            if len(line) > maxLength:
                for payload, _ in pieces[:-1]:
                    self.assertEqual(len(payload), maxLength)
                for _, flags in pieces:
                    self.assertEqual(flags & (SPLIT | TRUNCATED), SPLIT)
            else:
                self.assertEqual(pieces[0][1], PARTIAL if last else 0)
            if last:
                self.assertTrue(pieces[-1][1] & PARTIAL)
            else:
                for _, flags in pieces:
                    self.assertFalse(flags & PARTIAL)
        self.assertEqual(position, len(recs))
        self.assertEqual(framer.droppedBytes, 0)
        self.assertFalse(framer.closed)

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS, st.sampled_from([LongLines.truncate, LongLines.close]))
    def test_truncateAndCloseModel(self, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines) -> None:
        """
        Under truncate and close, each short logical line is one record, each
        over-long one is its first maxLength bytes flagged TRUNCATED; close
        stops after the first over-long line; a short unterminated rest is
        flagged PARTIAL.
        """
        data, chunks = chunked
        recs, framer = frame(chunks, maxLength, policy)
        lines, rest = logicalLines(data)
        expected: List[Record] = []
        closed = False
        for line in lines:
            if len(line) <= maxLength:
                expected.append((line, 0))
            else:
                expected.append((line[:maxLength], TRUNCATED))
                if policy is LongLines.close:
                    closed = True
                    break
        restOversize = False
        if rest and not closed:
            if len(rest) <= maxLength:
                expected.append((rest, PARTIAL))
            else:
                restOversize = True
                expected.append((rest[:maxLength], TRUNCATED))
                closed = policy is LongLines.close
        if restOversize and recs:
            # The record of a long unterminated line may be emitted before
            # the stream ends, so whether it says PARTIAL is not specified.
            recs[-1] = (recs[-1][0], recs[-1][1] & ~PARTIAL)
        self.assertEqual(recs, expected)
        if not (restOversize and len(rest) == maxLength + 1 and rest.endswith(b"\r")):
            # (A rest of maxLength bytes and a CR is known to be too long
            # only when the stream has ended: there is nothing left to close.)
            self.assertEqual(framer.closed, closed)


class IdleTests(SynchronousTestCase):
    """
    L{LineFramer.idle}: whether the framer holds anything a new one would
    not, so that it can be dropped between chunks.
    """

    def test_freshAndAfterWholeLines(self) -> None:
        """
        A new framer is idle, and so is one fed only whole lines.
        """
        framer = LineFramer()
        self.assertTrue(framer.idle)
        framer.feed(b"one\r\ntwo\n")
        self.assertTrue(framer.idle)

    def test_partialLine(self) -> None:
        """
        Part of a line held is not idle, until the line is complete.
        """
        framer = LineFramer()
        framer.feed(b"one\ntw")
        self.assertFalse(framer.idle)
        framer.feed(b"o\n")
        self.assertTrue(framer.idle)

    def test_longLines(self) -> None:
        """
        A framer that met a long line keeps its counts (and, mid-line, its
        state): it is never idle again.
        """
        for policy in LongLines:
            framer = LineFramer(4, policy)
            framer.feed(b"abcdefgh")
            self.assertFalse(framer.idle, policy)
            framer.feed(b"\nok\n")
            self.assertFalse(framer.idle, policy)
