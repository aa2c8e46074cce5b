"""
Syslog framings of a TCP byte stream, for C{--framing lf|nul|octet|auto}.

Like L{logger_service.framing}, this module is pure: each framer holds a
bounded buffer and a few counters, does no I/O, and gives the same records
however the stream was cut into chunks.  Every framer has the interface of
L{LineFramer}: C{Framer(maxLength, policy)}, C{feed(data)} returning the
completed records, C{finish()} returning what is left as L{PARTIAL} records,
and C{closed}, C{buffered}, C{oversizeLines}, C{droppedBytes}, C{maxLength}
and C{policy}.  Records are plain L{bytes}, or L{Line}s when flagged
L{PARTIAL}, L{SPLIT} or L{TRUNCATED}; over-long records follow the
L{LongLines} policy exactly as with L{LineFramer}.

L{NulFramer} (C{nul}): a record ends at LF or at NUL.

    - A NUL directly followed by a LF is one terminator: C{b"msg\\x00\\n"}
      gives the one record C{b"msg"}, not C{b"msg"} and C{b""}.  Every NUL
      ends a record (C{b"a\\x00\\x00\\n"} gives C{b"a"} and C{b""}); a LF
      ends one unless it directly follows a NUL.  Whether the LF comes in
      the same chunk as the NUL or in a later one makes no difference: the
      framer remembers that the last byte it was fed was a NUL and swallows
      one LF at the start of the next non-empty chunk.
    - A CR directly before the terminator (LF, NUL or NUL LF) is removed;
      any other CR is kept.
    - The counters mean what they mean for L{LineFramer}; under
      L{LongLines.close} C{droppedBytes} counts every byte received after
      the recorded C{maxLength}, a NUL LF terminator as two bytes.

L{OctetFramer} (C{octet}): RFC 6587 section 3.4.1 octet counting, where
each frame is C{MSG-LEN SP SYSLOG-MSG}.

    - C{MSG-LEN} is 1 to 9 decimal digits without a leading zero (1 to
      999999999); the message is exactly that many bytes, which may include
      LF, CR and NUL.
    - The message is recorded verbatim: a trailing LF counted in
      C{MSG-LEN} is part of the record.  RFC 6587 says this framing carries
      "all characters inside a syslog message"; rsyslog drops a trailing LF
      only later, in its parser ($DropTrailingLFOnReception, on by
      default), and notes that the IETF recommends against modifying
      messages.  Text records write such a LF as C{\\x0a}.
    - LF bytes where a frame should start are skipped: some senders follow
      each frame with a LF that C{MSG-LEN} does not count.
    - A message longer than C{maxLength} (known from its C{MSG-LEN}) follows
      the policy: C{split} records it in pieces of C{maxLength} bytes, all
      flagged L{SPLIT}, emitted as they arrive (the last piece is held until
      at least one more byte of the message arrives, so that a message cut
      short by the end of the stream ends with a L{PARTIAL} record);
      C{truncate} records its first C{maxLength} bytes flagged L{TRUNCATED}
      as soon as they have arrived, then skips the rest of the message
      without buffering it (counted in C{droppedBytes}) and reads the next
      frame; C{close} does the same and then ignores all later input, like
      L{LineFramer}.  C{oversizeLines} counts such messages once their
      first record is emitted (or at C{finish}).
    - A framing error (a byte other than 1-9 or LF where a frame starts, a
      non-digit other than SP after the digits, a tenth digit) switches the
      connection to L{NulFramer} framing for good, from the first byte of
      the bad frame: nothing is lost, the bytes are recorded as LF/NUL
      terminated records under the same maximum length and policy, and
      C{framingErrors} becomes 1 so that the protocol can log a warning
      once.  (rsyslog, too, reads a frame without a valid MSG-LEN as
      LF-terminated, but decides again at the start of every frame.)
    - At the end of the stream, an incomplete message is recorded as far as
      it arrived, flagged L{PARTIAL} (with L{SPLIT} or L{TRUNCATED} when its
      C{MSG-LEN} is over C{maxLength}); the digits of an incomplete
      C{MSG-LEN} are recorded as a partial line; a C{MSG-LEN SP} without
      any message byte gives nothing.
    - Between chunks the framer holds at most 9 digits of C{MSG-LEN} or at
      most C{maxLength} bytes of a message; after a framing error, what the
      L{NulFramer} holds (at most C{maxLength + 1}).

L{AutoFramer} (C{auto}): the first byte of the connection chooses, as
RFC 6587 and rsyslog's imtcp do: a digit 1-9 means L{OctetFramer}, anything
else L{NulFramer}.  Unlike rsyslog, which looks again at the start of every
frame, the choice is made once per connection, so a LF-framed line that
starts with a digit is not mistaken for a frame (other than the first one;
and a first line that is not a valid frame falls back to LF/NUL framing,
losing nothing).  Empty chunks choose nothing.
"""

