"""
What every framer shares: the record flags, the long-line policy, and the
cutting of an over-long record into pieces.

This module is pure: it does no I/O.
"""

from __future__ import annotations

import enum
from typing import List

PARTIAL = 1
"""Flag: the line was not terminated; the stream ended first."""

SPLIT = 2
"""Flag: the record is one piece of a line longer than the maximum length."""

TRUNCATED = 4
"""Flag: the record holds the start of a longer line; the rest was dropped."""


class LongLines(enum.Enum):
    """
    What to do with a line longer than the maximum length.
    """

    split = "split"
    """Record it as several records, none longer than the maximum."""

    truncate = "truncate"
    """Record the first bytes, drop the rest of that line, keep reading."""

    close = "close"
    """Record the first bytes, then stop reading: the connection is closed."""


class Line(bytes):
    """
    A line that carries flags (L{PARTIAL}, L{SPLIT}, L{TRUNCATED}).

    Ordinary lines are plain L{bytes}; only the rare flagged line pays for
    the extra attribute.
    """

    flags: int

    def __new__(cls, payload: bytes, flags: int) -> Line:
        self = super().__new__(cls, payload)
        self.flags = flags
        return self

    def __repr__(self) -> str:
        return f"Line({bytes(self)!r}, flags={self.flags})"


def lineFlags(line: bytes) -> int:
    """
    Return the flags of C{line}: 0 for a plain L{bytes} line.
    """
    return line.flags if type(line) is Line else 0


def checkMaxLength(maxLength: int) -> None:
    """
    Refuse a maximum record length under 1 byte.

    @raise ValueError: if C{maxLength} is less than 1.
    """
    if maxLength < 1:
        raise ValueError("maxLength must be at least 1")


def pieces(payload: bytes, maxLength: int, flags: int) -> List[bytes]:
    """
    Cut C{payload} into records of at most C{maxLength} bytes with C{flags}.
    """
    return [Line(payload[i : i + maxLength], flags) for i in range(0, len(payload), maxLength)]
