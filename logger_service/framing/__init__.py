"""
Turning a TCP byte stream into records: the L{Framer} interface and the framings by their C{--framing} name.

Every framing is pure: each framer holds a bounded buffer and a few
counters, does no I/O, and gives the same records however the stream was
cut into chunks.  Every framer has the interface of L{LineFramer}:
C{Framer(maxLength, policy)}, C{feed(data)} returning the completed
records, C{finish()} returning what is left as L{PARTIAL} records, and
C{closed}, C{buffered}, C{oversizeLines}, C{droppedBytes},
C{framingErrors}, C{maxLength} and C{policy} (L{Framer}).  Records are
plain L{bytes}, or L{Line}s when flagged L{PARTIAL}, L{SPLIT} or
L{TRUNCATED}; over-long records follow the L{LongLines} policy exactly as
with L{LineFramer}.  The protocol feeds a framer whatever the transport
delivered, so splitting happens once per chunk rather than once per line.

One module a framing:

    - L{logger_service.framing.lines}: L{LineFramer}, LF-terminated lines,
      the engine the others build on;
    - L{logger_service.framing.lf}: C{lf}, the default (L{SyslogLineFramer});
    - L{logger_service.framing.nul}: C{nul} (L{NulFramer});
    - L{logger_service.framing.octet}: C{octet}, RFC 6587 octet counting
      (L{OctetFramer});
    - L{logger_service.framing.auto}: C{auto}, chosen by the first byte
      (L{AutoFramer});

and L{logger_service.framing.common}: what they share (the flags,
L{Line}, L{LongLines}).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Protocol

from .auto import AutoFramer
from .common import PARTIAL, SPLIT, TRUNCATED, Line, LongLines, lineFlags
from .lf import SyslogLineFramer
from .lines import LineFramer
from .nul import NulFramer
from .octet import OctetFramer

__all__ = [
    "FRAMERS",
    "PARTIAL",
    "SPLIT",
    "TRUNCATED",
    "AutoFramer",
    "Framer",
    "Line",
    "LineFramer",
    "LongLines",
    "NulFramer",
    "OctetFramer",
    "SyslogLineFramer",
    "lineFlags",
]


class Framer(Protocol):
    """
    What the protocol needs of a framer: L{LineFramer}'s interface, which
    every framing has.
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

    @property
    def framingErrors(self) -> int:
        """1 once the stream broke an octet-counted framing, else 0."""

    def feed(self, data: bytes) -> List[bytes]:
        """Add C{data} to the stream; return the records it completed."""

    def finish(self) -> List[bytes]:
        """End the stream; return what is left, flagged partial."""


FRAMERS: Dict[str, Callable[[int, LongLines], Framer]] = {
    "lf": SyslogLineFramer,
    "nul": NulFramer,
    "octet": OctetFramer,
    "auto": AutoFramer,
}
"""The framers by their C{--framing} name; C{lf} is the default."""
