"""
Tests for the C module C{logger_service._escape}: its records agree, byte
for byte, with those of L{logger_service.records.textRecords} and
L{logger_service.records.jsonRecords} (the same in Python), for every way
this CPU runs, on every byte pair, on the edges of longer sequences, on
long lines with a few bytes to escape, and on random input.
"""

from __future__ import annotations

import itertools
from typing import Callable, List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from logger_service import records
from logger_service.records import jsonRecords, textRecords

PREFIX = b"2026-12-03T15:00:00.000000Z 127.0.0.1:40000 "
START = b'{"time":"2026-12-03T15:00:00.000000Z","peer":"127.0.0.1:40000","conn":1,"line":"'

Records = Callable[[bytes, bytes], bytes]


def ways() -> List[Tuple[str, Records, Records]]:
    """
    For each way the C module runs here: its name, its text records and its
    JSON records.
    """
    from logger_service import _escape

    def recordsWith(format: str, way: str) -> Records:
        return lambda data, prefix: _escape.recordsWith(data, prefix, format, way)

    return [(way, recordsWith("text", way), recordsWith("json", way)) for way in _escape.WAYS]


EDGES = [
    0x00, 0x08, 0x09, 0x0A, 0x0C, 0x0D, 0x1F, 0x20, 0x22, 0x41, 0x5C, 0x7F,
    0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xA8, 0xA9, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
    0xE0, 0xE2, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF,
]  # fmt: skip


class EscapeTests(SynchronousTestCase):
    """
    The C records and the Python ones.
    """

    def assertAgree(self, data: bytes) -> None:
        text, json = textRecords(data, PREFIX), jsonRecords(data, START)
        for way, cText, cJSON in ways():
            self.assertEqual(cText(data, PREFIX), text, (way, data))
            self.assertEqual(cJSON(data, START), json, (way, data))

    def test_built(self) -> None:
        """
        The C module was built, and the formats use it.
        """
        from logger_service import _escape

        self.assertTrue(records.ESCAPE_BUILT, "logger_service._escape was not built: is there a C compiler?")
        self.assertIn("bytewise", _escape.WAYS)
        self.assertRaises(ValueError, _escape.recordsWith, b"", b"", "text", "no such way")
        self.assertRaises(ValueError, _escape.recordsWith, b"", b"", "xml", "bytewise")

    def test_examples(self) -> None:
        """
        A few records written out.
        """
        data = b'a\tb\\c\n\xff\xfe\nZo\xc3\xab \xc2\x85\nsay "hi"'
        self.assertEqual(
            textRecords(data, b"P "),
            b'P a\\x09b\\\\c\nP \\xff\\xfe\nP Zo\xc3\xab \\xc2\\x85\nP say "hi"\n',
        )
        self.assertEqual(
            jsonRecords(b"a\tb\\c\n\xffok\n\xc2\x85", b'{"line":"'),
            b'{"line":"a\\tb\\\\c"}\n{"line":"\xef\xbf\xbdok","line_b64":"/29r"}\n{"line":"\\u0085"}\n',
        )
        self.assertAgree(data)

    def test_everyPair(self) -> None:
        """
        Every sequence of one or two bytes, alone and between lines.
        """
        for first, second in itertools.product(range(256), repeat=2):
            self.assertAgree(bytes((first, second)))
        for byte in range(256):
            self.assertAgree(b"x" * 15 + bytes((byte,)) + b"\ny" * 9)

    def test_edgesOfLongerSequences(self) -> None:
        """
        Sequences of three and four bytes made of the bytes on UTF-8's
        edges, at the start of a 16-byte block and across its end.
        """
        leads = [b for b in EDGES if b >= 0xC0]
        for sequence in itertools.product(leads, EDGES, EDGES):
            for pad in (0, 14):
                self.assertAgree(b"p" * pad + bytes(sequence) + b"q" * 20)
        conts = [b for b in EDGES if 0x80 <= b < 0xC0] + [0x41]
        for longer in itertools.product([0xE0, 0xED, 0xF0, 0xF4], conts, conts, conts):
            self.assertAgree(b"r" * 13 + bytes(longer) + b"s" * 20)

    def test_longLines(self) -> None:
        """
        Long lines of text, ASCII or not, with a byte to escape or invalid
        UTF-8 at their start, middle or end; lines of only bytes to escape.
        """
        for text in ("plain ascii text ", "日志记录服务接受许多客户端的连接，", "Zoë's café façade, naïve résumé "):
            line = (text * 200).encode()[:3000]
            for bad in (b"\x01", b"\\", b'"', b"\xff", b"\xc2\x85", b"\xe2\x80\xa8", b"\xe4\xb8"):
                for where in (0, 1500, len(line)):
                    self.assertAgree(b"\n".join([line[:where] + bad + line[where:]] * 3))
        self.assertAgree(b"\xff\n" * 5000)
        self.assertAgree(b"\x01" * 5000)
        self.assertAgree(b"\n" * 100)

    @settings(max_examples=2000, deadline=None)
    @given(
        st.lists(
            st.one_of(
                st.text(min_size=1, max_size=20).map(lambda text: text.encode("utf-8", "surrogatepass")),
                st.binary(min_size=1, max_size=3),
                st.sampled_from([b"\n", b"\\", b'"', b"\t", b"\xc2\x85", b"\xe2\x80\xa9", b"\xed\xa0\x80"]),
            ),
            max_size=40,
        )
    )
    def test_agreeOnRandomInput(self, pieces: List[bytes]) -> None:
        """
        Random mixtures of text, bytes and what the formats escape.
        """
        self.assertAgree(b"".join(pieces))
