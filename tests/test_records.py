"""
Tests for L{logger_service.records}: escaping, timestamps, peers, and the
text and JSON record formats.
"""

from __future__ import annotations

import base64
import calendar
import codecs
import json
import re
import sys
import time
import unicodedata
from fractions import Fraction
from typing import List

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress
from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import PARTIAL, SPLIT, TRUNCATED, Line
from logger_service.records import (
    FORMATTERS,
    Formatter,
    RecordContext,
    TimestampCache,
    escapePayload,
    formatJSON,
    formatPeer,
    formatText,
    formatTime,
    jsonRecord,
)

PROPERTY = settings(max_examples=300, deadline=None)

# 2026-11-27T13:19:11Z
T = calendar.timegm((2026, 11, 27, 13, 19, 11))
STAMP = "2026-11-27T13:19:11.123456Z"
CONTEXT = RecordContext("10.0.0.1:4000", 7)

# Byte strings that mix valid UTF-8 (including C1 controls and astral
# characters), ASCII controls, backslashes and invalid sequences.
_FRAGMENTS = st.one_of(
    st.binary(max_size=8),
    st.text(max_size=8).map(lambda s: s.encode("utf-8")),
    st.sampled_from(
        [b"\\", b"\\x41", b"\x1b[31m", b"\r\n", b"\x7f", b"\xc2\x85", b"\xc2\x9f", b"\xc2\xa0", b"\xed\xa0\x80"]
        + [b"\xe2\x82", b"\xf0\x9f\x98", b"\xc0\xaf", b"\xff", b"\x80", b"\xf4\x90\x80\x80", b"\xe2\x80\xa8"]
    ),
)
PAYLOADS = st.lists(_FRAGMENTS, max_size=8).map(b"".join)

_ESCAPED = re.compile(r"(?:[^\\]|\\\\|\\x[0-9a-f]{2})*")
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")


def isControl(char: str) -> bool:
    """
    Whether C{char} is a C0 control, DEL or a C1 control.
    """
    return unicodedata.category(char) == "Cc"


def parseStamp(stamp: str) -> int:
    """
    Return the time C{stamp} names, in whole microseconds since the epoch.
    """
    tm = time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(tm) * 1_000_000 + int(stamp[20:26])


