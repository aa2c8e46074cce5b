"""
Record formatting: pure functions from received lines to output bytes.

Nothing here does I/O or reads a clock; callers pass the time and peer in,
once per chunk of lines, so the cost of formatting them is paid once.

Text records are C{TIME SP PEER SP PAYLOAD LF}.  The payload is the line as
UTF-8, except that a backslash is written C{\\\\}, and every byte below 0x20,
0x7f, every byte of a C1 control character (U+0080 to U+009F) or of a line
or paragraph separator (U+2028, U+2029), and every byte that is not part of
valid UTF-8 is written C{\\xNN}.  One received line is
therefore always one record line, no terminal escape sequence reaches a
reader, and C{codecs.escape_decode(payload.encode())[0]} gives back the exact
bytes received.

JSON records are one object per line: C{time}, C{peer}, C{conn}, C{line}
(invalid UTF-8 replaced by U+FFFD), C{line_b64} (the exact bytes, only when
the line is not valid UTF-8) and C{partial}/C{split}/C{truncated} flags.
"""

from __future__ import annotations

import base64
import json
import re
import time as _time
from typing import Any, Callable, Dict, List, Optional, Sequence

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from .framing import PARTIAL, SPLIT, TRUNCATED, lineFlags

# Bytes that need more than a plain ASCII decode: controls, DEL, backslash,
# and anything non-ASCII (which must be checked for valid UTF-8).
_NEEDS_WORK = re.compile(rb"[\x00-\x1f\x7f-\xff\\]")

# After decoding: characters that are written as \xNN of their UTF-8 bytes.
_ESCAPES: Dict[int, str] = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
_ESCAPES.update(
    {c: "".join(f"\\x{b:02x}" for b in chr(c).encode("utf-8")) for c in (*range(0x80, 0xA0), 0x2028, 0x2029)}
)

# In JSON strings, characters json.dumps leaves raw that a terminal acts on.
_JSON_ESCAPES: Dict[int, str] = {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)}


def escapePayload(line: bytes) -> str:
    """
    Return C{line} as safe, reversible text for a text record.

    @param line: the exact bytes received.
    @return: text without controls or newlines, from which
        C{codecs.escape_decode(result.encode())[0] == line}.
    """
    if not _NEEDS_WORK.search(line):
        return line.decode("ascii")
    if b"\\" in line:
        line = line.replace(b"\\", b"\\\\")
    return line.decode("utf-8", "backslashreplace").translate(_ESCAPES)


def formatTime(when: float) -> str:
    """
    Format a POSIX time as UTC RFC 3339 with microseconds and C{Z}.

    The time is rounded to the nearest microsecond (a float near the present
    holds about a quarter of a microsecond of noise).
    """
    return TimestampCache()(when)


def formatPeer(address: object, conn: int = 0) -> str:
    """
    Return a one-word description of a connection's peer.

    C{host:port} for IPv4, C{[host]:port} for IPv6, and C{unix:PATH#CONN} for
    UNIX sockets (whose clients have no name of their own).
    """
    if isinstance(address, IPv6Address):
        return f"[{address.host}]:{address.port}"
    if isinstance(address, IPv4Address):
        return f"{address.host}:{address.port}"
    if isinstance(address, UNIXAddress):
        name = address.name or b""
        raw = name if isinstance(name, bytes) else name.encode("utf-8", "surrogateescape")
        path = escapePayload(raw).replace(" ", "\\x20")
        return f"unix:{path or '?'}#{conn}"
    return escapePayload(str(address).encode("utf-8")).replace(" ", "\\x20")


class RecordContext:
    """
    Where a batch of lines came from: the facts shared by its records.

    @ivar peer: the peer, as formatted by L{formatPeer}.
    @ivar conn: the connection id, unique within the process.
    @ivar extra: more fields for JSON records (e.g. C{nick}, C{room}).
    @ivar host: the peer's IP address, or C{None} (a UNIX socket).
    """

    __slots__ = ("peer", "conn", "extra", "host")

    def __init__(
        self, peer: str, conn: int, extra: Optional[Dict[str, Any]] = None, host: Optional[str] = None
    ) -> None:
        self.peer = peer
        self.conn = conn
        self.extra = extra
        self.host = host


Formatter = Callable[[str, RecordContext, Sequence[bytes]], bytes]
"""
C{formatter(timestamp, context, lines) -> bytes}: the records for C{lines}.
"""


