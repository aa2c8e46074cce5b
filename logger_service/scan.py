"""
What a batch of received bytes holds, found in one pass: the checks that choose a record format's whole-batch path.

L{scan} returns C{(flags, newlines)}: the L{ESCAPE}, L{QUOTE}, L{INVALID},
L{UNSAFE} and L{NONASCII} bits the bytes call for, and how many LF bytes
they hold.  This is pure: no I/O, no state.

The work is done by the C module C{logger_service._scan} when it was built
(installing the package builds it when a C compiler and Python's headers
are there); it reads the bytes once, 32 at a time with AVX2, 16 with
SSSE3 (every x86-64 CPU since about 2008), else one at a time.  Without it,
L{scanPython} makes the same checks with a few scans in C of the standard
library, one of them the UTF-8 decoder, which costs about 1 ns a byte on
text outside ASCII.  L{BUILT} says which one L{scan} is.
"""

from __future__ import annotations

import re
from typing import Callable, Tuple

__all__ = ["BUILT", "ESCAPE", "INVALID", "NONASCII", "QUOTE", "UNSAFE", "scan", "scanPython"]

ESCAPE = 1
"""An ASCII control character but LF, DEL, or a backslash: a text record escapes it."""

QUOTE = 2
"""A double quote: a JSON string escapes it (as it does every L{ESCAPE} byte)."""

INVALID = 4
"""The bytes are not valid UTF-8 (as C{bytes.decode("utf-8")} judges)."""

UNSAFE = 8
"""
The bytes C2 80 to C2 9F (a C1 control) or E2 80 A8, E2 80 A9 (U+2028,
U+2029), which records escape although they are valid UTF-8.
"""

NONASCII = 16
"""A byte above 0x7F."""

# A bytes.translate table taking what L{ESCAPE} flags to NUL, all else to 1.
_ESCAPED = bytes(0 if (byte < 0x20 and byte != 0x0A) or byte in (0x5C, 0x7F) else 1 for byte in range(256))
_UNSAFE = re.compile(rb"\xc2[\x80-\x9f]|\xe2\x80[\xa8\xa9]")


def scanPython(data: bytes) -> Tuple[int, int]:
    """
    L{scan} made of the standard library's scans: the same result, slower.

    @param data: received bytes, LF between lines.
    @return: C{(flags, newlines)}.
    """
    flags = 0
    if b"\0" in data.translate(_ESCAPED):
        flags |= ESCAPE
    if b'"' in data:
        flags |= QUOTE
    if not data.isascii():
        flags |= NONASCII
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            flags |= INVALID
        if (b"\xc2" in data or b"\xe2" in data) and _UNSAFE.search(data):
            flags |= UNSAFE
    return flags, data.count(b"\n")


scan: Callable[[bytes], Tuple[int, int]]
try:
    from ._scan import scan
except ImportError:  # pragma: no cover - a build without a C compiler
    scan = scanPython
    BUILT = False
else:
    BUILT = True