class EscapePayloadTests(SynchronousTestCase):
    """
    L{escapePayload} writes a line as safe, reversible text.
    """

    def assertRoundTrips(self, line: bytes) -> None:
        """
        Assert that the escaped C{line} decodes back to it.
        """
        self.assertEqual(codecs.escape_decode(escapePayload(line).encode("utf-8"))[0], line)

    def test_plainASCII(self) -> None:
        """
        Printable ASCII stays as it is.
        """
        self.assertEqual(escapePayload(b"hello, world ~!"), "hello, world ~!")
        self.assertEqual(escapePayload(b""), "")

    def test_backslash(self) -> None:
        """
        A backslash is doubled, so text that looks like an escape is not one.
        """
        self.assertEqual(escapePayload(b"a\\b"), "a\\\\b")
        self.assertEqual(escapePayload(b"\\x41"), "\\\\x41")
        self.assertRoundTrips(b"\\x41\\")

    def test_controls(self) -> None:
        """
        Bytes below 0x20 and DEL are written as lowercase C{\\xNN}.
        """
        self.assertEqual(escapePayload(b"a\rb\nc\td\x00\x1b[1m\x7f\x1f"), "a\\x0db\\x0ac\\x09d\\x00\\x1b[1m\\x7f\\x1f")

    def test_c1Controls(self) -> None:
        """
        C1 controls (U+0080 to U+009F) are written as the C{\\xNN} escapes of
        their UTF-8 bytes; U+00A0 just above them stays literal.
        """
        self.assertEqual(escapePayload("\x80\x85\x9b\x9f".encode()), "\\xc2\\x80\\xc2\\x85\\xc2\\x9b\\xc2\\x9f")
        self.assertEqual(escapePayload("\xa0".encode()), "\xa0")
        self.assertRoundTrips("x\x9by".encode())

    def test_validUTF8Literal(self) -> None:
        """
        Valid UTF-8 that is not a control or a line separator is kept as
        literal characters.
        """
        text = "caf\xe9 \u20ac \U0001f600 \u0416"
        self.assertEqual(escapePayload(text.encode("utf-8")), text)

    def test_lineSeparators(self) -> None:
        """
        U+2028 and U+2029, which C{str.splitlines} and some viewers treat
        as line breaks, are escaped like controls, so a record stays one
        line for every reader.
        """
        self.assertEqual(escapePayload("a\u2028b\u2029".encode()), "a\\xe2\\x80\\xa8b\\xe2\\x80\\xa9")
        self.assertEqual(len(formatText("T", RecordContext("p", 1), ["x\u2028y".encode()]).decode().splitlines()), 1)

    def test_invalidUTF8(self) -> None:
        """
        Every byte that is not part of valid UTF-8 is written C{\\xNN}:
        stray bytes, truncated and overlong sequences, encoded surrogates,
        and code points above U+10FFFF.
        """
        self.assertEqual(escapePayload(b"\xff\xfe"), "\\xff\\xfe")
        self.assertEqual(escapePayload(b"a\x80b"), "a\\x80b")
        self.assertEqual(escapePayload(b"\xe2\x82"), "\\xe2\\x82")
        self.assertEqual(escapePayload(b"\xe2\x82x\xe2\x82\xac"), "\\xe2\\x82x\u20ac")
        self.assertEqual(escapePayload(b"\xc0\xaf"), "\\xc0\\xaf")
        self.assertEqual(escapePayload(b"\xed\xa0\x80"), "\\xed\\xa0\\x80")
        self.assertEqual(escapePayload(b"\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80")
        for line in (b"\xff\xfe", b"a\x80b", b"\xe2\x82x", b"\xc0\xaf", b"\xed\xa0\x80", b"\\\xff"):
            self.assertRoundTrips(line)

    def test_backslashBeforeInvalidByte(self) -> None:
        """
        A real backslash next to an escaped byte stays distinguishable.
        """
        self.assertEqual(escapePayload(b"\\\xff"), "\\\\\\xff")
        self.assertRoundTrips(b"\\\xff\\")

    @PROPERTY
    @given(PAYLOADS)
    def test_roundTrip(self, line: bytes) -> None:
        """
        C{codecs.escape_decode} of the escaped text gives back the exact
        bytes, for any bytes.
        """
        self.assertRoundTrips(line)

    @PROPERTY
    @given(PAYLOADS)
    def test_noControls(self, line: bytes) -> None:
        """
        The escaped text never holds a control character (C0, DEL, C1; so no
        LF, CR or ESC), is valid Unicode, and uses only C{\\\\} and lowercase
        C{\\xNN} escapes.
        """
        escaped = escapePayload(line)
        for char in escaped:
            self.assertFalse(isControl(char), (line, escaped))
        self.assertNotIn("\n", escaped)
        self.assertNotIn("\r", escaped)
        self.assertNotIn("\x1b", escaped)
        escaped.encode("utf-8")
        self.assertIsNotNone(_ESCAPED.fullmatch(escaped), escaped)

    @PROPERTY
    @given(st.text(st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="\\")))
    def test_safeTextUnchanged(self, text: str) -> None:
        """
        Text without controls or backslashes is written as it is.
        """
        self.assertEqual(escapePayload(text.encode("utf-8")), text)