from __future__ import annotations

import re
from typing import Callable, Dict, List, Optional, Protocol, Union

from .framing import PARTIAL, SPLIT, TRUNCATED, Line, LineFramer, LongLines, lineFlags

__all__ = [
    "FRAMERS",
    "PARTIAL",
    "SPLIT",
    "TRUNCATED",
    "AutoFramer",
    "Framer",
    "Line",
    "LongLines",
    "NulFramer",
    "OctetFramer",
    "SyslogLineFramer",
    "framingErrors",
    "lineFlags",
]

MAX_DIGITS = 9
"""The longest C{MSG-LEN} accepted, in digits."""

# One terminator of the NUL framing, as the translation to LF sees it.
_TERMINATOR = re.compile(rb"\x00\n?|\n")

# A bytes.translate table making NUL a LF.
_NUL_TO_LF = bytes([0x0A, *range(1, 256)])

# A whole MSG-LEN and its SP; and the digits of one not yet finished.
_HEADER = re.compile(rb"([1-9][0-9]{0,%d}) " % (MAX_DIGITS - 1))
_DIGITS = re.compile(rb"[1-9][0-9]{0,%d}" % (MAX_DIGITS - 1))


class Framer(Protocol):
    """
    What the protocol needs of a framer: L{LineFramer}'s interface.
    """

    @property
    def maxLength(self) -> int:
        """The longest record, in bytes."""

    @property
    def policy(self) -> LongLines:
        """What happens to a longer line or frame."""

    @property
    def closed(self) -> bool:
        """Whether the framer stopped reading (L{LongLines.close})."""

    @property
    def droppedBytes(self) -> int:
        """Bytes thrown away under C{truncate} or C{close}."""

    @property
    def oversizeLines(self) -> int:
        """Lines or frames longer than C{maxLength}."""

    @property
    def buffered(self) -> int:
        """Bytes of an unfinished record held."""

    @property
    def idle(self) -> bool:
        """Whether the framer holds nothing a new one would not (so it can be dropped)."""

    def feed(self, data: bytes) -> List[bytes]:
        """Add C{data} to the stream; return the records it completed."""

    def finish(self) -> List[bytes]:
        """End the stream; return what is left, flagged partial."""


def _checkMaxLength(maxLength: int) -> None:
    if maxLength < 1:
        raise ValueError("maxLength must be at least 1")


def _pieces(payload: bytes, maxLength: int, flags: int) -> List[bytes]:
    """
    Cut C{payload} into records of at most C{maxLength} bytes with C{flags}.
    """
    return [Line(payload[i : i + maxLength], flags) for i in range(0, len(payload), maxLength)]


class NulFramer(LineFramer):
    """
    Framer for records that end at LF, NUL, or NUL directly followed by LF.

    It translates each terminator to a LF and frames the result as
    L{LineFramer} does, so its rules for CR, long lines and partial lines
    are the same.
    """

    __slots__ = ("_afterNul",)

    def __init__(self, maxLength: int = 65536, policy: LongLines = LongLines.split) -> None:
        super().__init__(maxLength, policy)
        # True when the last byte fed was a NUL: a LF next is part of it.
        self._afterNul = False

    def feed(self, data: bytes) -> List[bytes]:
        """
        Add C{data} to the stream and return the records it completed.
        """
        if self.closed:
            self.droppedBytes += len(data)
            return []
        if not data:
            return []
        if self._afterNul:
            self._afterNul = False
            if data[0] == 0x0A:
                data = data[1:]
                if not data:
                    return []
        if b"\x00" not in data:
            return LineFramer.feed(self, data)
        self._afterNul = data[-1] == 0
        if b"\n" in data:
            translated = data.replace(b"\x00\n", b"\n").replace(b"\x00", b"\n")
        else:
            # Only NULs (as SysLogHandler sends): one pass, no NUL LF to join.
            translated = data.translate(_NUL_TO_LF)
        if self.policy is not LongLines.close:
            return LineFramer.feed(self, translated)
        held, dropped = self._buffer, self.droppedBytes
        lines = LineFramer.feed(self, translated)
        if self.closed:
            # LineFramer counted the bytes after the close in the translated
            # stream, where NUL LF is one byte; count the bytes received.
            # The over-long line is the last record and follows the other
            # records' terminators; the held bytes hold no terminator.
            raw = held + data
            start = 0
            if len(lines) > 1:
                for count, match in enumerate(_TERMINATOR.finditer(raw), 1):
                    if count == len(lines) - 1:
                        start = match.end()
                        break
            self.droppedBytes = dropped + len(raw) - start - self.maxLength
        return lines

    @property
    def idle(self) -> bool:
        """
        True when nothing is held: L{LineFramer.idle}, and the last byte fed
        was not a NUL (whose LF may be next).
        """
        return not self._afterNul and super().idle

    def finish(self) -> List[bytes]:
        """
        End the stream: return what is left as L{PARTIAL} records, if anything.
        """
        self._afterNul = False
        return LineFramer.finish(self)


