"""
The C{nul} framing: records end at LF, NUL, or NUL directly followed by LF.

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
"""

from __future__ import annotations

import re
from typing import List

from .common import LongLines
from .lines import LineFramer

__all__ = ["NulFramer"]

# One terminator of the NUL framing, as the translation to LF sees it.
_TERMINATOR = re.compile(rb"\x00\n?|\n")


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
        elif not self._discarding and self.policy is not LongLines.close:
            # Only NULs (as SysLogHandler sends), nothing to skip to: split
            # at NUL as LineFramer splits at LF, without a translated copy.
            return self._split(data, b"\x00")
        else:
            # Only NULs: no NUL LF to join.
            translated = data.replace(b"\x00", b"\n")
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