class FormatTimeTests(SynchronousTestCase):
    """
    L{formatTime} and L{TimestampCache} give UTC RFC 3339 times with six
    fraction digits and C{Z}, rounded to the nearest microsecond.
    """

    def test_example(self) -> None:
        """
        A time near the present is formatted in UTC to the microsecond.
        """
        self.assertEqual(formatTime(T + 0.123456), STAMP)
        self.assertEqual(formatTime(T), "2026-11-27T13:19:11.000000Z")
        self.assertEqual(formatTime(T + 0.5), "2026-11-27T13:19:11.500000Z")

    def test_epoch(self) -> None:
        """
        The epoch is 1970-01-01T00:00:00.000000Z.
        """
        self.assertEqual(formatTime(0), "1970-01-01T00:00:00.000000Z")
        self.assertEqual(formatTime(0.25), "1970-01-01T00:00:00.250000Z")

    def test_subMicrosecondRoundsToNearest(self) -> None:
        """
        A fraction of a microsecond is rounded to the nearest microsecond
        (values chosen to be exact binary fractions).
        """
        self.assertEqual(formatTime(1 + 2**-22), "1970-01-01T00:00:01.000000Z")  # +0.238us
        self.assertEqual(formatTime(1 + 3 * 2**-22), "1970-01-01T00:00:01.000001Z")  # +0.715us
        self.assertEqual(TimestampCache()(1 + 3 * 2**-22), "1970-01-01T00:00:01.000001Z")

    def test_roundingCarriesIntoSeconds(self) -> None:
        """
        Rounding up the last microsecond of a second gives the next second,
        never a seven-digit fraction.
        """
        self.assertEqual(formatTime(2 - 2**-22), "1970-01-01T00:00:02.000000Z")
        self.assertEqual(formatTime(T + 0.9999996), "2026-11-27T13:19:12.000000Z")
        cache = TimestampCache()
        self.assertEqual(cache(T + 0.5), "2026-11-27T13:19:11.500000Z")
        self.assertEqual(cache(T + 0.9999996), "2026-11-27T13:19:12.000000Z")

    @PROPERTY
    @given(st.integers(min_value=0, max_value=2**32 - 1), st.integers(min_value=0, max_value=999_999))
    def test_decimalMicroseconds(self, seconds: int, micros: int) -> None:
        """
        A time written with microseconds comes back with those microseconds,
        despite the noise of its float, for any second before 2106 (from
        2**32 seconds on, a float is too coarse to hold microseconds).
        """
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{micros:06d}Z"
        self.assertEqual(formatTime(seconds + micros / 1_000_000), expected)

    @PROPERTY
    @given(st.floats(min_value=0, max_value=2**32, allow_nan=False, allow_infinity=False))
    def test_shapeAndValue(self, when: float) -> None:
        """
        The text always has the RFC 3339 shape with six fraction digits and
        names a time less than a microsecond away.
        """
        stamp = formatTime(when)
        self.assertIsNotNone(_STAMP.fullmatch(stamp), stamp)
        self.assertLess(abs(parseStamp(stamp) - Fraction(when) * 1_000_000), 1)

    @PROPERTY
    @given(st.lists(st.floats(min_value=0, max_value=2**32, allow_nan=False, allow_infinity=False), max_size=20))
    def test_cacheAgrees(self, times: List[float]) -> None:
        """
        One L{TimestampCache} gives what L{formatTime} gives for any sequence
        of times, backwards and within one second included.
        """
        base = T + 0.5
        cache = TimestampCache()
        for when in [*times, base, base + 0.25, base - 0.75, base, 0.0, base]:
            self.assertEqual(cache(when), formatTime(when))

    def test_cacheSameSecond(self) -> None:
        """
        Times within one second share the date and time of day; a new second
        changes it.
        """
        cache = TimestampCache()
        self.assertEqual(cache(T + 0.000001), "2026-11-27T13:19:11.000001Z")
        self.assertEqual(cache(T + 0.75), "2026-11-27T13:19:11.750000Z")
        self.assertEqual(cache(T + 1.25), "2026-11-27T13:19:12.250000Z")
        self.assertEqual(cache(T - 3600), "2026-11-27T12:19:11.000000Z")


class FormatPeerTests(SynchronousTestCase):
    """
    L{formatPeer} describes a peer in one word.
    """

    def test_ipv4(self) -> None:
        """
        IPv4 peers are C{host:port}.
        """
        self.assertEqual(formatPeer(IPv4Address("TCP", "10.0.0.1", 4000)), "10.0.0.1:4000")

    def test_ipv6(self) -> None:
        """
        IPv6 peers are C{[host]:port}.
        """
        self.assertEqual(formatPeer(IPv6Address("TCP", "::1", 4000)), "[::1]:4000")
        self.assertEqual(formatPeer(IPv6Address("TCP", "2001:db8::5", 22)), "[2001:db8::5]:22")

    def test_unix(self) -> None:
        """
        UNIX peers are C{unix:PATH#CONN}, the path given as bytes or text.
        """
        self.assertEqual(formatPeer(UNIXAddress(b"/run/ll.sock"), 12), "unix:/run/ll.sock#12")
        self.assertEqual(formatPeer(UNIXAddress("/run/ll.sock"), 3), "unix:/run/ll.sock#3")

    def test_unixUnnamed(self) -> None:
        """
        An unnamed UNIX peer is C{unix:?#CONN}.
        """
        self.assertEqual(formatPeer(UNIXAddress(None), 4), "unix:?#4")
        self.assertEqual(formatPeer(UNIXAddress(b""), 5), "unix:?#5")

    def test_unixPathEscaped(self) -> None:
        """
        A UNIX path with spaces, controls or invalid UTF-8 is escaped like a
        payload, spaces as C{\\x20}, so the peer stays one word and reversible.
        """
        peer = formatPeer(UNIXAddress(b"/tmp/a b\n\x1b\xff\\"), 9)
        self.assertEqual(peer, "unix:/tmp/a\\x20b\\x0a\\x1b\\xff\\\\#9")
        self.assertEqual(peer.split(), [peer])
        path = peer[len("unix:") : peer.rindex("#")]
        self.assertEqual(codecs.escape_decode(path.encode())[0], b"/tmp/a b\n\x1b\xff\\")

    def test_otherAddress(self) -> None:
        """
        Any other address is described by its escaped text, in one word.
        """
        peer = formatPeer("some thing\n\x1b")
        self.assertEqual(peer, "some\\x20thing\\x0a\\x1b")


