"""
The C{octet} framing: RFC 6587 octet counting, C{MSG-LEN SP SYSLOG-MSG} frames.

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
"""

from __future__ import annotations

import re
from typing import Dict, List, Optional

from .common import PARTIAL, SPLIT, TRUNCATED, Line, LongLines, checkMaxLength, pieces
from .nul import NulFramer

__all__ = ["MAX_DIGITS", "OctetFramer"]

MAX_DIGITS = 9
"""The longest C{MSG-LEN} accepted, in digits."""

# A whole MSG-LEN and its SP; and the digits of one not yet finished.
_HEADER = re.compile(rb"([1-9][0-9]{0,%d}) " % (MAX_DIGITS - 1))
_DIGITS = re.compile(rb"[1-9][0-9]{0,%d}" % (MAX_DIGITS - 1))

_LENGTHS: Dict[bytes, int] = {}
"""Valid C{MSG-LEN SP} headers seen, and their lengths: the fast path's
check and parse in one look-up, shared by every connection."""

_MAX_LENGTHS = 4096
"""The most headers L{_LENGTHS} holds (each under 100 bytes); later new
ones are checked every time."""


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
        checkMaxLength(maxLength)
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
                        out.extend(pieces(body[:cut], maxLength, SPLIT))
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
        case; the general loop takes the rest, framing errors included.

        A frame costs a slice, a dictionary look-up and a slice: its
        C{MSG-LEN SP} is looked up in L{_LENGTHS}, which holds only valid
        ones, guessing that it has as many digits as the one before (a wrong
        guess is no valid key: either it lacks the SP or it has a non-digit).
        Only a header not seen before is found and checked byte by byte.
        """
        end, maxLength = len(data), self.maxLength
        append = out.append
        get = _LENGTHS.get
        # The length of the last header, SP included; 0 (no key) at first.
        width = 0
        while True:
            start = pos + width
            length = get(data[pos:start])
            if length is None:
                if pos == end:
                    break
                # A new header, or one of another width: find and check it.
                space = data.find(b" ", pos, pos + MAX_DIGITS + 1)
                digits = data[pos:space]
                if space < 0 or not digits.isdigit() or digits[0] == 0x30:
                    if data[pos] == 0x0A:
                        pos += 1
                        continue
                    break
                start = space + 1
                width = start - pos
                length = int(digits)
                if len(_LENGTHS) < _MAX_LENGTHS:
                    _LENGTHS[data[pos:start]] = length
            # A key cut short by the end of the chunk can be valid: then
            # start, and so stop, is past the end, and the general loop
            # takes that frame.
            stop = start + length
            if stop > end or length > maxLength:
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
