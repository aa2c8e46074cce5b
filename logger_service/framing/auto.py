"""
The C{auto} framing: the first byte of a connection chooses octet counting or NUL/LF framing.

L{AutoFramer} (C{auto}): the first byte of the connection chooses, as
RFC 6587 and rsyslog's imtcp do: a digit 1-9 means L{OctetFramer}, anything
else L{NulFramer}.  Unlike rsyslog, which looks again at the start of every
frame, the choice is made once per connection, so a LF-framed line that
starts with a digit is not mistaken for a frame (other than the first one;
and a first line that is not a valid frame falls back to LF/NUL framing,
losing nothing).  Empty chunks choose nothing.
"""

from __future__ import annotations

from typing import List, Optional, Union

from .common import LongLines, checkMaxLength
from .nul import NulFramer
from .octet import OctetFramer

__all__ = ["AutoFramer"]


class AutoFramer:
    """
    Framer that chooses by the first byte of the stream: a digit 1-9 means
    L{OctetFramer}, anything else L{NulFramer}.

    @ivar maxLength: the longest record.
    @ivar policy: the L{LongLines} policy for longer records.
    """

    __slots__ = ("maxLength", "policy", "_inner")

    def __init__(self, maxLength: int = 65536, policy: LongLines = LongLines.split) -> None:
        checkMaxLength(maxLength)
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
        return self._inner.framingErrors if self._inner is not None else 0

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