class FormatTextTests(SynchronousTestCase):
    """
    L{formatText} writes C{TIME SP PEER SP PAYLOAD LF} per line.
    """

    def test_records(self) -> None:
        """
        Each line becomes one record with the time and peer.
        """
        self.assertEqual(
            formatText(STAMP, CONTEXT, [b"hello", b"", b"bye now"]),
            f"{STAMP} 10.0.0.1:4000 hello\n{STAMP} 10.0.0.1:4000 \n{STAMP} 10.0.0.1:4000 bye now\n".encode(),
        )

    def test_nothing(self) -> None:
        """
        No lines give no bytes.
        """
        self.assertEqual(formatText(STAMP, CONTEXT, []), b"")

    def test_escaped(self) -> None:
        """
        Payloads are escaped with L{escapePayload} and written as UTF-8.
        """
        self.assertEqual(
            formatText(STAMP, CONTEXT, [b"a\rb\x1b\\ \xc3\xa9\xff"]),
            f"{STAMP} 10.0.0.1:4000 a\\x0db\\x1b\\\\ \xe9\\xff\n".encode(),
        )

    def test_flagsNotShown(self) -> None:
        """
        Flagged lines are written just like plain ones.
        """
        flagged = [Line(b"abc", PARTIAL | SPLIT), Line(b"d\xff", TRUNCATED)]
        self.assertEqual(formatText(STAMP, CONTEXT, flagged), formatText(STAMP, CONTEXT, [b"abc", b"d\xff"]))

    def test_formatters(self) -> None:
        """
        The formats are registered by name.
        """
        self.assertIs(FORMATTERS["text"], formatText)
        self.assertIs(FORMATTERS["json"], formatJSON)

    @PROPERTY
    @given(st.lists(PAYLOADS, max_size=6))
    def test_oneRecordLinePerLine(self, lines: List[bytes]) -> None:
        """
        Every line gives exactly one record line, with the prefix and the
        escaped payload, from which the exact bytes come back; the output
        holds no control character other than the record terminators.
        """
        out = formatText(STAMP, CONTEXT, lines)
        self.assertEqual(out.count(b"\n"), len(lines))
        self.assertTrue(out.endswith(b"\n") or not lines)
        prefix = f"{STAMP} {CONTEXT.peer} ".encode()
        recordLines = out.split(b"\n")[:-1] if lines else []
        self.assertEqual(len(recordLines), len(lines))
        for record, line in zip(recordLines, lines):
            self.assertTrue(record.startswith(prefix), record)
            payload = record[len(prefix) :]
            self.assertEqual(payload.decode("utf-8"), escapePayload(line))
            self.assertEqual(codecs.escape_decode(payload)[0], line)
            for char in payload.decode("utf-8"):
                self.assertFalse(isControl(char))


def rawControls(text: str) -> List[str]:
    """
    The control characters (C0, DEL, C1) in C{text}, other than LF.
    """
    return [c for c in text if isControl(c) and c != "\n"]


