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
from binascii import b2a_base64
from itertools import compress, count
from operator import countOf, ne
from typing import Any, Callable, Dict, List, Optional, Sequence

from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

from .framing import PARTIAL, SPLIT, TRUNCATED, lineFlags
from .scan import ESCAPE, INVALID, QUOTE, UNSAFE, scan

# Valid UTF-8 that is still escaped: C1 controls (their first byte is C2),
# and U+2028, U+2029 (E2 80 A8, E2 80 A9).
_C1 = re.compile(rb"\xc2[\x80-\x9f]")
_SEPARATORS = re.compile(rb"\xe2\x80[\xa8\xa9]")

# For each of those characters, a function replacing it in bytes with a
# literal (a regular expression finds a literal of a few bytes much faster
# than bytes.replace does).
_REPLACE_UNSAFE: Dict[bytes, Callable[[bytes, bytes], bytes]] = {
    char: re.compile(re.escape(char)).sub
    for char in (*(bytes((0xC2, b)) for b in range(0x80, 0xA0)), b"\xe2\x80\xa8", b"\xe2\x80\xa9")
}

# The ASCII bytes a text record escapes, but LF (which separates the lines
# of a batch): bytes.translate deletes every other byte.
_ASCII_ESCAPED = bytes([*range(0x0A), *range(0x0B, 0x20), 0x5C, 0x7F])
_ASCII_KEPT = bytes(sorted(set(range(256)) - set(_ASCII_ESCAPED)))

# In JSON strings, characters json.dumps leaves raw that a terminal acts on.
_JSON_ESCAPES: Dict[int, str] = {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)}
_JSON_RAW = re.compile("[\x7f-\x9f\u2028\u2029]")

# The ASCII bytes a JSON string escapes, but LF (which separates the lines
# of a batch), and their escapes.
_JSON_BYTE_ESCAPES: Dict[int, bytes] = {c: b"\\u%04x" % c for c in (*range(0x20), 0x7F)}
_JSON_BYTE_ESCAPES.update({8: b"\\b", 9: b"\\t", 0x0C: b"\\f", 0x0D: b"\\r", 0x22: b'\\"', 0x5C: b"\\\\"})
del _JSON_BYTE_ESCAPES[0x0A]
_JSON_KEPT = bytes(sorted(set(range(256)) - set(_JSON_BYTE_ESCAPES)))

# The replacement templates (backslashes doubled) of the C1 controls and
# line separators, in text and in JSON records.
_TEXT_TEMPLATES = {char: b"".join(b"\\\\x%02x" % b for b in char) for char in _REPLACE_UNSAFE}
_JSON_TEMPLATES = {char: b"\\\\u%04x" % ord(char.decode("utf-8")) for char in _REPLACE_UNSAFE}


def _unsafeUTF8(data: bytes) -> List[bytes]:
    """
    The distinct C1 controls and line separators in C{data}, as UTF-8.

    Each test is a scan in C; the common texts (ASCII, CJK, accented Latin)
    are cleared by a search for a single byte.
    """
    found: List[bytes] = []
    if b"\xc2" in data:
        found.extend(set(_C1.findall(data)))
    if b"\xe2" in data:
        found.extend(set(_SEPARATORS.findall(data)))
    return found


def _escapeBytes(data: bytes) -> str:
    """
    Escape C{data} for a text record, LF bytes left alone.

    The work is a few scans of C{data} in C for each distinct byte or
    character escaped, never a step per character: a long line with one
    bad byte costs about what a clean one does.
    """
    bad = data.translate(None, _ASCII_KEPT)
    if bad:
        # The backslash first, so that the escapes' own are kept.
        if b"\\" in bad:
            data = data.replace(b"\\", b"\\\\")
        for byte in set(bad) - {0x5C}:
            data = data.replace(bytes((byte,)), b"\\x%02x" % byte)
    if data.isascii():
        return data.decode("ascii")
    for char in _unsafeUTF8(data):
        data = _REPLACE_UNSAFE[char](_TEXT_TEMPLATES[char], data)
    # The bytes of invalid UTF-8, one \xNN each.
    return data.decode("utf-8", "backslashreplace")


def _escapeJSONBytes(data: bytes) -> bytes:
    """
    Escape C{data}, LF bytes left alone, as in a JSON string written by
    C{json.dumps(ensure_ascii=False)}, and DEL, C1 controls and the line
    separators as C{\\uXXXX}; bytes of invalid UTF-8 are left as they are.

    The work is a few scans of C{data} in C for each distinct byte or
    character escaped, never a step per character.
    """
    bad = data.translate(None, _JSON_KEPT)
    if bad:
        # The backslash first, so that the escapes' own are kept.
        if b"\\" in bad:
            data = data.replace(b"\\", b"\\\\")
        for byte in set(bad) - {0x5C}:
            data = data.replace(bytes((byte,)), _JSON_BYTE_ESCAPES[byte])
    for char in _unsafeUTF8(data):
        data = _REPLACE_UNSAFE[char](_JSON_TEMPLATES[char], data)
    return data


def textRecords(body: bytes, prefix: bytes) -> bytes:
    """
    The text records of the lines joined by LF in C{body}, each C{prefix}
    (time and peer), L{escapePayload} of the line and LF.

    The C module C{logger_service._escape} does this in one pass when it
    was built (L{ESCAPE_BUILT}); this is the same in Python.
    """
    escaped = _escapeBytes(body).encode("utf-8")
    return prefix + escaped.replace(b"\n", b"\n" + prefix) + b"\n"


