"""
Tests for L{logger_service.syslogframing}: NUL/LF framing, RFC 6587 octet
counting, and the automatic choice between them.
"""

from __future__ import annotations

import re
from typing import Callable, List, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import PARTIAL, SPLIT, TRUNCATED, Line, LineFramer, LongLines, lineFlags
from logger_service.syslogframing import (
    FRAMERS,
    MAX_DIGITS,
    AutoFramer,
    Framer,
    NulFramer,
    OctetFramer,
    SyslogLineFramer,
    framingErrors,
)

PROPERTY = settings(max_examples=200, deadline=None)

Record = Tuple[bytes, int]
FramerFactory = Callable[[int, LongLines], Framer]

# What util-linux logger 2.38.1 sent for "logger --tcp -t user hello",
# without and with --octet-count (which sends no LF after the message).
LOGGER_MESSAGE = b'<13>1 2026-11-27T15:20:55.884134+00:00 vm user - - [timeQuality tzKnown="1" isSynced="0"] hello'
LOGGER_LF = LOGGER_MESSAGE + b"\n"
LOGGER_OCTET = b"95 " + LOGGER_MESSAGE

# What logging.handlers.SysLogHandler (TCP) sent for logger.warning("hello")
# and logger.warning("two\nlines").
SYSLOGHANDLER = b"<12>hello\x00<12>two\nlines\x00"


def records(lines: Sequence[bytes]) -> List[Record]:
    """
    Return C{lines} as C{(payload, flags)} pairs, which compare exactly.
    """
    return [(bytes(line), lineFlags(line)) for line in lines]


def frame(
    factory: FramerFactory, chunks: Sequence[bytes], maxLength: int = 100, policy: LongLines = LongLines.split
) -> Tuple[List[Record], Framer]:
    """
    Feed C{chunks} to a new framer, finish the stream, and return the records
    and the framer.
    """
    framer = factory(maxLength, policy)
    out: List[bytes] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    out.extend(framer.finish())
    return records(out), framer


def octetFrame(message: bytes) -> bytes:
    """
    Encode C{message} as an RFC 6587 octet-counted frame.
    """
    return b"%d %s" % (len(message), message)


def referenceNul(data: bytes) -> List[Record]:
    """
    The reference NUL/LF framing of a whole stream, for a large maxLength:
    records end at NUL LF, NUL or LF, a CR before the terminator removed;
    the rest is a PARTIAL record.
    """
    parts = re.split(rb"\r?(?:\x00\n?|\n)", data)
    rest = parts.pop()
    out: List[Record] = [(part, 0) for part in parts]
    if rest:
        out.append((rest, PARTIAL))
    return out


def syslogAt(data: bytes) -> int:
    """
    Where the default framing starts to end records at NUL too: at the
    first record that starts with C{<}, or -1.
    """
    if data[:1] == b"<":
        return 0
    at = data.find(b"\n<")
    return at + 1 if at >= 0 else -1


def translateDefault(data: bytes) -> bytes:
    """
    The stream as the default framing sees it: LF-terminated until the
    first record that starts with C{<}; from there on, each NUL LF or NUL
    made a LF.
    """
    at = syslogAt(data)
    if at < 0:
        return data
    return data[:at] + data[at:].replace(b"\x00\n", b"\n").replace(b"\x00", b"\n")


def referenceDefault(data: bytes) -> List[Record]:
    """
    The reference default framing of a whole stream, for a large maxLength:
    LF framing (a CR before the LF removed, the rest PARTIAL) until a
    record starts with C{<}, L{referenceNul} from there on.
    """
    at = syslogAt(data)
    head, rest = (data, b"") if at < 0 else (data[:at], data[at:])
    parts = head.split(b"\n")
    last = parts.pop()
    out: List[Record] = [(p[:-1] if p.endswith(b"\r") else p, 0) for p in parts]
    if last:
        out.append((last, PARTIAL))
    return out + referenceNul(rest)