class FormatJSONTests(SynchronousTestCase):
    """
    L{formatJSON} writes one JSON object per line.
    """

    def loads(self, out: bytes) -> List[dict]:
        """
        Parse the records in C{out}, checking that each is one line.
        """
        self.assertTrue(out.endswith(b"\n"))
        return [json.loads(record) for record in out[:-1].split(b"\n")]

    def test_fields(self) -> None:
        """
        A plain valid line has exactly time, peer, conn and line.
        """
        [record] = self.loads(formatJSON(STAMP, CONTEXT, [b"hello"]))
        self.assertEqual(record, {"time": STAMP, "peer": "10.0.0.1:4000", "conn": 7, "line": "hello"})

    def test_compactOneLinePerRecord(self) -> None:
        """
        Several lines give that many records, one per output line.
        """
        out = formatJSON(STAMP, CONTEXT, [b"a", b"", b"c"])
        self.assertEqual(out.count(b"\n"), 3)
        self.assertEqual([r["line"] for r in self.loads(out)], ["a", "", "c"])

    def test_nothing(self) -> None:
        """
        No lines give no bytes.
        """
        self.assertEqual(formatJSON(STAMP, CONTEXT, []), b"")

    def test_extra(self) -> None:
        """
        Extra fields of the context are added to every record.
        """
        context = RecordContext("[::1]:5", 3, {"nick": "bob", "room": "#lobby"})
        records = self.loads(formatJSON(STAMP, context, [b"x", b"y"]))
        for record, line in zip(records, ["x", "y"]):
            self.assertEqual(
                record, {"time": STAMP, "peer": "[::1]:5", "conn": 3, "nick": "bob", "room": "#lobby", "line": line}
            )

    def test_unicodeLiteral(self) -> None:
        """
        Valid UTF-8 is written as UTF-8, not as C{\\u} escapes.
        """
        out = formatJSON(STAMP, CONTEXT, ["caf\xe9 \u20ac".encode()])
        self.assertIn("caf\xe9 \u20ac".encode(), out)
        self.assertEqual(self.loads(out)[0]["line"], "caf\xe9 \u20ac")

    def test_invalidUTF8(self) -> None:
        """
        Invalid UTF-8 is replaced by U+FFFD in C{line}, and C{line_b64} holds
        the exact bytes.
        """
        [record] = self.loads(formatJSON(STAMP, CONTEXT, [b"ok\xffthen\xe2\x82"]))
        self.assertEqual(record["line"], "ok\ufffdthen\ufffd")
        self.assertEqual(base64.b64decode(record["line_b64"]), b"ok\xffthen\xe2\x82")

    def test_noB64ForValid(self) -> None:
        """
        Valid UTF-8, controls included, has no C{line_b64}.
        """
        [record] = self.loads(formatJSON(STAMP, CONTEXT, [b"\x1b[31m\r\x7f\xc2\x85"]))
        self.assertNotIn("line_b64", record)
        self.assertEqual(record["line"], "\x1b[31m\r\x7f\x85")

    def test_controlsEscaped(self) -> None:
        """
        Controls, DEL and C1 controls, in the line, the peer or extra fields,
        are written as C{\\u} escapes, never raw.
        """
        context = RecordContext("odd\x7fpeer", 1, {"nick": "\x1b]0;x\x07\x9b"})
        out = formatJSON(STAMP, context, [b"\x00\x1b[2J\r\t\x7f\xc2\x85\xc2\x9b"])
        self.assertEqual(rawControls(out.decode("utf-8")), [])
        self.assertIn(b"\\u001b[2J", out)
        self.assertIn(b"\\u007f", out)
        self.assertIn(b"\\u0085", out)
        [record] = self.loads(out)
        self.assertEqual(record["line"], "\x00\x1b[2J\r\t\x7f\x85\x9b")
        self.assertEqual(record["peer"], "odd\x7fpeer")
        self.assertEqual(record["nick"], "\x1b]0;x\x07\x9b")

    def test_flags(self) -> None:
        """
        Each set flag appears as a true field; unset flags are absent.
        """
        names = {PARTIAL: "partial", SPLIT: "split", TRUNCATED: "truncated"}
        for flags in range(8):
            [record] = self.loads(formatJSON(STAMP, CONTEXT, [Line(b"z", flags)]))
            expected = {name for bit, name in names.items() if flags & bit}
            self.assertEqual(set(record) - {"time", "peer", "conn", "line"}, expected, flags)
            for name in expected:
                self.assertIs(record[name], True)

    def test_jsonRecord(self) -> None:
        """
        L{jsonRecord} gives the record as a dict.
        """
        self.assertEqual(
            jsonRecord(STAMP, CONTEXT, Line(b"\xff", PARTIAL)),
            {"time": STAMP, "peer": "10.0.0.1:4000", "conn": 7, "line": "\ufffd", "line_b64": "/w==", "partial": True},
        )

    @PROPERTY
    @given(st.lists(st.tuples(PAYLOADS, st.integers(min_value=0, max_value=7)), max_size=6))
    def test_exactBytes(self, lines: List[tuple]) -> None:
        """
        For any lines: each is one record line that parses; C{line} is the
        bytes decoded with errors='replace'; C{line_b64}, present exactly when
        the bytes are not valid UTF-8, decodes to the exact bytes; the output
        holds no raw control, DEL or C1 character.
        """
        batch = [Line(payload, flags) if flags else payload for payload, flags in lines]
        out = formatJSON(STAMP, CONTEXT, batch)
        self.assertEqual(rawControls(out.decode("utf-8")), [])
        self.assertEqual(out.count(b"\n"), len(batch))
        records = self.loads(out) if batch else []
        self.assertEqual(len(records), len(batch))
        for record, (payload, flags) in zip(records, lines):
            self.assertEqual(record["line"], payload.decode("utf-8", "replace"))
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                self.assertEqual(base64.b64decode(record["line_b64"], validate=True), payload)
            else:
                self.assertNotIn("line_b64", record)
            self.assertEqual(record.get("partial", False), bool(flags & PARTIAL))
            self.assertEqual(record.get("split", False), bool(flags & SPLIT))
            self.assertEqual(record.get("truncated", False), bool(flags & TRUNCATED))
            self.assertEqual((record["time"], record["peer"], record["conn"]), (STAMP, CONTEXT.peer, CONTEXT.conn))