class SyslogLineFramer(NulFramer):
    """
    The default framer: records end at LF, and at NUL too on a connection
    that sends syslog messages.

    Until a record starts with C{<} (a syslog message's PRI) the stream is
    framed as L{LineFramer} frames it, a NUL being a byte of its line; from
    the first byte of that record on, as L{NulFramer} frames it.
    """

    __slots__ = ("_nulFramed",)

    def __init__(self, maxLength: int = 65536, policy: LongLines = LongLines.split) -> None:
        super().__init__(maxLength, policy)
        # True once a record started with "<": NUL framing from then on.
        self._nulFramed = False

    def feed(self, data: bytes) -> List[bytes]:
        """
        Add C{data} to the stream and return the records it completed.
        """
        if self._nulFramed or b"<" in data or self.closed or self._discarding:
            return self._feedOther(data)
        # The LF fast path, as in LineFramer.feed.
        if self._buffer:
            data = self._buffer + data
        parts = data.split(b"\n")
        rest = parts.pop()
        if self._splitting or len(data) > self.maxLength:
            return self._slowPath(parts, rest)
        self._buffer = rest
        if b"\r" not in data:
            return parts
        return [p[:-1] if p[-1:] == b"\r" else p for p in parts]

    def _feedOther(self, data: bytes) -> List[bytes]:
        """
        Feed a chunk that is not for the LF fast path: one after NUL framing
        began, one with a C{<} in it, or one after the framer closed or
        while it drops the rest of a long line.
        """
        if self._nulFramed:
            return NulFramer.feed(self, data)
        if self.closed or not data:
            return LineFramer.feed(self, data)
        # Where the first record that starts with "<" starts, if anywhere.
        if data[0] == 0x3C and not (self._buffer or self._splitting or self._discarding):
            start = 0
        else:
            start = data.find(b"\n<") + 1
            if not start:
                return LineFramer.feed(self, data)
        lines = LineFramer.feed(self, data[:start]) if start else []
        self._nulFramed = True
        return lines + NulFramer.feed(self, data[start:])

    @property
    def idle(self) -> bool:
        """
        True when nothing is held and NUL framing has not begun (a new
        framer would not know of it).
        """
        return not self._nulFramed and super().idle


