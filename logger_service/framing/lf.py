"""
The C{lf} framing, the default: records end at LF, and at NUL too on a connection that sends syslog messages.
"""

from __future__ import annotations

from typing import List

from .common import LongLines
from .lines import LineFramer
from .nul import NulFramer

__all__ = ["SyslogLineFramer"]


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
        return self._split(data)

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