# The record format as one line at a time would write it, character by
# character: the reference the whole-batch paths must match byte for byte.
_REFERENCE_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)}
_REFERENCE_ESCAPES.update(
    {c: "".join(f"\\x{b:02x}" for b in chr(c).encode("utf-8")) for c in (*range(0x80, 0xA0), 0x2028, 0x2029)}
)
_REFERENCE_JSON = {c: f"\\u{c:04x}" for c in (0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)}


def referenceText(context: RecordContext, lines: List[bytes]) -> bytes:
    """
    Text records, one line at a time: C{\\\\} for a backslash, C{\\xNN} for
    each byte of invalid UTF-8 and of each character escaped.
    """
    out = []
    for line in lines:
        payload = line.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace").translate(_REFERENCE_ESCAPES)
        out.append(f"{STAMP} {context.peer} {payload}\n")
    return "".join(out).encode("utf-8")


def referenceJSON(context: RecordContext, lines: List[bytes]) -> bytes:
    """
    JSON records, one line at a time, through C{json.dumps}.
    """
    out = [json.dumps(jsonRecord(STAMP, context, line), ensure_ascii=False, separators=(",", ":")) for line in lines]
    return "".join(record.translate(_REFERENCE_JSON) + "\n" for record in out).encode("utf-8")


# Lines as they come: mostly clean text (ASCII, CJK, accented Latin, a BOM),
# with now and then something to escape.
_TEXTS = st.sampled_from(
    ["plain ascii ", "日志记录服务，", "Zoë's café façade ", "\ufeff<13>1 ", "“引号”—", "£1·½ ", "\U0001f600"]
).map(lambda s: s.encode("utf-8"))
BATCHES = st.lists(st.lists(st.one_of(_TEXTS, _TEXTS, _FRAGMENTS), max_size=6).map(b"".join), max_size=8)


