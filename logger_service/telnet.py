"""
Telnet commands: taken out of a chat client's byte stream, and answered.

A telnet client sends Telnet commands among what its user types (RFC 854):
pressing Ctrl-C sends C{IAC IP IAC DO TIMING-MARK}, and a client may offer
or ask for options (C{IAC WILL}/C{DO} ...) and send subnegotiations
(C{IAC SB ... IAC SE}).  Relayed as text they are garbage on others'
screens; left unanswered, C{DO TIMING-MARK} makes the telnet client throw
away everything it receives until the answer comes.

L{TelnetFilter} is pure: it takes chunks of bytes and returns the data
without Telnet commands, and the answers to send.  It refuses every option
(C{WONT} to C{DO}, C{DONT} to C{WILL}), but answers C{DO TIMING-MARK} with
C{WILL TIMING-MARK}, which is what that command asks for: a mark of where
the server's output stands.  It never starts a negotiation, so clients such
as C{nc} that never send IAC (0xFF, a byte valid UTF-8 never holds) see no
difference.

It does not use L{twisted.conch.telnet}: that parses every byte one by one
in Python, on every line of every client, and raises on IAC followed by a
byte below 0xF0 (not a command), which any C{nc} client can send.  Here
chunks without IAC pass untouched, and a stray IAC is kept as data.
"""

from __future__ import annotations

from typing import List, Tuple

IAC = 0xFF
DONT = 0xFE
DO = 0xFD
WONT = 0xFC
WILL = 0xFB
SB = 0xFA
SE = 0xF0
TIMING_MARK = 0x06

MAX_SUBNEGOTIATION = 4096
"""
The longest subnegotiation (C{IAC SB} to C{IAC SE}) taken as one.  Real
ones are a few bytes (a window size, a terminal type); bytes that start like
one and go on longer are passed on as data, so nothing waits here unbounded.
"""


class TelnetFilter:
    """
    Takes Telnet commands out of a byte stream, chunk by chunk.

    The result does not depend on how the stream is cut into chunks: a
    command cut in two waits for its end.

    @ivar commands: Telnet commands taken out so far.
    """

    __slots__ = ("_pending", "commands")

    def __init__(self) -> None:
        self._pending = b""
        self.commands = 0

    def feed(self, data: bytes) -> Tuple[bytes, bytes]:
        """
        Take the Telnet commands out of C{data}.

        @return: the data without them (C{IAC IAC}, an escaped 0xFF, is one
            0xFF byte), and the answers to send to the client.
        """
        if self._pending:
            data, self._pending = self._pending + data, b""
        if b"\xff" not in data:
            return data, b""
        out: List[bytes] = []
        answers = bytearray()
        size = len(data)
        position = 0
        while True:
            start = data.find(b"\xff", position)
            if start < 0:
                out.append(data[position:])
                break
            out.append(data[position:start])
            if start + 1 == size:
                self._pending = data[start:]
                break
            command = data[start + 1]
            if command == IAC:
                out.append(b"\xff")
                position = start + 2
            elif command in (WILL, WONT, DO, DONT):
                if start + 2 == size:
                    self._pending = data[start:]
                    break
                option = data[start + 2]
                if command == DO:
                    answers += bytes((IAC, WILL if option == TIMING_MARK else WONT, option))
                elif command == WILL:
                    answers += bytes((IAC, DONT, option))
                self.commands += 1
                position = start + 3
            elif command == SB:
                end = _subnegotiationEnd(data, start + 2)
                if end < 0:
                    if size - start <= MAX_SUBNEGOTIATION:
                        self._pending = data[start:]
                        break
                    # Too long to be one: data after all.
                    out.append(data[start : start + 2])
                    position = start + 2
                else:
                    self.commands += 1
                    position = end
            elif command >= SE:
                # The other commands (NOP, BRK, IP, AO, AYT, EC, EL, GA...).
                self.commands += 1
                position = start + 2
            else:
                # Not a Telnet command: a stray 0xFF, kept as data.
                out.append(b"\xff")
                position = start + 1
        return b"".join(out), bytes(answers)

    def finish(self) -> bytes:
        """
        The stream has ended: what was held as the start of a command that
        never ended, to be taken as data.
        """
        pending, self._pending = self._pending, b""
        return pending


def _subnegotiationEnd(data: bytes, position: int) -> int:
    """
    Where the subnegotiation whose payload starts at C{position} ends (just
    after its C{IAC SE}), or -1 if C{data} does not hold its end.
    """
    while True:
        found = data.find(b"\xff", position)
        if found < 0 or found + 1 == len(data):
            return -1
        if data[found + 1] == SE:
            return found + 2
        position = found + 2