def referenceOctet(data: bytes) -> Tuple[List[Record], int]:
    """
    The reference octet-counting framing of a whole stream, for a large
    maxLength: the records and the number of framing errors.
    """
    out: List[Record] = []
    pos = 0
    while pos < len(data):
        if data[pos : pos + 1] == b"\n":
            pos += 1
            continue
        match = re.compile(rb"([1-9][0-9]{0,8}) ").match(data, pos)
        if match is None:
            if re.fullmatch(rb"[1-9][0-9]{0,8}", data[pos:]):
                return out + [(data[pos:], PARTIAL)], 0
            return out + referenceNul(data[pos:]), 1
        length = int(match.group(1))
        body = data[match.end() : match.end() + length]
        if body:
            out.append((body, 0 if len(body) == length else PARTIAL))
        pos = match.end() + length
    return out, 0


# Streams rich in the bytes that matter to these framings.
_PIECES = st.sampled_from(
    [b"a", b"b", b"\r", b"\n", b"\r\n", b"\x00", b"\x00\n", b"\r\x00", b" ", b"0", b"1", b"3", b"9", b"\xff", b"xyz"]
    + [b"<", b"<12>x"]
)
_TEXT = st.lists(_PIECES, max_size=12).map(b"".join)
MESSAGES = st.one_of(_TEXT, st.binary(max_size=12)).filter(bool)
_OCTET_PIECES = st.one_of(
    MESSAGES.map(octetFrame),
    MESSAGES.map(octetFrame),
    st.sampled_from([b"\n", b"0 ", b"05 x", b"12", b" ", b"x", b"1234567890 ", b"999999999 ", b"2\n", b"\r\n"]),
)
OCTET_STREAMS = st.lists(_OCTET_PIECES, max_size=8).map(b"".join)
STREAMS = st.one_of(
    st.lists(_PIECES, max_size=40).map(b"".join),
    st.binary(max_size=40),
    OCTET_STREAMS,
)
MAX_LENGTHS = st.integers(min_value=1, max_value=8)
POLICIES = st.sampled_from(list(LongLines))
FACTORIES = st.sampled_from([NulFramer, OctetFramer, AutoFramer, LineFramer, SyslogLineFramer])


