"""
Tests for L{logger_service.scan}: the C scanner, its byte-at-a-time path and
the Python one agree with each other and with the definitions of the flags,
on every byte sequence of up to two bytes, on the edge cases of longer ones,
at every position around the scanner's 16-byte blocks, and on random input.
"""

from __future__ import annotations

import itertools
import platform
from typing import Callable, List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from logger_service import scan as scanmodule
from logger_service.scan import ESCAPE, INVALID, NONASCII, QUOTE, UNSAFE, scanPython

Scanner = Callable[[bytes], Tuple[int, int]]


def definition(data: bytes) -> Tuple[int, int]:
    """
    The flags and the LF count of C{data}, straight from their definitions.
    """
    flags = 0
    if any((byte < 0x20 and byte != 0x0A) or byte in (0x5C, 0x7F) for byte in data):
        flags |= ESCAPE
    if b'"' in data:
        flags |= QUOTE
    if not data.isascii():
        flags |= NONASCII
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            flags |= INVALID
        unsafe = [bytes((0xC2, b)) for b in range(0x80, 0xA0)] + [b"\xe2\x80\xa8", b"\xe2\x80\xa9"]
        if any(char in data for char in unsafe):
            flags |= UNSAFE
    return flags, data.count(b"\n")


def scanners() -> List[Scanner]:
    """
    Every implementation of L{scan} this build has and this CPU runs: the
    C module's ways (a byte at a time; 16 bytes at a time with SSSE3; 32
    with AVX2) and the Python one.
    """
    from logger_service import _scan

    def scanWith(way: str) -> Scanner:
        return lambda data: _scan.scanWith(data, way)

    return [*map(scanWith, _scan.WAYS), scanPython]


# Bytes that sit on the edges of UTF-8's rules, and the bytes the flags name.
EDGES = [
    0x00, 0x09, 0x0A, 0x1F, 0x20, 0x22, 0x41, 0x5C, 0x7E, 0x7F,
    0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xA8, 0xA9, 0xAA, 0xBF,
    0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xE2, 0xEC, 0xED, 0xEE, 0xEF,
    0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF7, 0xF8, 0xFF,
]  # fmt: skip


class ScanTests(SynchronousTestCase):
    """
    L{scan} and its implementations.
    """

    def assertAgree(self, data: bytes) -> None:
        expected = definition(data)
        for scanner in scanners():
            self.assertEqual(scanner(data), expected, (scanner, data))

    def test_built(self) -> None:
        """
        The C scanner was built and is the one L{scan} uses: installing the
        package with a C compiler builds it, as the README's commands do.
        """
        from logger_service import _scan

        self.assertTrue(scanmodule.BUILT, "logger_service._scan was not built: is there a C compiler?")
        self.assertIs(scanmodule.scan, _scan.scan)
        self.assertEqual(_scan.WAYS[0], "bytewise")
        if platform.machine() == "x86_64":
            self.assertIn("ssse3", _scan.WAYS)
        self.assertRaises(ValueError, _scan.scanWith, b"", "no such way")

    def test_empty(self) -> None:
        """
        Nothing holds nothing.
        """
        for scanner in scanners():
            self.assertEqual(scanner(b""), (0, 0))

    def test_flags(self) -> None:
        """
        Each flag is raised by what it names, and only by that.
        """
        cases = {
            b"plain text\nand more": 0,
            b"a\tb": ESCAPE,
            b"a\\b": ESCAPE,
            b"a\x7fb": ESCAPE,
            b"a\x00b": ESCAPE,
            b'say "hi"': QUOTE,
            "caf\xe9 \u4e2d\u6587 \U0001f600".encode(): NONASCII,
            "\ufeffbom".encode(): NONASCII,
            b"\xc3": NONASCII | INVALID,
            b"\xc3(": NONASCII | INVALID,
            b"\xed\xa0\x80": NONASCII | INVALID,
            b"\xf4\x90\x80\x80": NONASCII | INVALID,
            b"\xc0\xaf": NONASCII | INVALID,
            "\x85".encode(): NONASCII | UNSAFE,
            "a\u2028b".encode(): NONASCII | UNSAFE,
            "a\u2029b".encode(): NONASCII | UNSAFE,
            "\xa0\u2027\u202a".encode(): NONASCII,
        }
        for data, flags in cases.items():
            for scanner in scanners():
                self.assertEqual(scanner(data), (flags, data.count(b"\n")), (scanner, data))

    def test_everyPairEveryPosition(self) -> None:
        """
        Every sequence of one or two bytes, at the start of a 16-byte block,
        across the end of one, and at its end.
        """
        for first in range(256):
            for pad in range(17):
                self.assertAgree(b"x" * pad + bytes((first,)))
        for first, second in itertools.product(range(256), repeat=2):
            for pad in (0, 14, 15):
                self.assertAgree(b"x" * pad + bytes((first, second)))

    def test_edgesOfLongerSequences(self) -> None:
        """
        Sequences of three and four bytes made of the bytes on UTF-8's
        edges, across the end of a block at every cut.
        """
        leads = [b for b in EDGES if b >= 0xC0]
        for sequence in itertools.product(leads, EDGES, EDGES):
            for pad in (0, 13, 14, 15):
                self.assertAgree(b"y" * pad + bytes(sequence))
        conts = [b for b in EDGES if 0x80 <= b < 0xC0] + [0x41, 0xC2]
        for longer in itertools.product([0xE0, 0xED, 0xF0, 0xF4, 0xF5], conts, conts, conts):
            for pad in (0, 12, 13, 14, 15):
                self.assertAgree(b"z" * pad + bytes(longer))

    def test_longInput(self) -> None:
        """
        Long input: the LF count is kept across thousands of blocks, and a
        flag raised by the very last byte, or by a character cut short at
        the end, is seen.
        """
        for lines in (4079, 4080, 4081, 20000):
            body = b"abc\n" * lines
            self.assertAgree(body)
            self.assertAgree(body + "\xe9".encode())
            self.assertAgree(body + b"\xc3")
            self.assertAgree(body + b"\x01")
        text = ("Zo\xeb's caf\xe9 fa\xe7ade, na\xefve r\xe9sum\xe9\n" * 5000).encode()
        self.assertAgree(text)
        self.assertAgree(text + b"\xe2\x80\xa8")
        self.assertAgree(text + b"\xe2")
        self.assertAgree(text[:-2])

    def test_bytesLike(self) -> None:
        """
        The C scanner takes any bytes-like object, as C{bytes} methods do.
        """
        from logger_service import _scan

        data = "caf\xe9\n\\".encode()
        self.assertEqual(_scan.scan(memoryview(data)), definition(data))
        self.assertEqual(_scan.scan(bytearray(data)), definition(data))
        self.assertRaises(TypeError, _scan.scan, "text")

    @settings(max_examples=3000, deadline=None)
    @given(
        st.lists(
            st.one_of(
                st.binary(min_size=1, max_size=4),
                st.text(min_size=1, max_size=8).map(lambda text: text.encode("utf-8", "surrogatepass")),
                st.sampled_from([b"\n", b"\\", b'"', b"\xc2\x85", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\xed\xa0\x80"]),
            ),
            max_size=60,
        )
    )
    def test_agreeOnRandomInput(self, pieces: List[bytes]) -> None:
        """
        Random mixtures of text, bytes and the sequences the flags name.
        """
        self.assertAgree(b"".join(pieces))
