"""
Tests for L{logger_service.framing}: the registry, and what every framing
shares (chunking never matters, bounded buffers, idle framers, record types).
"""

from __future__ import annotations

from typing import List, Tuple

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import (
    FRAMERS,
    PARTIAL,
    SPLIT,
    TRUNCATED,
    AutoFramer,
    Line,
    LineFramer,
    LongLines,
    NulFramer,
    OctetFramer,
    SyslogLineFramer,
)
from logger_service.framing.octet import MAX_DIGITS
from tests.framingmodels import (
    FACTORIES,
    MAX_LENGTHS,
    MESSAGES,
    POLICIES,
    PROPERTY,
    FramerFactory,
    Record,
    chunkedStreams,
    cutInto,
    frame,
    octetFrame,
    records,
    referenceDefault,
    referenceNul,
    referenceOctet,
    syslogAt,
    translateDefault,
)


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

    def test_framingErrorsZero(self) -> None:
        """
        C{framingErrors}, part of L{Framer}, is 0 for framers whose framing
        cannot break and for an octet framer before any error.
        """
        self.assertEqual(LineFramer().framingErrors, 0)
        self.assertEqual(NulFramer().framingErrors, 0)
        self.assertEqual(OctetFramer().framingErrors, 0)


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
        self.assertEqual(cutFramer.framingErrors, wholeFramer.framingErrors)

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
        self.assertEqual(framer.framingErrors, errors)

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
            self.assertEqual(framer.framingErrors, 0)

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
        self.assertEqual(framer.framingErrors, 0)

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
