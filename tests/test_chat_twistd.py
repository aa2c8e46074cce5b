"""
Chat mode end to end: a real C{twistd -n linelogger --chat} and real
sockets on 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import socket
import subprocess
import termios
import threading
import time
from typing import List, Optional

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from .twistd_helpers import LineLogger, parseJSONRecord, recvUntil


class ChatClient:
    """
    A blocking line-oriented chat client.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""
        self.nick = ""

    def send(self, *lines: str) -> None:
        """
        Send lines, each ending with CRLF as telnet does.
        """
        self.sock.sendall("".join(line + "\r\n" for line in lines).encode("utf-8"))

    def readLine(self, timeout: float = 10.0) -> Optional[str]:
        """
        The next line from the server, without its CRLF; C{None} at EOF.
        """
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no line within {timeout}s; have {self.buffer!r}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line.decode("utf-8")

    def expect(self, wanted: str, timeout: float = 10.0) -> List[str]:
        """
        Read lines until C{wanted} arrives; return the lines before it.
        """
        seen: List[str] = []
        while True:
            line = self.readLine(timeout)
            if line is None:
                raise AssertionError(f"connection closed waiting for {wanted!r}; saw {seen!r}")
            if line == wanted:
                return seen
            seen.append(line)


class ChatTestCase(SynchronousTestCase):
    """
    Start a chat server and connect clients that have read their welcome.
    """

    options: List[str] = []

    def setUp(self) -> None:
        self.server = LineLogger(self, "--chat", "--format", "json", *self.options)
        # The start-up probe was a chat client too: once the server has
        # seen it go, no "left" line for it can reach the clients a test
        # connects.
        self.server.twistd.waitForLog(" disconnected (0 lines;")

    def join(self) -> ChatClient:
        """
        Connect a client and read up to and including its welcome, which
        names its nick (the server's start-up probe took one guest number,
        so the numbers are not predicted).
        """
        client = ChatClient(self.server.connect())
        line = client.readLine()
        match = re.fullmatch(r"\* Welcome, (guest\d+)! You are in #lobby\. Type /help for commands\.", line or "")
        self.assertIsNotNone(match, line)
        assert match is not None
        client.nick = match.group(1)
        return client


class ConversationTests(ChatTestCase):
    """
    Three people talking, changing names, whispering, moving rooms.
    """

    options = ["--history", "2"]

    def test_threeClients(self) -> None:
        """
        Each line reaches the other two, never the sender; commands answer
        only the one who asked.
        """
        a, b, c = self.join(), self.join(), self.join()
        a.expect(f"* {b.nick} joined")
        a.expect(f"* {c.nick} joined")
        b.expect(f"* {c.nick} joined")
        a.send("hello from a")
        b.send("hello from b")
        self.assertEqual(sorted([c.readLine(), c.readLine()]), [f"<{a.nick}> hello from a", f"<{b.nick}> hello from b"])
        self.assertEqual(b.expect(f"<{a.nick}> hello from a"), [])
        a.send("/who")
        self.assertEqual(a.expect(f"* In #lobby (3): {a.nick}, {b.nick}, {c.nick}"), [f"<{b.nick}> hello from b"])

    def test_nicknames(self) -> None:
        """
        Nick changes are announced; a taken nick (in any case) is refused.
        """
        a, b = self.join(), self.join()
        a.expect(f"* {b.nick} joined")
        a.send("/nick Alice")
        a.expect("* You are now Alice.")
        b.expect(f"* {a.nick} is now Alice")
        b.send("/nick alice")
        b.expect("! The nickname alice is taken.")
        b.send("/nick 9lives")
        self.assertTrue((b.readLine() or "").startswith("! Nicknames are"))
        b.send("/nick Bob", "hi Alice")
        b.expect("* You are now Bob.")
        self.assertEqual(a.expect("<Bob> hi Alice"), [f"* {b.nick} is now Bob"])

    def test_privateAndRooms(self) -> None:
        """
        A private message reaches one person; rooms keep conversations
        apart; joining replays the room's last messages.
        """
        a, b, c = self.join(), self.join(), self.join()
        c.send("/join #dev", "first", "second", "third")
        c.expect("* You are now in #dev.")
        a.expect(f"* {c.nick} left (joined #dev)")
        b.expect(f"* {c.nick} left (joined #dev)")
        a.send(f"/msg {b.nick} psst", "/rooms")
        a.expect(f"-> *{b.nick}* psst")
        a.expect("* Rooms: #dev (1), #lobby (2)")
        b.expect(f"*{a.nick}* psst")
        b.send("/join #DEV")
        lines = b.expect("* You are now in #dev.") + [b.readLine(), b.readLine(), b.readLine()]
        self.assertEqual(lines[-3:], ["* Last 2 messages in #dev:", f"<{c.nick}> second", f"<{c.nick}> third"])
        c.expect(f"* {b.nick} joined")
        b.send("/me waves")
        c.expect(f"* {b.nick} waves")
        a.send("only the lobby hears this")
        b.send("/who")
        self.assertEqual(b.expect(f"* In #dev (2): {c.nick}, {b.nick}"), [])

    def test_hostileText(self) -> None:
        """
        Escape sequences and invalid UTF-8 reach others defused; the record
        keeps the exact bytes, with the nick and room.
        """
        a, b = self.join(), self.join()
        a.expect(f"* {b.nick} joined")
        a.sock.sendall(b"\x1b[2J\x1b]0;owned\x07 caf\xe9 \xc2\x9b31m \xe2\x80\xaegpj.exe\r\n")
        line = b.readLine()
        self.assertEqual(line, f"<{a.nick}> ^[[2J^[]0;owned^G caf\ufffd M-^[31m <U+202E>gpj.exe")
        records = [parseJSONRecord(r) for r in self.server.waitForRecords(1)]
        self.assertEqual(records[0]["nick"], a.nick)
        self.assertEqual(records[0]["room"], "#lobby")
        self.assertIn("line_b64", records[0])

    def test_quit(self) -> None:
        """
        C{/quit REASON} says goodbye and closes; the room hears the reason.
        """
        a, b = self.join(), self.join()
        a.expect(f"* {b.nick} joined")
        a.send("/quit see you")
        a.expect("* Bye.")
        self.assertIsNone(a.readLine())
        b.expect(f"* {a.nick} left (see you)")
        b.sock.close()
        self.server.waitForRecords(1)
        log = self.server.log()
        self.assertIn("disconnected", log)


