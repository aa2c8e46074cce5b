"""
What the framing tests share: recorded syslog senders' bytes, reference
models of each framing, and the Hypothesis strategies for streams.
"""

from __future__ import annotations

import re
from typing import Callable, List, Sequence, Tuple

from hypothesis import settings
from hypothesis import strategies as st

from logger_service.framing import (
    PARTIAL,
    AutoFramer,
    Framer,
    LineFramer,
    LongLines,
    NulFramer,
    OctetFramer,
    SyslogLineFramer,
    lineFlags,
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