def cutInto(draw: Callable[[st.SearchStrategy[List[int]]], List[int]], data: bytes) -> List[bytes]:
    """
    Draw one way of cutting C{data} into chunks, empty chunks included.
    """
    cuts = sorted(draw(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@st.composite
def chunkedStreams(draw: st.DrawFn, streams: st.SearchStrategy[bytes] = STREAMS) -> Tuple[bytes, List[bytes]]:
    """
    A stream and one way of cutting it into chunks.
    """
    data = draw(streams)
    return data, cutInto(draw, data)


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
        self.assertEqual(framingErrors(framer), 0)

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
        self.assertEqual(framingErrors(framer), 0)

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
        self.assertEqual(framingErrors(framer), 0)
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
        self.assertEqual(framingErrors(framer), 0)
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
        self.assertEqual(framingErrors(framer), 0)

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
            self.assertEqual(framingErrors(framer), 1)
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
        self.assertEqual(framingErrors(framer), 1)

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
        self.assertEqual(framingErrors(framer), 0)

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
        self.assertEqual(framingErrors(framer), 0)
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
        self.assertEqual(framingErrors(framer), 1)

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


class RegistryTests(SynchronousTestCase):
    """
    L{FRAMERS} maps the C{--framing} names to framer classes.
    """

    def test_names(self) -> None:
        """
        The four names map to the four framers.
        """
        self.assertEqual(FRAMERS, {"lf": SyslogLineFramer, "nul": NulFramer, "octet": OctetFramer, "auto": AutoFramer})

    def test_construct(self) -> None:
        """
        Every framer is made from a maximum length and a policy.
        """
        for name, factory in FRAMERS.items():
            framer = factory(8, LongLines.truncate)
            self.assertEqual((framer.maxLength, framer.policy), (8, LongLines.truncate), name)

    def test_framingErrorsHelper(self) -> None:
        """
        L{framingErrors} is 0 for framers without the counter.
        """
        self.assertEqual(framingErrors(LineFramer()), 0)
        self.assertEqual(framingErrors(NulFramer()), 0)
        self.assertEqual(framingErrors(OctetFramer()), 0)


class PropertyTests(SynchronousTestCase):
    """
    Properties over arbitrary streams, chunkings, maximum lengths (1 to 8)
    and policies.
    """

    @PROPERTY
    @given(FACTORIES, chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_chunkingDoesNotMatter(
        self, factory: FramerFactory, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines
    ) -> None:
        """
        Any cut of a stream into chunks gives the same records, flags and
        counters as feeding it whole.
        """
        data, chunks = chunked
        whole, wholeFramer = frame(factory, [data], maxLength, policy)
        cut, cutFramer = frame(factory, chunks, maxLength, policy)
        self.assertEqual(cut, whole)
        for attribute in ("closed", "droppedBytes", "oversizeLines", "buffered"):
            self.assertEqual(getattr(cutFramer, attribute), getattr(wholeFramer, attribute), attribute)
        self.assertEqual(framingErrors(cutFramer), framingErrors(wholeFramer))

    @PROPERTY
    @given(FACTORIES, chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_bufferBounded(
        self, factory: FramerFactory, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines
    ) -> None:
        """
        Between chunks a framer holds at most max(maxLength + 1, 9) bytes, no
        record is longer than maxLength, and nothing is held after finish.
        """
        _, chunks = chunked
        framer = factory(maxLength, policy)
        out: List[bytes] = []
        for chunk in chunks:
            out.extend(framer.feed(chunk))
            self.assertLessEqual(framer.buffered, max(maxLength + 1, MAX_DIGITS))
        out.extend(framer.finish())
        self.assertEqual(framer.buffered, 0)
        for line in out:
            self.assertLessEqual(len(line), maxLength)

    @PROPERTY
    @given(chunkedStreams())
    def test_nulModel(self, chunked: Tuple[bytes, List[bytes]]) -> None:
        """
        With room enough, L{NulFramer} gives the reference framing: records
        end at NUL LF, NUL or LF, less a CR before the terminator.
        """
        data, chunks = chunked
        self.assertEqual(frame(NulFramer, chunks, 1000)[0], referenceNul(data))

    @PROPERTY
    @given(chunkedStreams())
    def test_defaultModel(self, chunked: Tuple[bytes, List[bytes]]) -> None:
        """
        With room enough, L{SyslogLineFramer} gives the reference framing:
        LF framing until a record starts with C{<}, NUL framing from there.
        """
        data, chunks = chunked
        self.assertEqual(frame(SyslogLineFramer, chunks, 1000)[0], referenceDefault(data))

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_defaultLikeLineFramer(self, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines) -> None:
        """
        L{SyslogLineFramer} gives what L{LineFramer} gives for the stream
        with each terminator made a LF, and the same counters, except that
        under close droppedBytes counts the bytes received after the close
        (a NUL LF as two).
        """
        data, chunks = chunked
        translated = translateDefault(data)
        recs, framer = frame(SyslogLineFramer, chunks, maxLength, policy)
        lineRecs, lineFramer = frame(LineFramer, [translated], maxLength, policy)
        self.assertEqual(recs, lineRecs)
        self.assertEqual((framer.closed, framer.oversizeLines), (lineFramer.closed, lineFramer.oversizeLines))
        if not lineFramer.closed:
            self.assertEqual(framer.droppedBytes, lineFramer.droppedBytes)
            return
        # LineFramer dropped every translated byte after the close point;
        # find the same point in the bytes received, where each NUL LF from
        # the first syslog record on is two bytes.
        closePoint = len(translated) - lineFramer.droppedBytes
        at = syslogAt(data)
        received = done = 0
        while done < closePoint:
            pair = at >= 0 and received >= at and data[received : received + 2] == b"\x00\n"
            received += 2 if pair else 1
            done += 1
        self.assertEqual(framer.droppedBytes, len(data) - received)

    @PROPERTY
    @given(chunkedStreams())
    def test_octetModel(self, chunked: Tuple[bytes, List[bytes]]) -> None:
        """
        With room enough, L{OctetFramer} gives the reference framing: frames
        until the first framing error, NUL/LF framing after it.
        """
        data, chunks = chunked
        recs, framer = frame(OctetFramer, chunks, 10**9)
        expected, errors = referenceOctet(data)
        self.assertEqual(recs, expected)
        self.assertEqual(framingErrors(framer), errors)

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_autoModel(self, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines) -> None:
        """
        L{AutoFramer} gives what the framer its first byte chooses gives.
        """
        data, chunks = chunked
        chosen = OctetFramer if data[:1] in [b"%d" % d for d in range(1, 10)] else NulFramer
        self.assertEqual(frame(AutoFramer, chunks, maxLength, policy)[0], frame(chosen, [data], maxLength, policy)[0])

    @PROPERTY
    @given(st.data(), st.lists(st.one_of(MESSAGES, st.binary(min_size=1, max_size=30)), max_size=10))
    def test_octetRoundTrip(self, data: st.DataObject, messages: List[bytes]) -> None:
        """
        Messages of any bytes (LF, NUL and CR included), encoded as octet
        frames, some followed by an uncounted LF, and cut anyhow, decode to
        exactly those messages.
        """
        stream = b"".join(octetFrame(m) + data.draw(st.sampled_from([b"", b"\n"])) for m in messages)
        chunks = cutInto(data.draw, stream)
        for factory in (OctetFramer, AutoFramer):
            recs, framer = frame(factory, chunks, 30)
            self.assertEqual(recs, [(m, 0) for m in messages])
            self.assertEqual(framingErrors(framer), 0)

    @PROPERTY
    @given(
        st.data(),
        st.lists(st.binary(min_size=1, max_size=12).filter(lambda m: b"\n" not in m and b"\x00" not in m), max_size=10),
    )
    def test_nulRoundTrip(self, data: st.DataObject, messages: List[bytes]) -> None:
        """
        Non-empty messages without LF or NUL (and not ending in CR), each
        ended by any terminator, with or without a CR before it, and cut
        anyhow, decode to exactly those messages.  (An empty message ended
        by LF right after a NUL cannot be sent: that LF belongs to the NUL.)
        """
        messages = [m for m in messages if not m.endswith(b"\r")]
        terminators = st.sampled_from([b"\n", b"\x00", b"\x00\n", b"\r\n", b"\r\x00", b"\r\x00\n"])
        stream = b"".join(m + data.draw(terminators) for m in messages)
        recs, framer = frame(NulFramer, cutInto(data.draw, stream), 12)
        self.assertEqual(recs, [(m, 0) for m in messages])
        self.assertEqual(framer.buffered, 0)

    @PROPERTY
    @given(
        st.data(),
        st.lists(st.one_of(MESSAGES, st.binary(min_size=1, max_size=20)), min_size=1, max_size=6),
        MAX_LENGTHS,
        POLICIES,
    )
    def test_octetPolicyModel(
        self, data: st.DataObject, messages: List[bytes], maxLength: int, policy: LongLines
    ) -> None:
        """
        For valid frames, the last one possibly cut short: a short message
        is one record (PARTIAL if cut); under split a long one is its pieces,
        flagged SPLIT, the last also PARTIAL if cut; under truncate and close
        it is its first maxLength bytes flagged TRUNCATED (or what arrived,
        flagged PARTIAL and TRUNCATED), and close stops after it.  The
        counters agree.
        """
        received = data.draw(st.integers(min_value=0, max_value=len(messages[-1])))
        stream = b"".join(octetFrame(m) for m in messages)
        stream = stream[: len(stream) - len(messages[-1]) + received]
        recs, framer = frame(OctetFramer, cutInto(data.draw, stream), maxLength, policy)
        expected: List[Record] = []
        oversize = dropped = 0
        closed = False
        for index, message in enumerate(messages):
            complete = index < len(messages) - 1 or received == len(message)
            body = message if complete else message[:received]
            if not body:
                continue
            if len(message) <= maxLength:
                expected.append((body, 0 if complete else PARTIAL))
                continue
            oversize += 1
            if policy is LongLines.split:
                pieces = [(body[i : i + maxLength], SPLIT) for i in range(0, len(body), maxLength)]
                if not complete:
                    pieces[-1] = (pieces[-1][0], SPLIT | PARTIAL)
                expected.extend(pieces)
            elif len(body) < maxLength:
                expected.append((body, PARTIAL | TRUNCATED))
            else:
                expected.append((body[:maxLength], TRUNCATED))
                dropped += len(body) - maxLength
                if policy is LongLines.close:
                    closed = True
                    dropped += sum(len(octetFrame(m)) for m in messages[index + 1 :])
                    dropped -= len(messages[-1]) - received if index < len(messages) - 1 else 0
                    break
        self.assertEqual(recs, expected)
        self.assertEqual((framer.oversizeLines, framer.droppedBytes, framer.closed), (oversize, dropped, closed))
        self.assertEqual(framingErrors(framer), 0)

    @PROPERTY
    @given(chunkedStreams(), MAX_LENGTHS, POLICIES)
    def test_nulLikeLineFramer(self, chunked: Tuple[bytes, List[bytes]], maxLength: int, policy: LongLines) -> None:
        """
        L{NulFramer} gives what L{LineFramer} gives for the stream with each
        terminator made a LF, and the same counters, except that under close
        droppedBytes counts the bytes received after the close, where each
        NUL LF is two bytes.
        """
        data, chunks = chunked
        translated = data.replace(b"\x00\n", b"\n").replace(b"\x00", b"\n")
        recs, framer = frame(NulFramer, chunks, maxLength, policy)
        lineRecs, lineFramer = frame(LineFramer, [translated], maxLength, policy)
        self.assertEqual(recs, lineRecs)
        self.assertEqual((framer.closed, framer.oversizeLines), (lineFramer.closed, lineFramer.oversizeLines))
        if not lineFramer.closed:
            self.assertEqual(framer.droppedBytes, lineFramer.droppedBytes)
            return
        # LineFramer dropped every translated byte after the close point;
        # find the same point in the bytes received.
        closePoint = len(translated) - lineFramer.droppedBytes
        received = done = 0
        while done < closePoint:
            received += 2 if data[received : received + 2] == b"\x00\n" else 1
            done += 1
        self.assertEqual(framer.droppedBytes, len(data) - received)


class LineTypeTests(SynchronousTestCase):
    """
    Records are L{bytes}; only flagged ones are L{Line}s.
    """

    def test_plainRecords(self) -> None:
        """
        Unflagged octet messages are plain L{bytes}.
        """
        for line in OctetFramer(100).feed(b"3 abc2 de"):
            self.assertIs(type(line), bytes)

    def test_flaggedRecords(self) -> None:
        """
        Flagged records are L{Line}s.
        """
        for line in OctetFramer(2).feed(b"3 abc"):
            self.assertIsInstance(line, Line)


class IdleTests(SynchronousTestCase):
    """
    C{idle}: which framers may be dropped between chunks.
    """

    def test_nul(self) -> None:
        """
        A L{NulFramer} is idle after whole records, but not right after a
        NUL (a LF may follow that belongs to it) nor with part of a record.
        """
        framer = NulFramer()
        self.assertTrue(framer.idle)
        framer.feed(b"<12>one\n<12>two\x00\n")
        self.assertTrue(framer.idle)
        framer.feed(b"<12>three\x00")
        self.assertFalse(framer.idle)
        framer.feed(b"\n<12>fo")
        self.assertFalse(framer.idle)
        framer.feed(b"ur\n")
        self.assertTrue(framer.idle)

    @given(
        st.lists(
            st.lists(st.sampled_from([b"a", b"bcdefghij", b"\x00", b"\n", b"\r", b"\x00\n", b"<"]), max_size=6).map(
                b"".join
            ),
            max_size=10,
        )
    )
    @PROPERTY
    def test_dropIdleChangesNothing(self, chunks: List[bytes]) -> None:
        """
        Replacing a L{LineFramer} or L{NulFramer} with a new one whenever it
        is idle (as a connection does) gives the same records as keeping one
        for the whole stream.
        """
        for factory in (LineFramer, NulFramer, SyslogLineFramer):
            expected, _ = frame(factory, chunks, 8)
            framer = factory(8)
            got: List[bytes] = []
            for chunk in chunks:
                got += framer.feed(chunk)
                if framer.idle:
                    framer = factory(8)
            got += framer.finish()
            self.assertEqual(records(got), expected, factory)

    def test_octetAndAutoNeverIdle(self) -> None:
        """
        Octet-counting and auto framers keep their state: never idle.
        """
        for factory in (OctetFramer, AutoFramer):
            framer = factory()
            framer.feed(b"5 hello")
            self.assertFalse(framer.idle, factory)
