"""
Tests for L{logger_service.telnet}: Telnet commands taken out of a byte
stream and answered.
"""

from __future__ import annotations

from typing import List, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.conch import telnet as conch
from twisted.trial.unittest import SynchronousTestCase

from logger_service.telnet import MAX_SUBNEGOTIATION, TelnetFilter

PROPERTY = settings(max_examples=300, deadline=None)

IAC = conch.IAC
TM = b"\x06"
"""TIMING-MARK (RFC 860), which twisted.conch.telnet does not name."""
NAWS = conch.NAWS


def feedAll(chunks: List[bytes]) -> Tuple[bytes, bytes, TelnetFilter]:
    """
    Feed C{chunks} to a new filter; return the data and answers it gave
    (joined) and the filter.
    """
    telnet = TelnetFilter()
    data, answers = [], []
    for chunk in chunks:
        d, a = telnet.feed(chunk)
        data.append(d)
        answers.append(a)
    return b"".join(data), b"".join(answers), telnet


class TelnetFilterTests(SynchronousTestCase):
    """
    L{TelnetFilter} takes Telnet commands out and answers negotiation.
    """

    def test_plainData(self) -> None:
        """
        Data without IAC passes unchanged, with no answer.
        """
        self.assertEqual(
            TelnetFilter().feed(b"hello\r\nworld \xe4\xb8\xad\r\n"), (b"hello\r\nworld \xe4\xb8\xad\r\n", b"")
        )

    def test_interrupt(self) -> None:
        """
        What telnet sends for Ctrl-C (C{IAC IP IAC DO TIMING-MARK}) is taken
        out, and the timing mark is answered with C{WILL TIMING-MARK}.
        """
        telnet = TelnetFilter()
        self.assertEqual(telnet.feed(IAC + conch.IP + IAC + conch.DO + TM), (b"", IAC + conch.WILL + TM))
        self.assertEqual(telnet.commands, 2)

    def test_commandsAmongData(self) -> None:
        """
        Commands between data leave the data around them as it was.
        """
        data = b"ab" + IAC + conch.BRK + b"cd" + IAC + conch.NOP + IAC + conch.AYT + b"ef\r\n"
        self.assertEqual(TelnetFilter().feed(data), (b"abcdef\r\n", b""))

    def test_optionsRefused(self) -> None:
        """
        Every option asked for is refused: C{WONT} to C{DO}, C{DONT} to
        C{WILL}; C{WONT} and C{DONT} need no answer.
        """
        data = (
            IAC
            + conch.DO
            + conch.ECHO
            + IAC
            + conch.WILL
            + NAWS
            + IAC
            + conch.WONT
            + b"\x18"
            + IAC
            + conch.DONT
            + b"\x01"
        )
        self.assertEqual(TelnetFilter().feed(data), (b"", IAC + conch.WONT + conch.ECHO + IAC + conch.DONT + NAWS))

    def test_escapedIAC(self) -> None:
        """
        C{IAC IAC} is one 0xFF data byte.
        """
        self.assertEqual(TelnetFilter().feed(b"a" + IAC + IAC + b"b"), (b"a\xffb", b""))

    def test_subnegotiation(self) -> None:
        """
        A subnegotiation is taken out whole, even when its payload holds LF
        (a window 10 rows high) or an escaped IAC.
        """
        naws = IAC + conch.SB + NAWS + b"\x00\x50\x00\x0a" + IAC + conch.SE
        self.assertEqual(TelnetFilter().feed(b"x" + naws + b"y\r\n"), (b"xy\r\n", b""))
        wide = IAC + conch.SB + NAWS + b"\x00\xff\xff\x00\x18" + IAC + conch.SE
        self.assertEqual(TelnetFilter().feed(wide + b"z"), (b"z", b""))

    def test_strayFF(self) -> None:
        """
        0xFF before a byte that is no Telnet command (below 0xF0) is kept:
        invalid UTF-8 from a client that is not telnet, shown as U+FFFD.
        """
        self.assertEqual(TelnetFilter().feed(b"hi\xff\r\n"), (b"hi\xff\r\n", b""))
        self.assertEqual(TelnetFilter().feed(b"\xffA"), (b"\xffA", b""))

    def test_split(self) -> None:
        """
        A command cut between chunks waits for its end.
        """
        telnet = TelnetFilter()
        self.assertEqual(telnet.feed(b"a" + IAC), (b"a", b""))
        self.assertEqual(telnet.feed(conch.DO), (b"", b""))
        self.assertEqual(telnet.feed(TM + b"b"), (b"b", IAC + conch.WILL + TM))

    def test_longSubnegotiationIsData(self) -> None:
        """
        Bytes that start like a subnegotiation but go on past
        L{MAX_SUBNEGOTIATION} bytes are data; nothing waits unbounded.
        """
        telnet = TelnetFilter()
        data = IAC + conch.SB + b"x" * MAX_SUBNEGOTIATION
        self.assertEqual(telnet.feed(data[:100]), (b"", b""))
        self.assertEqual(telnet.feed(data[100:]), (data, b""))
        self.assertEqual(telnet.finish(), b"")

    def test_finish(self) -> None:
        """
        At the end of the stream, what was held as the start of a command is
        given back as data.
        """
        telnet = TelnetFilter()
        self.assertEqual(telnet.feed(b"abc" + IAC + conch.WILL), (b"abc", b""))
        self.assertEqual(telnet.finish(), IAC + conch.WILL)
        self.assertEqual(telnet.finish(), b"")