class WholeBatchTests(SynchronousTestCase):
    """
    Whatever path a batch takes (as it is, escaped as a whole, one line at
    a time), the records are byte for byte those of the line-by-line
    reference.
    """

    @PROPERTY
    @given(BATCHES)
    def test_text(self, lines: List[bytes]) -> None:
        """
        Text records.
        """
        self.assertEqual(formatText(STAMP, CONTEXT, lines), referenceText(CONTEXT, lines))

    @PROPERTY
    @given(BATCHES, st.sampled_from([None, {"nick": "zoë\x7f\u2028"}]))
    def test_json(self, lines: List[bytes], extra: object) -> None:
        """
        JSON records, with extra fields that need escaping too.
        """
        context = RecordContext("10.0.0.1:4000", 7, extra)  # type: ignore[arg-type]
        self.assertEqual(formatJSON(STAMP, context, lines), referenceJSON(context, lines))

    @PROPERTY
    @given(st.lists(st.tuples(PAYLOADS, st.integers(min_value=0, max_value=7)), max_size=6))
    def test_flaggedOrWithLF(self, lines: List[tuple]) -> None:
        """
        Batches with flagged lines or lines holding a LF (as octet framing
        gives) are written as the reference writes them.
        """
        batch = [Line(payload + b"\n", flags) if flags else payload + b"\n" for payload, flags in lines]
        self.assertEqual(formatText(STAMP, CONTEXT, batch), referenceText(CONTEXT, batch))
        self.assertEqual(formatJSON(STAMP, CONTEXT, batch), referenceJSON(CONTEXT, batch))

    def test_examples(self) -> None:
        """
        UTF-8 text, a BOM, and the characters still escaped beside it.
        """
        lines = [
            "日志，“引号”".encode(),
            "\ufeff<13>1 x".encode(),
            b"\xc2\x85\xe2\x80\xa8\xe2\x80\xa9 \xc2\xa0",
            b"\t\xff",
        ]
        self.assertEqual(
            formatText(STAMP, CONTEXT, lines).decode("utf-8").split("\n")[:-1],
            [
                f"{STAMP} 10.0.0.1:4000 日志，“引号”",
                f"{STAMP} 10.0.0.1:4000 \ufeff<13>1 x",
                f"{STAMP} 10.0.0.1:4000 \\xc2\\x85\\xe2\\x80\\xa8\\xe2\\x80\\xa9 \xa0",
                f"{STAMP} 10.0.0.1:4000 \\x09\\xff",
            ],
        )
        records = formatJSON(STAMP, CONTEXT, lines).decode("utf-8").split("\n")[:-1]
        self.assertEqual(
            [r[r.index('"line":') :] for r in records],
            [
                '"line":"日志，“引号”"}',
                '"line":"\ufeff<13>1 x"}',
                '"line":"\\u0085\\u2028\\u2029 \xa0"}',
                '"line":"\\t\ufffd","line_b64":"Cf8="}',
            ],
        )


def cost(format: Formatter, lines: List[bytes]) -> int:
    """
    How many calls, Python functions and C built-ins alike, C{format} makes
    for C{lines}: a count of Python-level steps that, unlike a time, does
    not move with the machine's load.
    """
    calls = 0

    def profile(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        format(STAMP, CONTEXT, lines)
    finally:
        sys.setprofile(None)
    return calls


def sized(text: str, length: int) -> bytes:
    """
    C{text} repeated to C{length} bytes of UTF-8 (whole characters).
    """
    encoded = (text * (length // len(text) + 1)).encode("utf-8")
    return encoded[:length].decode("utf-8", "ignore").encode("utf-8").ljust(length, b".")


class CostTests(SynchronousTestCase):
    """
    UTF-8 text costs what ASCII does, and a line that needs escaping about
    what a clean one does, however long: the work is whole-batch scans in
    C, not steps per line or per character.  Costs are counted in calls
    (see L{cost}), so the bounds hold on a loaded machine too.
    """

    def test_utf8LikeASCII(self) -> None:
        """
        A batch of 2,000 Chinese, accented Latin or BOM-led lines takes no
        more calls than a few per batch beyond a batch of ASCII lines: no
        step per line.
        """
        for format in (formatText, formatJSON):
            ascii = cost(format, [sized("plain ascii text ", 200)] * 2000)
            self.assertLess(ascii, 200, format.__name__)
            for text in ("日志记录服务接受许多客户端的连接，", "Zoë's café façade, naïve résumé ", "\ufeff<13>1 x "):
                utf8 = cost(format, [sized(text, 200)] * 2000)
                self.assertLessEqual(utf8, ascii + 20, (format.__name__, text, utf8, ascii))

    def test_escapingLongLines(self) -> None:
        """
        One control character or invalid byte at the end of a 64 KiB line
        takes a bounded number of calls, far below one per character, and
        no more for a 64 KiB line than for a 64-byte one.  (Per-character
        work inside one C call is not seen here: the benchmarks time it.)
        """
        for format in (formatText, formatJSON):
            for text in ("plain ascii text ", "日志记录服务接受许多客户端的连接，"):
                for bad in (b"\x01", b"\t", b"\\", b'"', b"\xff", b"\xc2\x85"):
                    short = cost(format, [sized(text, 61) + bad])
                    long = cost(format, [sized(text, 65533) + bad])
                    self.assertLess(long, 200, (format.__name__, text, bad, long))
                    self.assertLessEqual(long, short + 10, (format.__name__, text, bad, long, short))