def _checkTable(*alsoBad: int) -> bytes:
    """
    A C{bytes.translate} table mapping the bytes a fast path cannot take
    (controls but LF, DEL, backslash, non-ASCII, and C{alsoBad}) to NUL.
    """
    bad = {*range(0x20), 0x7F, 0x5C, *range(0x80, 0x100), *alsoBad} - {0x0A}
    return bytes(0 if i in bad else 1 for i in range(256))


_TEXT_CHECK = _checkTable()
_JSON_CHECK = _checkTable(ord('"'))


def formatText(timestamp: str, context: RecordContext, lines: Sequence[bytes]) -> bytes:
    """
    Format lines as text records, C{TIME SP PEER SP PAYLOAD LF} each.

    Flags are not shown in text records; the payload is always exact.  A
    batch of lines that need no escaping (the common case) is formatted
    with a few whole-batch operations instead of a loop over its lines.
    """
    if not lines:
        return b""
    prefix = f"{timestamp} {context.peer} ".encode()
    body = b"\n".join(lines)
    if b"\0" not in body.translate(_TEXT_CHECK) and body.count(b"\n") == len(lines) - 1:
        return prefix + body.replace(b"\n", b"\n" + prefix) + b"\n"
    text = prefix.decode("utf-8")
    needsWork = _NEEDS_WORK.search
    out: List[str] = []
    append = out.append
    for line in lines:
        if needsWork(line):
            append(text + escapePayload(line) + "\n")
        else:
            append(text + line.decode("ascii") + "\n")
    return "".join(out).encode("utf-8")


def jsonRecord(timestamp: str, context: RecordContext, line: bytes) -> Dict[str, Any]:
    """
    Return the JSON record of one line as a dict.
    """
    record: Dict[str, Any] = {"time": timestamp, "peer": context.peer, "conn": context.conn}
    if context.extra:
        record.update(context.extra)
    try:
        record["line"] = line.decode("utf-8")
    except UnicodeDecodeError:
        record["line"] = line.decode("utf-8", "replace")
        record["line_b64"] = base64.b64encode(line).decode("ascii")
    flags = lineFlags(line)
    if flags:
        if flags & PARTIAL:
            record["partial"] = True
        if flags & SPLIT:
            record["split"] = True
        if flags & TRUNCATED:
            record["truncated"] = True
    return record


def formatJSON(timestamp: str, context: RecordContext, lines: Sequence[bytes]) -> bytes:
    """
    Format lines as JSON records, one object per line.

    Strings are UTF-8; control characters, DEL, C1 controls and the line
    separators U+2028 and U+2029 are written as C{\\uXXXX} escapes, so a
    record never holds a raw terminal control.  A batch of plain ASCII lines
    without quotes, backslashes or flags takes a whole-batch fast path.
    """
    if not lines:
        return b""
    body = b"\n".join(lines)
    if (
        b"\0" not in body.translate(_JSON_CHECK)
        and body.count(b"\n") == len(lines) - 1
        and set(map(type, lines)) == {bytes}
    ):
        fields = {"time": timestamp, "peer": context.peer, "conn": context.conn}
        if context.extra:
            fields.update(context.extra)
        head = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[:-1].translate(_JSON_ESCAPES)
        prefix = (head + ',"line":"').encode("utf-8")
        return prefix + body.replace(b"\n", b'"}\n' + prefix) + b'"}\n'
    dumps = json.dumps
    out = [dumps(jsonRecord(timestamp, context, line), ensure_ascii=False, separators=(",", ":")) for line in lines]
    out.append("")
    return "\n".join(out).translate(_JSON_ESCAPES).encode("utf-8")


FORMATTERS: Dict[str, Formatter] = {"text": formatText, "json": formatJSON}
"""The record formats, by the name C{--format} takes."""


class TimestampCache:
    """
    Format times with L{formatTime}, reusing the text for the same second.
    """

    def __init__(self) -> None:
        self._second: Optional[int] = None
        self._prefix = ""

    def __call__(self, when: float) -> str:
        """
        Return L{formatTime}C{(when)}.
        """
        micros = round(when * 1_000_000)
        seconds, micros = divmod(micros, 1_000_000)
        if seconds != self._second:
            self._second = seconds
            self._prefix = _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(seconds))
        return f"{self._prefix}.{micros:06d}Z"
