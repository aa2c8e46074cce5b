"""
Splitting a TCP byte stream into LF-terminated lines: the engine every framing builds on.

This module is pure: it holds a buffer and a few counters, and does no I/O.
The protocol feeds it whatever the transport delivered and gets back the
complete lines in that chunk, so splitting happens once per chunk rather than
once per line.

Framing rules:

    - A line ends at LF (C{\\n}).  A CR directly before that LF is removed, so
      CRLF clients (telnet) and LF clients give the same lines.  Any other CR
      is part of the line.
    - A line longer than C{maxLength} bytes is handled by the chosen
      L{LongLines} policy; the buffer never holds more than C{maxLength + 1}
      bytes between chunks.
    - What is left without a terminator when the stream ends is returned by
      L{LineFramer.finish} as a partial line.

The result never depends on how the stream was cut into chunks.
"""

from __future__ import annotations

from typing import List

from .common import PARTIAL, SPLIT, TRUNCATED, Line, LongLines, checkMaxLength, pieces

__all__ = ["LineFramer"]


class LineFramer:
    """
    Incremental LF framer with a bounded buffer.

    @ivar maxLength: the longest line recorded as one record.
    @ivar policy: the L{LongLines} policy for longer lines.
    @ivar closed: true once a line exceeded the limit under
        L{LongLines.close}; further input is ignored.
    @ivar droppedBytes: how many bytes L{LongLines.truncate} and
        L{LongLines.close} threw away: under C{truncate}, the bytes of each
        long line after its first C{maxLength} (a CR before its LF
        included, the LF not); under C{close}, every byte after the
        C{maxLength} recorded.  The count never depends on how the stream
        was cut into chunks.
    @ivar oversizeLines: how many lines were longer than C{maxLength}.
    """

    __slots__ = (
        "maxLength",
        "policy",
        "closed",
        "droppedBytes",
        "oversizeLines",
        "_buffer",
        "_discarding",
        "_splitting",
    )

    def __init__(self, maxLength: int = 65536, policy: LongLines = LongLines.split) -> None:
        checkMaxLength(maxLength)
        self.maxLength = maxLength
        self.policy = policy
        self.closed = False
        self.droppedBytes = 0
        self.oversizeLines = 0
        self._buffer = b""
        # True while the rest of an over-long line is being dropped.
        self._discarding = False
        # True while the rest of an over-long line is being split.
        self._splitting = False

    @property
    def buffered(self) -> int:
        """
        How many bytes of an unfinished line are held.
        """
        return len(self._buffer)

    @property
    def idle(self) -> bool:
        """
        True when this framer holds nothing a new one would not: no part of
        a line, no long line under way, no counts.  An idle framer can be
        dropped and made afresh when more data comes.
        """
        if self._buffer or self._discarding or self._splitting or self.closed:
            return False
        return not (self.oversizeLines or self.droppedBytes)

    @property
    def framingErrors(self) -> int:
        """
        Always 0: a LF-framed stream cannot break its framing.
        """
        return 0

    def feed(self, data: bytes) -> List[bytes]:
        """
        Add C{data} to the stream and return the lines it completed.

        @return: lines without their terminators; flagged lines are L{Line}
            instances, the others plain L{bytes}.
        """
        if self.closed:
            self.droppedBytes += len(data)
            return []
        if self._discarding:
            end = data.find(b"\n")
            if end < 0:
                self.droppedBytes += len(data)
                return []
            self.droppedBytes += end
            self._discarding = False
            data = data[end + 1 :]
        return self._split(data)

    def _split(self, data: bytes, terminator: bytes = b"\n") -> List[bytes]:
        """
        Split C{data}, after the held bytes, at LF (or at C{terminator}, a
        framing that ends lines at another byte): the lines it completed.
        """
        if self._buffer:
            data = self._buffer + data
        parts = data.split(terminator)
        rest = parts.pop()
        maxLength = self.maxLength
        if self._splitting or (
            len(data) > maxLength and (len(rest) > maxLength or max(map(len, parts), default=0) > maxLength)
        ):
            return self._slowPath(parts, rest)
        # Fast path: no line in this chunk is too long.  (A chunk of the
        # transport's 64 KiB after part of a line held from the last one is
        # longer than the limit, but its lines are not.)
        self._buffer = rest
        if b"\r" not in data:
            return parts
        return [p[:-1] if p[-1:] == b"\r" else p for p in parts]

    def _slowPath(self, parts: List[bytes], rest: bytes) -> List[bytes]:
        """
        Handle a chunk that may contain, or end in, an over-long line.
        """
        out: List[bytes] = []
        maxLength = self.maxLength
        for index, raw in enumerate(parts):
            part = raw[:-1] if raw[-1:] == b"\r" else raw
            if self._splitting:
                self._splitting = False
                out.extend(pieces(part, maxLength, SPLIT))
            elif len(part) <= maxLength:
                out.append(part)
            else:
                self.oversizeLines += 1
                if self.policy is LongLines.split:
                    out.extend(pieces(part, maxLength, SPLIT))
                    continue
                out.append(Line(part[:maxLength], TRUNCATED))
                self.droppedBytes += len(raw) - maxLength
                if self.policy is LongLines.close:
                    self.closed = True
                    self.droppedBytes += sum(len(p) + 1 for p in parts[index:]) - len(raw) + len(rest)
                    self._buffer = b""
                    return out
        # The unterminated rest is known to be too long once it holds more
        # than maxLength bytes besides a last CR that a LF may yet remove.
        known = len(rest) - (rest[-1:] == b"\r")
        if known > maxLength:
            if not self._splitting:
                self.oversizeLines += 1
            if self.policy is LongLines.split:
                # Cut whole pieces, keeping at least one byte of the line, so
                # that the cuts fall where they would if the line were whole.
                cut = (known - 1) // maxLength * maxLength
                out.extend(pieces(rest[:cut], maxLength, SPLIT))
                rest = rest[cut:]
                self._splitting = True
            else:
                out.append(Line(rest[:maxLength], TRUNCATED))
                self.droppedBytes += len(rest) - maxLength
                rest = b""
                if self.policy is LongLines.close:
                    self.closed = True
                else:
                    self._discarding = True
        self._buffer = rest
        return out

    def finish(self) -> List[bytes]:
        """
        End the stream: return what is left as L{PARTIAL} records, if anything.
        """
        rest, self._buffer = self._buffer, b""
        splitting, self._splitting = self._splitting, False
        self._discarding = False
        if self.closed or not rest:
            return []
        if len(rest) <= self.maxLength:
            return [Line(rest, PARTIAL | (SPLIT if splitting else 0))]
        # Only maxLength bytes and a last CR that no LF followed.
        if not splitting:
            self.oversizeLines += 1
        if self.policy is LongLines.split:
            return pieces(rest, self.maxLength, PARTIAL | SPLIT)
        self.droppedBytes += len(rest) - self.maxLength
        return [Line(rest[: self.maxLength], PARTIAL | TRUNCATED)]