class TelnetTests(ChatTestCase):
    """
    A telnet user's keys never show up on others' screens.
    """

    def test_telnetCommands(self) -> None:
        """
        Telnet commands sent amid a line (what telnet sends for Ctrl-C, an
        option offer, a window size whose bytes hold LF) are answered to the
        sender and taken out: the others and the record see the line alone.
        """
        a, b = self.join(), self.join()
        a.expect(f"* {b.nick} joined")
        a.sock.sendall(b"hel\xff\xf4\xff\xfd\x06lo \xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x0a\xff\xf0there\r\n")
        self.assertEqual(b.readLine(), f"<{a.nick}> hello there")
        self.assertEqual(recvUntil(a.sock, b"\xff\xfe\x1f"), b"\xff\xfb\x06\xff\xfe\x1f")
        records = [parseJSONRecord(r) for r in self.server.waitForRecords(1)]
        self.assertEqual([r["line"] for r in records], ["hello there"])

    def test_realTelnet(self) -> None:
        """
        With the C{telnet} program on a terminal: after the user presses
        Ctrl-C, the others see only what was typed, and the telnet user
        sees the room again (telnet shows nothing until the server answers
        the timing mark it sends with Ctrl-C).
        """
        program = shutil.which("telnet")
        if program is None:
            raise SkipTest("no telnet program")
        b = self.join()
        screen = Terminal(self, [program, "127.0.0.1", str(self.server.port)])
        welcome = screen.expect(re.compile(rb"Welcome, (guest\d+)!"))
        nick = welcome.group(1).decode()
        b.expect(f"* {nick} joined")
        screen.type(b"hello\r")
        self.assertEqual(b.readLine(), f"<{nick}> hello")
        screen.type(b"\x03")
        # The terminal echoes ^C as it signals telnet: only then is what
        # follows typed after the interrupt.
        screen.expect(re.compile(rb"\^C"))
        screen.type(b"after\r")
        self.assertEqual(b.readLine(), f"<{nick}> after")
        b.send("can you see me?")
        screen.expect(re.compile(re.escape(f"<{b.nick}> can you see me?").encode()))
        records = [parseJSONRecord(r) for r in self.server.waitForRecords(3)]
        self.assertEqual([r["line"] for r in records if r["nick"] == nick], ["hello", "after"])