class OctetFramer:
    """
    RFC 6587 octet-counting framer: C{MSG-LEN SP SYSLOG-MSG} frames.

    @ivar maxLength: the longest message recorded as one record.
    @ivar policy: the L{LongLines} policy for longer messages.
    @ivar framingErrors: 1 once the stream broke the framing and the framer
        switched to L{NulFramer} framing for the rest of it, else 0.
    """

    __slots__ = (
        "maxLength",
        "policy",
        "framingErrors",
        "_closed",
        "_dropped",
        "_oversize",
        "_header",
        "_body",
        "_remaining",
        "_long",
        "_counted",
        "_discarding",
        "_fallback",
    )

    def __init__(self, maxLength: int = 65536, policy: LongLines = LongLines.split) -> None:
        _checkMaxLength(maxLength)
        self.maxLength = maxLength
        self.policy = policy
        self.framingErrors = 0
        self._closed = False
        self._dropped = 0
        self._oversize = 0
        # The digits of a MSG-LEN whose SP has not arrived yet.
        self._header = b""
        # The held bytes of the current message (of its current piece under
        # split).
        self._body = b""
        # How many bytes of the current message are still to come; 0 between
        # frames.
        self._remaining = 0
        # Whether the current message is longer than maxLength, and whether
        # it was counted in oversizeLines yet.
        self._long = False
        self._counted = False
        # True while the rest of a truncated message is being skipped.
        self._discarding = False
        # The framer for the rest of the stream after a framing error.
        self._fallback: Optional[NulFramer] = None

    @property
    def closed(self) -> bool:
        """
        True once a message exceeded the limit under L{LongLines.close}.
        """
        if self._fallback is not None:
            return self._fallback.closed
        return self._closed

    @property
    def droppedBytes(self) -> int:
        """
        How many bytes C{truncate} skipped, and C{close} ignored.
        """
        fallback = self._fallback
        return self._dropped + (fallback.droppedBytes if fallback is not None else 0)

    @property
    def oversizeLines(self) -> int:
        """
        How many messages (or lines, after a framing error) were longer than
        C{maxLength}.
        """
        fallback = self._fallback
        return self._oversize + (fallback.oversizeLines if fallback is not None else 0)

    @property
    def idle(self) -> bool:
        """
        Always false: an octet-counting stream keeps its framer (its state
        and its fallback are not worth rebuilding).
        """
        return False

    @property
    def buffered(self) -> int:
        """
        How many bytes of an unfinished frame are held.
        """
        fallback = self._fallback
        held = len(self._header) + len(self._body)
        return held + (fallback.buffered if fallback is not None else 0)

    def feed(self, data: bytes) -> List[bytes]:
        """
        Add C{data} to the stream and return the messages it completed.
        """
        if self._fallback is not None:
            return self._fallback.feed(data)
        if self._closed:
            self._dropped += len(data)
            return []
        out: List[bytes] = []
        maxLength = self.maxLength
        pos, end = 0, len(data)
        while pos < end:
            remaining = self._remaining
            if remaining:
                take = min(remaining, end - pos)
                remaining -= take
                self._remaining = remaining
                if self._discarding:
                    self._dropped += take
                    pos += take
                    self._discarding = remaining > 0
                    continue
                body = self._body + data[pos : pos + take]
                pos += take
                if not self._long:
                    if remaining:
                        self._body = body
                    else:
                        out.append(body)
                        self._body = b""
                    continue
                if self.policy is LongLines.split:
                    # Emit whole pieces; keep the last one until the message
                    # is complete or has at least one more byte.
                    cut = (len(body) - 1) // maxLength * maxLength if remaining else len(body)
                    if cut:
                        self._countOversize()
                        out.extend(_pieces(body[:cut], maxLength, SPLIT))
                    self._body = body[cut:]
                    continue
                if len(body) < maxLength:
                    self._body = body
                    continue
                self._countOversize()
                out.append(Line(body[:maxLength], TRUNCATED))
                self._dropped += len(body) - maxLength
                self._body = b""
                if self.policy is LongLines.close:
                    self._closed = True
                    self._remaining = 0
                    self._dropped += end - pos
                    return out
                self._discarding = remaining > 0
                continue
            # Between frames: read MSG-LEN SP.
            header = self._header
            if not header:
                pos = self._wholeFrames(data, pos, out)
                if pos == end:
                    break
            if not header and data[pos] == 0x0A:
                pos += 1
                continue
            avail = header + data[pos : pos + MAX_DIGITS + 1 - len(header)]
            match = _HEADER.match(avail)
            if match is not None:
                pos += match.end() - len(header)
                self._header = b""
                length = int(match.group(1))
                self._remaining = length
                self._long = length > maxLength
                self._counted = False
                continue
            taken = len(avail) - len(header)
            if pos + taken == end and len(avail) <= MAX_DIGITS and _DIGITS.fullmatch(avail):
                # The chunk ended inside MSG-LEN.
                self._header = avail
                break
            # Not a frame: frame the rest of the stream by LF and NUL.
            self.framingErrors += 1
            self._header = b""
            fallback = self._fallback = NulFramer(maxLength, self.policy)
            out.extend(fallback.feed(header + data[pos:]))
            return out
        return out

    def _wholeFrames(self, data: bytes, pos: int, out: List[bytes]) -> int:
        """
        Append to C{out} the messages of the whole frames, none longer than
        C{maxLength}, that start at C{pos} in C{data} (LF bytes between them
        skipped); return where the first other frame starts.  This is the common
        case, taken with a few steps a frame; the general loop takes the
        rest, framing errors included.
        """
        end, maxLength = len(data), self.maxLength
        find = data.find
        append = out.append
        while pos < end:
            first = data[pos]
            if first == 0x0A:
                pos += 1
                continue
            space = find(b" ", pos + 1, pos + MAX_DIGITS + 1)
            if space < 0 or first == 0x30:
                break
            digits = data[pos:space]
            if not digits.isdigit():
                break
            start = space + 1
            stop = start + int(digits)
            if stop > end or stop - start > maxLength:
                break
            append(data[start:stop])
            pos = stop
        return pos

    def _countOversize(self) -> None:
        if not self._counted:
            self._counted = True
            self._oversize += 1

    def finish(self) -> List[bytes]:
        """
        End the stream: return what is left as L{PARTIAL} records, if anything.
        """
        if self._fallback is not None:
            return self._fallback.finish()
        header, body = self._header, self._body
        self._header = self._body = b""
        self._remaining = 0
        self._discarding = False
        if self._closed:
            return []
        if header:
            # Only digits arrived: record them as an unterminated line.
            tail = NulFramer(self.maxLength, self.policy)
            out = tail.feed(header) + tail.finish()
            self._dropped += tail.droppedBytes
            self._oversize += tail.oversizeLines
            return out
        if not body:
            return []
        if not self._long:
            return [Line(body, PARTIAL)]
        self._countOversize()
        flags = SPLIT if self.policy is LongLines.split else TRUNCATED
        return [Line(body, PARTIAL | flags)]