def jsonRecords(body: bytes, start: bytes) -> bytes:
    """
    The JSON records of the lines joined by LF in C{body}: each C{start}
    (the record up to its C{line} string's opening quote), the line escaped
    for a JSON string, and C{"}} and LF.  A line that is not valid UTF-8
    gets its invalid stretches replaced by U+FFFD and is followed by
    C{","line_b64":"} and its exact bytes in base64.

    The C module C{logger_service._escape} does this in one pass when it
    was built (L{ESCAPE_BUILT}); this is the same in Python, where only the
    lines with invalid UTF-8 take a step of their own.
    """
    escaped = _escapeJSONBytes(body)
    if not body.isascii():
        replaced = escaped.decode("utf-8", "replace").encode("utf-8")
        if replaced != escaped:
            lines = body.split(b"\n")
            out = replaced.split(b"\n")
            for index in compress(count(), map(ne, out, escaped.split(b"\n"))):
                out[index] = out[index] + b'","line_b64":"' + b2a_base64(lines[index], newline=False)
            escaped = b"\n".join(out)
    return start + escaped.replace(b"\n", b'"}\n' + start) + b'"}\n'


try:
    from ._escape import jsonRecords as jsonRecordsInC
    from ._escape import textRecords as textRecordsInC
except ImportError:  # pragma: no cover - a build without a C compiler
    ESCAPE_BUILT = False
else:
    ESCAPE_BUILT = True


def _jsonRaw(match: re.Match[str]) -> str:
    return _JSON_ESCAPES[ord(match.group())]


def _jsonEscapes(text: str) -> str:
    """
    Escape what C{json.dumps} leaves raw in C{text} and a terminal acts on.
    """
    if text.isascii() and "\x7f" not in text:
        return text
    return _JSON_RAW.sub(_jsonRaw, text)


def _escapeRaw(text: str, body: bytes) -> bytes:
    """
    Escape in C{text}, JSON made of the lines joined in C{body}, what
    C{json.dumps} leaves raw and a terminal acts on, and encode it.

    The characters are found in C{body} by a few scans in C, and each
    distinct one is replaced in one pass.
    """
    for char in _unsafeUTF8(body):
        decoded = char.decode("utf-8")
        text = text.replace(decoded, _JSON_ESCAPES[ord(decoded)])
    if b"\x7f" in body:
        text = text.replace("\x7f", "\\u007f")
    return text.encode("utf-8")


def escapePayload(line: bytes) -> str:
    """
    Return C{line} as safe, reversible text for a text record.

    @param line: the exact bytes received.
    @return: text without controls or newlines, from which
        C{codecs.escape_decode(result.encode())[0] == line}.
    """
    text = _escapeBytes(line)
    return text.replace("\n", "\\x0a") if "\n" in text else text


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


def formatText(timestamp: str, context: RecordContext, lines: Sequence[bytes]) -> bytes:
    """
    Format lines as text records, C{TIME SP PEER SP PAYLOAD LF} each.

    Flags are not shown in text records; the payload is always exact.  A
    batch is formatted with a few whole-batch operations instead of a loop
    over its lines: as it is when it is valid UTF-8 without anything to
    escape (the common case, ASCII or not), else escaped as a whole.
    """
    if not lines:
        return b""
    prefix = f"{timestamp} {context.peer} ".encode()
    body = b"\n".join(lines)
    flags, newlines = scan(body)
    if newlines != len(lines) - 1:
        # A line holds a LF (octet framing): one line at a time.
        text = prefix.decode("utf-8")
        return "".join([text + escapePayload(line) + "\n" for line in lines]).encode("utf-8")
    if not flags & (ESCAPE | INVALID | UNSAFE):
        return prefix + body.replace(b"\n", b"\n" + prefix) + b"\n"
    return textRecordsInC(body, prefix) if ESCAPE_BUILT else textRecords(body, prefix)


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
    separators U+2028 and U+2029 are escaped (C{\\b}, C{\\t}, C{\\n},
    C{\\f}, C{\\r} as JSON writes them, the others as C{\\uXXXX}), so a
    record never holds a raw terminal control.  A batch of unflagged lines
    is formatted with whole-batch operations: as it is when it is valid
    UTF-8 without quotes, backslashes or characters to escape (the common
    case, ASCII or not), else escaped as a whole.
    """
    if not lines:
        return b""
    body = b"\n".join(lines)
    flags, newlines = scan(body)
    fields = {"time": timestamp, "peer": context.peer, "conn": context.conn}
    if context.extra:
        fields.update(context.extra)
    rawHead = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))[:-1]
    if newlines != len(lines) - 1 or countOf(map(type, lines), bytes) != len(lines):
        # A line holds a LF (octet framing) or has flags: one at a time.
        dumps = json.dumps
        out = [dumps(jsonRecord(timestamp, context, line), ensure_ascii=False, separators=(",", ":")) for line in lines]
        out.append("")
        return _escapeRaw("\n".join(out), rawHead.encode("utf-8") + body)
    head = _jsonEscapes(rawHead) + ',"line":'
    prefix = head + '"'
    start = prefix.encode("utf-8")
    if not flags & (ESCAPE | QUOTE | INVALID | UNSAFE):
        return start + body.replace(b"\n", b'"}\n' + start) + b'"}\n'
    return jsonRecordsInC(body, start) if ESCAPE_BUILT else jsonRecords(body, start)


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