class Terminal:
    """
    A program running on a pseudo-terminal of its own (its controlling
    terminal, so that Ctrl-C reaches it as a terminal's would).
    """

    def __init__(self, testCase: SynchronousTestCase, command: List[str]) -> None:
        self.master, slave = os.openpty()
        testCase.addCleanup(os.close, self.master)
        self.screen = b""

        def controllingTerminal() -> None:
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.process = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
            preexec_fn=controllingTerminal,
        )
        os.close(slave)
        testCase.addCleanup(self.process.wait, 10)
        testCase.addCleanup(self.process.kill)

    def type(self, keys: bytes) -> None:
        """
        Type C{keys} on the terminal.
        """
        os.write(self.master, keys)

    def expect(self, pattern: re.Pattern[bytes], timeout: float = 20.0) -> re.Match[bytes]:
        """
        Wait until what the program wrote to its terminal matches
        C{pattern}.
        """
        deadline = time.monotonic() + timeout
        while True:
            match = pattern.search(self.screen)
            if match is not None:
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{pattern.pattern!r} not on the screen: {self.screen!r}")
            if select.select([self.master], [], [], remaining)[0]:
                try:
                    self.screen += os.read(self.master, 4096)
                except OSError:
                    raise AssertionError(
                        f"the program left; {pattern.pattern!r} not on the screen: {self.screen!r}"
                    ) from None


class FloodTests(ChatTestCase):
    """
    A flooder is slowed down, not cut off, and does not slow others.
    """

    options = ["--flood-burst", "3", "--flood-rate", "20"]

    def test_flooder(self) -> None:
        """
        23 lines sent at once arrive in full and in order, the last 20 at
        20 a second; another client's line gets through meanwhile.
        """
        flooder, quiet, listener = self.join(), self.join(), self.join()
        listener_start = time.monotonic()
        flooder.send(*[f"flood {i}" for i in range(23)])
        time.sleep(0.2)
        quiet.send("not held up")
        got: List[str] = []
        while len(got) < 24:
            line = listener.readLine()
            if line and line.startswith("<"):
                got.append(line)
        elapsed = time.monotonic() - listener_start
        flood = [line for line in got if line.startswith(f"<{flooder.nick}>")]
        self.assertEqual(flood, [f"<{flooder.nick}> flood {i}" for i in range(23)])
        self.assertLess(
            got.index(f"<{quiet.nick}> not held up"), 23, "the quiet client was not queued behind the flood"
        )
        self.assertGreaterEqual(elapsed, 0.9, "20 lines beyond the burst at 20/s take about a second")
        records = self.server.waitForRecords(24)
        self.assertEqual(sum('"flood ' in r for r in records), 23)


def rss(pid: int) -> int:
    """
    The resident memory of process C{pid}, in bytes.
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class SlowConsumerTests(ChatTestCase):
    """
    A client that never reads is dropped; the others keep receiving.
    """

    options = ["--sendq", "65536", "--flood-burst", "50", "--flood-rate", "4000"]

    def test_neverReads(self) -> None:
        """
        While one client reads nothing, 8 MB of chat goes to the others: the
        silent one is disconnected with a reason the room sees, every line
        reaches the reader, and the server's memory stays bounded.
        """
        silent = socket.socket()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        silent.connect(("127.0.0.1", self.server.port))
        self.addCleanup(silent.close)
        welcome = ChatClient(silent).readLine() or ""
        silentNick = welcome.split()[2].rstrip("!")
        talker, reader = self.join(), self.join()
        talker.expect(f"* {reader.nick} joined")
        before = rss(self.server.twistd.pid)
        payload = "x" * 1000
        total = 8000
        chunks: List[bytes] = []
        marker = f"* {silentNick} left".encode()

        def read() -> None:
            # Raw reads: a reader that keeps up with 4 MB/s.
            lines = 0
            seenLeft = False
            reader.sock.settimeout(60)
            while lines < total + 1 or not seenLeft:
                chunk = reader.sock.recv(1 << 20)
                if not chunk:
                    return
                chunks.append(chunk)
                lines += chunk.count(b"\r\n")
                seenLeft = seenLeft or marker in chunk or marker in b"".join(chunks[-2:])

        thread = threading.Thread(target=read, daemon=True)
        thread.start()
        for start in range(0, total, 500):
            talker.send(*[f"{n:05d} {payload}" for n in range(start, start + 500)])
        thread.join(60)
        self.assertFalse(thread.is_alive(), "the reader got everything in time")
        after = rss(self.server.twistd.pid)
        received = b"".join(chunks).decode("utf-8").split("\r\n")
        said = [line.split()[1] for line in received if line.startswith(f"<{talker.nick}>")]
        self.assertEqual(said, [f"{n:05d}" for n in range(total)])
        self.assertIn(f"* {silentNick} left (not reading: over 65536 bytes unsent)", received)
        self.assertIn("not reading", self.server.log())
        print(f"\nserver RSS before {before / 1e6:.1f} MB, after 8 MB of chat {after / 1e6:.1f} MB")
        self.assertLess(after - before, 40_000_000, "memory stays bounded")