class AutoFramer:
    """
    Framer that chooses by the first byte of the stream: a digit 1-9 means
    L{OctetFramer}, anything else L{NulFramer}.

    @ivar maxLength: the longest record.
    @ivar policy: the L{LongLines} policy for longer records.
    """

    __slots__ = ("maxLength", "policy", "_inner")

    def __init__(self, maxLength: int = 65536, policy: LongLines = LongLines.split) -> None:
        _checkMaxLength(maxLength)
        self.maxLength = maxLength
        self.policy = policy
        self._inner: Optional[Union[OctetFramer, NulFramer]] = None

    @property
    def framing(self) -> Optional[str]:
        """
        C{"octet"} or C{"nul"} once chosen; L{None} before the first byte.
        """
        inner = self._inner
        if inner is None:
            return None
        return "octet" if isinstance(inner, OctetFramer) else "nul"

    @property
    def closed(self) -> bool:
        """
        True once a record exceeded the limit under L{LongLines.close}.
        """
        return self._inner is not None and self._inner.closed

    @property
    def droppedBytes(self) -> int:
        """
        The chosen framer's C{droppedBytes}.
        """
        return self._inner.droppedBytes if self._inner is not None else 0

    @property
    def oversizeLines(self) -> int:
        """
        The chosen framer's C{oversizeLines}.
        """
        return self._inner.oversizeLines if self._inner is not None else 0

    @property
    def buffered(self) -> int:
        """
        How many bytes of an unfinished record are held.
        """
        return self._inner.buffered if self._inner is not None else 0

    @property
    def idle(self) -> bool:
        """
        Always false: the framing chosen by the first byte must be kept.
        """
        return False

    @property
    def framingErrors(self) -> int:
        """
        The L{OctetFramer}'s C{framingErrors}; 0 for L{NulFramer} framing.
        """
        inner = self._inner
        return inner.framingErrors if isinstance(inner, OctetFramer) else 0

    def feed(self, data: bytes) -> List[bytes]:
        """
        Add C{data} to the stream and return the records it completed.
        """
        inner = self._inner
        if inner is None:
            if not data:
                return []
            framer = OctetFramer if 0x31 <= data[0] <= 0x39 else NulFramer
            inner = self._inner = framer(self.maxLength, self.policy)
        return inner.feed(data)

    def finish(self) -> List[bytes]:
        """
        End the stream: return what is left as L{PARTIAL} records, if anything.
        """
        return self._inner.finish() if self._inner is not None else []


def framingErrors(framer: object) -> int:
    """
    Return C{framer.framingErrors}, or 0 for framers that cannot have any
    (L{LineFramer}, L{NulFramer}).
    """
    count = getattr(framer, "framingErrors", 0)
    return count if isinstance(count, int) else 0


FRAMERS: Dict[str, Callable[[int, LongLines], Framer]] = {
    "lf": SyslogLineFramer,
    "nul": NulFramer,
    "octet": OctetFramer,
    "auto": AutoFramer,
}
"""The framers by their C{--framing} name; C{lf} is the default."""