# Pieces of a stream: data without IAC, and Telnet commands.
_DATA = st.binary(max_size=12).map(lambda b: b.replace(b"\xff", b""))
_COMMANDS = st.one_of(
    st.sampled_from([IAC + c for c in (conch.NOP, conch.IP, conch.AYT, conch.BRK, conch.EL, conch.GA, conch.SE)]),
    st.tuples(st.sampled_from([conch.DO, conch.DONT, conch.WILL, conch.WONT]), st.binary(min_size=1, max_size=1)).map(
        lambda t: IAC + t[0] + t[1]
    ),
    st.binary(max_size=8).map(lambda b: IAC + conch.SB + b.replace(b"\xff", b"\xff\xff") + IAC + conch.SE),
)


class TelnetFilterPropertyTests(SynchronousTestCase):
    """
    Whatever the stream and however it is cut.
    """

    @PROPERTY
    @given(st.lists(st.tuples(_DATA, st.one_of(st.none(), _COMMANDS)), max_size=10), st.data())
    def test_anyCut(self, pieces: List[Tuple[bytes, object]], data: st.DataObject) -> None:
        """
        The data around commands comes out exactly, and the same, however
        the stream is cut into chunks.
        """
        stream = b"".join(d + (c if isinstance(c, bytes) else b"") for d, c in pieces)
        expected = b"".join(d for d, _ in pieces)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
        whole = feedAll([stream])
        cut = feedAll(chunks)
        self.assertEqual(whole[0], expected)
        self.assertEqual(cut[0], expected)
        self.assertEqual(cut[1], whole[1])
        self.assertEqual(cut[2].commands, sum(1 for _, c in pieces if c is not None))
        self.assertEqual(cut[2].finish(), b"")

    @PROPERTY
    @given(st.lists(st.binary(max_size=40), max_size=8))
    def test_anyBytes(self, chunks: List[bytes]) -> None:
        """
        Any bytes at all: no error, never more out than in, and nothing held
        beyond L{MAX_SUBNEGOTIATION} bytes.
        """
        telnet = TelnetFilter()
        total = 0
        for chunk in chunks:
            out, _ = telnet.feed(chunk)
            total += len(out)
            self.assertLessEqual(len(telnet._pending), MAX_SUBNEGOTIATION)
        total += len(telnet.finish())
        self.assertLessEqual(total, sum(len(c) for c in chunks))
