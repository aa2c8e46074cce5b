"""
Integration tests: the real C{twistd -n linelogger} in a subprocess, real
sockets on 127.0.0.1 (and UNIX sockets in a temporary directory).

See L{tests.twistd_helpers} for how twistd is started, waited for, stopped
and cleaned up.  Every test class is a L{SynchronousTestCase}: the test
process uses no reactor, only blocking sockets, threads and polling, each
wait bounded by a timeout.
"""

from __future__ import annotations

import base64
import fcntl
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from collections import defaultdict
from typing import Dict, List, Optional, Set, Tuple

from twisted.trial.unittest import SynchronousTestCase

from .twistd_helpers import (
    TIME_PATTERN,
    LineLogger,
    TwistdProcess,
    assertCleanShutdown,
    canConnect,
    freePort,
    makeTempDir,
    parseJSONRecord,
    parseTextRecord,
    parseTime,
    recvAll,
    recvUntil,
    runTwistd,
    unescape,
    waitFor,
)

"""
Exit statuses of a twistd that shut down cleanly after SIGTERM.

twistd stops the reactor on SIGTERM, and once the services have stopped
it kills itself with the same signal (C{twisted.application.app.
_exitWithSignal}), so that its parent sees it ended by SIGTERM: the status
is C{-SIGTERM}, not 0.  A twistd killed outright by the signal would have
the same status, so a clean exit is also checked by the log's
C{Server Shut Down.} line.
"""


def localPort(s: socket.socket) -> int:
    """
    The local port of a connected TCP socket.
    """
    port: int = s.getsockname()[1]
    return port


def peerOf(s: socket.socket) -> str:
    """
    The PEER a record of C{s}'s lines must show: C{127.0.0.1:PORT}.
    """
    return f"127.0.0.1:{localPort(s)}"


def byPeer(records: List[str]) -> Dict[str, List[str]]:
    """
    Group text records' payloads by PEER, in file order.
    """
    grouped: Dict[str, List[str]] = defaultdict(list)
    for record in records:
        _, peer, payload = parseTextRecord(record)
        grouped[peer].append(payload)
    return grouped


def unsentBytes(s: socket.socket) -> int:
    """
    How many bytes written to C{s} its peer's kernel has not acknowledged
    (C{SIOCOUTQ}): on loopback, written bytes not yet in the server
    socket's receive queue.
    """
    raw = fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    count: int = struct.unpack("i", raw)[0]
    return count


class _ServerTestMixin:
    """
    Shared checks for tests that start a L{LineLogger}.
    """

    def stopCleanly(self, server: LineLogger) -> str:
        """
        SIGTERM the server, check it shut down cleanly, return its log.
        """
        assert isinstance(self, SynchronousTestCase)
        status = server.stop()
        log = server.log()
        assertCleanShutdown(self, status, log)
        return log

    def finalRecords(self, server: LineLogger, count: int) -> List[str]:
        """
        Wait for C{count} records, stop the server, and return every record
        the file finally holds (so that none can be added later unseen).
        """
        server.waitForRecords(count)
        self.stopCleanly(server)
        return server.records()


class TextRecordTests(_ServerTestMixin, SynchronousTestCase):
    """
    The default text format: C{TIME SP PEER SP PAYLOAD LF}.
    """

    def test_recordFormat(self) -> None:
        """
        Each line becomes one record: a UTC time with microseconds around
        the time it was sent, C{127.0.0.1:PORT} with the client's own
        local port, and the line without its LF; spaces in a line and an
        empty line are kept.
        """
        server = LineLogger(self)
        client = server.connect()
        expectedPeer = f"127.0.0.1:{client.getsockname()[1]}"
        before = time.time()
        client.sendall(b"hello world\n\nsecond  line with  spaces \n")
        server.waitForRecords(3)
        after = time.time()
        client.close()
        records = self.finalRecords(server, 3)

        self.assertEqual(len(records), 3, records)
        for record in records:
            self.assertRegex(record, r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z 127\.0\.0\.1:\d+ ")
            when, peer, _ = parseTextRecord(record)
            self.assertTrue(TIME_PATTERN.match(when), when)
            # Generous bounds: the same clock, but a busy machine.
            self.assertGreaterEqual(parseTime(when), before - 1.0)
            self.assertLessEqual(parseTime(when), after + 1.0)
            self.assertEqual(peer, expectedPeer)
        self.assertEqual([parseTextRecord(r)[2] for r in records], ["hello world", "", "second  line with  spaces "])
        self.assertTrue(records[1].endswith(f" {expectedPeer} "), "an empty line is TIME SP PEER SP")

    def test_peerIsClientLocalPort(self) -> None:
        """
        PEER is C{127.0.0.1:PORT} where PORT is the client's own local port;
        two clients get their own.
        """
        server = LineLogger(self)
        first = server.connect()
        second = server.connect()
        expected = {peerOf(first): ["from first"], peerOf(second): ["from second"]}
        first.sendall(b"from first\n")
        second.sendall(b"from second\n")
        first.close()
        second.close()
        self.assertEqual(dict(byPeer(self.finalRecords(server, 2))), expected)

    def test_crlfAndLF(self) -> None:
        """
        A CRLF client and an LF client give the same payloads; a CR that is
        not directly before the LF stays in the line, written C{\\x0d}.
        """
        server = LineLogger(self)
        crlf = server.connect()
        lf = server.connect()
        crlfPeer, lfPeer = peerOf(crlf), peerOf(lf)
        crlf.sendall(b"alpha\r\nbeta gamma\r\nlone\rcr\r\ntwo crs\r\r\n")
        lf.sendall(b"alpha\nbeta gamma\nlone\rcr\ntwo crs\r\n")
        crlf.close()
        lf.close()
        grouped = byPeer(self.finalRecords(server, 8))
        expected = ["alpha", "beta gamma", "lone\\x0dcr", "two crs\\x0d"]
        self.assertEqual(grouped[crlfPeer], expected)
        self.assertEqual(grouped[lfPeer], ["alpha", "beta gamma", "lone\\x0dcr", "two crs"])
        self.assertEqual(unescape(grouped[crlfPeer][2]), b"lone\rcr")

    def test_partialLastLine(self) -> None:
        """
        Bytes after the last LF when the client closes are recorded as a
        last record.
        """
        server = LineLogger(self)
        client = server.connect()
        peer = peerOf(client)
        client.sendall(b"complete\nno newline at the end")
        client.close()
        self.assertEqual(byPeer(self.finalRecords(server, 2))[peer], ["complete", "no newline at the end"])

    def test_controlCharactersEscaped(self) -> None:
        """
        Control characters (ESC sequences, NUL, TAB, DEL, C1 controls) and
        bytes that are not valid UTF-8 are written C{\\xNN}, a backslash
        C{\\\\}; valid non-ASCII UTF-8 stays as it is.  The file is valid
        UTF-8 with no control characters but LF, and
        C{codecs.escape_decode} of each payload gives back the exact bytes
        sent.
        """
        cases: List[Tuple[bytes, str]] = [
            (b"\x1b[31mred\x1b[0m \x1b]0;title\x07", "\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07"),
            (b"nul\x00byte", "nul\\x00byte"),
            (b"tab\there", "tab\\x09here"),
            (b"del\x7f", "del\\x7f"),
            (b"backspace\x08\x08", "backspace\\x08\\x08"),
            (b"bad \xff\xfe utf8", "bad \\xff\\xfe utf8"),
            (b"cut short \xe2\x82", "cut short \\xe2\\x82"),
            (b"c1 csi \xc2\x9b2J", "c1 csi \\xc2\\x9b2J"),
            (b"back\\slash", "back\\\\slash"),
            (b"looks escaped \\x41", "looks escaped \\\\x41"),
            ("café ✓".encode(), "café ✓"),
        ]
        server = LineLogger(self)
        client = server.connect()
        peer = peerOf(client)
        client.sendall(b"".join(sent + b"\n" for sent, _ in cases))
        client.close()
        records = self.finalRecords(server, len(cases))

        raw = server.output()
        self.assertIsNone(re.search(rb"[\x00-\x09\x0b-\x1f\x7f]|\xc2[\x80-\x9f]", raw), raw)
        payloads = byPeer(records)[peer]
        self.assertEqual(payloads, [escaped for _, escaped in cases])
        for (sent, _), payload in zip(cases, payloads):
            self.assertEqual(unescape(payload), sent)

    def test_greeting(self) -> None:
        """
        With C{--greeting TEXT}, a client receives TEXT and CRLF as soon as
        it connects, and its lines are still recorded.
        """
        server = LineLogger(self, "--greeting", "Welcome to linelogger, say something")
        client = server.connect()
        greeting = recvUntil(client, b"\r\n")
        self.assertEqual(greeting, b"Welcome to linelogger, say something\r\n")
        client.sendall(b"thanks\n")
        client.shutdown(socket.SHUT_WR)
        self.assertEqual(recvAll(client), b"", "nothing but the greeting is sent")
        self.assertEqual(byPeer(self.finalRecords(server, 1))[peerOf(client)], ["thanks"])

    def test_noGreetingByDefault(self) -> None:
        """
        Without C{--greeting} the server sends nothing at all.
        """
        server = LineLogger(self)
        client = server.connect()
        client.sendall(b"one\ntwo\n")
        client.shutdown(socket.SHUT_WR)
        self.assertEqual(recvAll(client), b"")
        self.assertEqual(len(self.finalRecords(server, 2)), 2)

    def test_connectionLog(self) -> None:
        """
        The twistd log shows C{Got connection from 127.0.0.1:PORT} and
        C{127.0.0.1:PORT disconnected} with the number of lines.
        """
        server = LineLogger(self)
        client = server.connect()
        peer = peerOf(client)
        server.twistd.waitForLog(f"Got connection from {peer}\n")
        client.sendall(b"one\ntwo\nthree\n")
        client.close()
        log = server.twistd.waitForLog(f"{peer} disconnected (3 lines;")
        self.assertRegex(log, rf"(?m)Got connection from {re.escape(peer)}$")
        self.assertRegex(log, rf"(?m) {re.escape(peer)} disconnected \(3 lines; [^)\n]*\)$")
        self.assertLess(log.index(f"Got connection from {peer}"), log.index(f"{peer} disconnected"))

    def test_latency(self) -> None:
        """
        On a trickle of lines, each record reaches the file soon after its
        line is sent (the recorder flushes within about 100 ms); the test
        only requires well under a second, and prints what it measured.
        """
        server = LineLogger(self)
        client = server.connect()
        latencies = []
        for n in range(3):
            time.sleep(0.2)
            started = time.monotonic()
            client.sendall(b"trickle %d\n" % n)
            server.waitForRecords(n + 1, timeout=5.0)
            latencies.append(time.monotonic() - started)
        print(f"\nlinelogger record latency on a trickle: {', '.join(f'{1000 * t:.1f} ms' for t in latencies)}")
        for latency in latencies:
            self.assertLess(latency, 1.0)
        self.assertEqual(byPeer(server.records())[peerOf(client)], ["trickle 0", "trickle 1", "trickle 2"])


class ManyClientsTests(_ServerTestMixin, SynchronousTestCase):
    """
    Hundreds of clients connected at the same time.
    """

    clients = 300
    linesEach = 20

    def test_concurrentClients(self) -> None:
        """
        300 clients connect and stay connected; only when the server has
        accepted all of them does each send 20 distinct lines, interleaved
        with the others' lines.  Every line is recorded exactly once, under
        its own client's peer, in the order that client sent it.
        """
        # Every connection logged: the log says when all are accepted.
        server = LineLogger(self, "--connection-log-rate", "0")
        sockets = [server.connect() for _ in range(self.clients)]
        ports = {localPort(s) for s in sockets}
        self.assertEqual(len(ports), self.clients)

        def allAccepted() -> bool:
            accepted = {int(p) for p in re.findall(r"Got connection from 127\.0\.0\.1:(\d+)$", server.log(), re.M)}
            return ports <= accepted

        waitFor("the server to accept every client", allAccepted, timeout=20.0, interval=0.05)

        expected: Dict[str, List[str]] = {}
        for i, s in enumerate(sockets):
            expected[peerOf(s)] = [f"client {i:03d} line {n:02d} {'x' * (i % 7)}" for n in range(self.linesEach)]
        for n in range(self.linesEach):
            for s in sockets:
                s.sendall(expected[peerOf(s)][n].encode("ascii") + b"\n")
        for s in sockets:
            s.close()

        total = self.clients * self.linesEach
        records = self.finalRecords(server, total)
        self.assertEqual(len(records), total)
        grouped = byPeer(records)
        self.assertEqual(set(grouped), set(expected))
        for peer, lines in expected.items():
            self.assertEqual(grouped[peer], lines, peer)


DEFAULT_CONNECTION_LOG_RATE = 20
"""C{--connection-log-rate} by default: also the burst."""

SUMMARY_PATTERN = re.compile(
    r"(?m)Connection log over its limit of 20/s: (\d+) connections and (\d+) disconnections \((\d+) lines\) "
    r"in the last ([0-9.]+)s not logged one by one; from (.+)$"
)
"""The connection log's summary line, at the default rate."""


class ConnectionLogRateTests(_ServerTestMixin, SynchronousTestCase):
    """
    A connection storm, with the default C{--connection-log-rate}.
    """

    clients = 300

    def parseConnectionLog(self, log: str) -> Tuple[List[str], Dict[str, Tuple[int, str]], List[Tuple[int, int, int]]]:
        """
        The connections logged one by one, the disconnections logged one by
        one (by peer: lines and reason), and each summary's connections,
        disconnections and lines.
        """
        connected = re.findall(r"(?m)Got connection from (\S+)$", log)
        disconnected = {
            peer: (int(lines), reason)
            for peer, lines, reason in re.findall(r"(?m) (\S+) disconnected \((\d+) lines?; (.*)\)$", log)
        }
        summaries = [(int(c), int(d), int(n)) for c, d, n, _, _ in SUMMARY_PATTERN.findall(log)]
        return connected, disconnected, summaries

    def test_burst(self) -> None:
        """
        300 clients connect one after another as fast as they can, and
        each sends a line; then half of them close, and twistd gets
        SIGTERM with the other half open.

        At most 20 connections (the burst) plus 20 a second for as long
        as the connections took are logged one by one, and each of them has
        its disconnection logged too; the summary lines account for the
        rest, connections, disconnections and lines, the last of them
        before twistd's last words.
        """
        server = LineLogger(self, probe=False)
        started = time.monotonic()
        sockets = []
        for i in range(self.clients):
            s = server.connect()
            s.sendall(b"burst %d\n" % i)
            sockets.append(s)
        # Every connection has started once its line is recorded.
        server.waitForRecords(self.clients, timeout=30.0)
        elapsed = time.monotonic() - started
        closing = sockets[::2]
        for s in closing:
            s.close()

        def closedAccountedFor() -> bool:
            _, disconnected, summaries = self.parseConnectionLog(server.log())
            return len(disconnected) + sum(d for _, d, _ in summaries) >= len(closing)

        waitFor("the closed connections in the log", closedAccountedFor, timeout=20.0, interval=0.05)
        log = self.stopCleanly(server)
        connected, disconnected, summaries = self.parseConnectionLog(log)
        print(
            f"\nconnection log: {self.clients} connections in {elapsed:.2f}s: {len(connected)} logged one by one, "
            f"summaries (connections, disconnections, lines): {summaries}"
        )
        rate = DEFAULT_CONNECTION_LOG_RATE
        self.assertGreaterEqual(len(connected), rate)
        self.assertLessEqual(len(connected), rate + rate * elapsed + 1)
        self.assertEqual(len(set(connected)), len(connected))
        self.assertEqual(set(disconnected), set(connected))
        self.assertEqual({lines for lines, _ in disconnected.values()}, {1})
        open_ = {peerOf(s) for s in sockets[1::2]}
        for peer, (_, reason) in disconnected.items():
            self.assertEqual(reason == "server shutting down", peer in open_, peer)
        self.assertEqual(len(connected) + sum(c for c, _, _ in summaries), self.clients)
        self.assertEqual(len(disconnected) + sum(d for _, d, _ in summaries), self.clients)
        self.assertEqual(len(disconnected) + sum(n for _, _, n in summaries), self.clients)
        if len(connected) < self.clients:
            self.assertTrue(summaries)
            for match in SUMMARY_PATTERN.finditer(log):
                self.assertTrue(match.group(5).startswith("127.0.0.1 ("), match.group(0))
            last = list(SUMMARY_PATTERN.finditer(log))[-1]
            self.assertLess(last.start(), log.index("Server Shut Down."))


class JSONRecordTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--format json}: one JSON object per line.
    """

    def test_fields(self) -> None:
        """
        Each record has C{time}, C{peer}, C{conn} and C{line}, and nothing
        else for an ordinary line; C{conn} is the same for one connection's
        lines and differs between connections.  Control characters are
        JSON escapes, never raw bytes, and come back intact.
        """
        server = LineLogger(self, "--format", "json")
        first = server.connect()
        second = server.connect()
        firstPeer, secondPeer = peerOf(first), peerOf(second)
        first.sendall("plain text\ncafé ✓\nesc \x1b[0m del \x7f\n".encode())
        second.sendall(b"other client\n")
        first.close()
        second.close()
        records = self.finalRecords(server, 4)
        raw = server.output()
        self.assertNotIn(b"\x1b", raw)
        self.assertNotIn(b"\x7f", raw)

        parsed = [parseJSONRecord(r) for r in records]
        for record in parsed:
            self.assertEqual(set(record), {"time", "peer", "conn", "line"}, record)
            self.assertTrue(TIME_PATTERN.match(record["time"]), record)
            self.assertIsInstance(record["conn"], int)
        firsts = [r for r in parsed if r["peer"] == firstPeer]
        seconds = [r for r in parsed if r["peer"] == secondPeer]
        self.assertEqual([r["line"] for r in firsts], ["plain text", "café ✓", "esc \x1b[0m del \x7f"])
        self.assertEqual([r["line"] for r in seconds], ["other client"])
        self.assertEqual(len({r["conn"] for r in firsts}), 1)
        self.assertNotEqual(firsts[0]["conn"], seconds[0]["conn"])

    def test_invalidUTF8(self) -> None:
        """
        A line that is not valid UTF-8 has C{line} with U+FFFD replacements
        and C{line_b64} with the exact bytes; a valid line has no
        C{line_b64}.
        """
        server = LineLogger(self, "--format", "json")
        client = server.connect()
        client.sendall(b"bad \xff\xfe bytes\nfine\n")
        client.close()
        bad, fine = [parseJSONRecord(r) for r in self.finalRecords(server, 2)]
        self.assertEqual(base64.b64decode(bad["line_b64"]), b"bad \xff\xfe bytes")
        self.assertEqual(bad["line"], "bad \ufffd\ufffd bytes")
        self.assertEqual(fine["line"], "fine")
        self.assertNotIn("line_b64", fine)

    def test_partialLastLine(self) -> None:
        """
        A last line without LF is recorded with C{"partial": true}; complete
        lines carry no C{partial} key.
        """
        server = LineLogger(self, "--format", "json")
        client = server.connect()
        client.sendall(b"whole\nhalf a li")
        client.close()
        whole, half = [parseJSONRecord(r) for r in self.finalRecords(server, 2)]
        self.assertEqual(whole["line"], "whole")
        self.assertNotIn("partial", whole)
        self.assertEqual(half["line"], "half a li")
        self.assertIs(half["partial"], True)


class LongLinesTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--max-line-length 16} with each C{--long-lines} policy.
    """

    limit = 16
    longLine = b"0123456789abcdefghijklmnopqrstuvwxyzABCD"  # 40 bytes

    def start(self, policy: str, format: str = "json") -> LineLogger:
        """
        Start a server with C{--max-line-length 16 --long-lines POLICY}.
        """
        return LineLogger(self, "--format", format, "--max-line-length", str(self.limit), "--long-lines", policy)

    def sendInPieces(self, s: socket.socket, data: bytes, size: int = 7) -> None:
        """
        Send C{data} a few bytes at a time, pausing between pieces, so the
        server is likely to receive them as separate chunks.
        """
        for i in range(0, len(data), size):
            s.sendall(data[i : i + size])
            time.sleep(0.01)

    def test_split(self) -> None:
        """
        C{split}: a longer line becomes records of at most 16 bytes, each
        with C{"split": true}, that concatenated give back the line; a line
        of exactly 16 bytes and the lines around are ordinary records.
        """
        server = self.start("split")
        client = server.connect()
        client.sendall(b"A" * self.limit + b"\n" + self.longLine + b"\nshort\n")
        client.close()
        records = [parseJSONRecord(r) for r in self.finalRecords(server, 5)]
        self.assertEqual(len(records), 5, records)
        self.assertEqual(records[0]["line"], "A" * self.limit)
        self.assertNotIn("split", records[0])
        pieces = records[1:4]
        self.assertEqual("".join(r["line"] for r in pieces).encode(), self.longLine)
        self.assertEqual([len(r["line"]) for r in pieces], [16, 16, 8])
        for piece in pieces:
            self.assertIs(piece["split"], True)
            self.assertNotIn("truncated", piece)
        self.assertEqual(records[4]["line"], "short")
        self.assertNotIn("split", records[4])

    def test_splitText(self) -> None:
        """
        C{split} in text format, the long line sent a few bytes at a time:
        the payloads of its records concatenated give back the line, none
        longer than 16 bytes, and the next line is recorded whole.
        """
        server = self.start("split", format="text")
        client = server.connect()
        peer = peerOf(client)
        self.sendInPieces(client, self.longLine + b"\nnext line\n")
        client.close()
        payloads = byPeer(self.finalRecords(server, 4))[peer]
        self.assertEqual(payloads[-1], "next line")
        self.assertEqual("".join(payloads[:-1]).encode(), self.longLine)
        self.assertTrue(all(len(p) <= self.limit for p in payloads[:-1]), payloads)

    def test_truncate(self) -> None:
        """
        C{truncate}: the first 16 bytes of a longer line are recorded with
        C{"truncated": true}, the rest of that line is dropped (even when it
        arrives in several chunks), and the next line on the same
        connection is recorded as usual.
        """
        server = self.start("truncate")
        client = server.connect()
        self.sendInPieces(client, self.longLine + b"\nnext line\n")
        client.shutdown(socket.SHUT_WR)
        self.assertEqual(recvAll(client), b"", "truncate sends the client nothing")
        records = [parseJSONRecord(r) for r in self.finalRecords(server, 2)]
        self.assertEqual(len(records), 2, records)
        self.assertEqual(records[0]["line"].encode(), self.longLine[: self.limit])
        self.assertIs(records[0]["truncated"], True)
        self.assertNotIn("split", records[0])
        self.assertEqual(records[1]["line"], "next line")
        self.assertNotIn("truncated", records[1])
        self.assertIn(f"{peerOf(client)} sent a line longer than 16 bytes (truncate)", server.log())

    def test_close(self) -> None:
        """
        C{close}: the first 16 bytes of a longer line are recorded, the
        client receives a line starting with C{error:}, and the server
        closes the connection; what followed the long line is not
        recorded.
        """
        server = self.start("close")
        client = server.connect()
        peer = peerOf(client)
        client.sendall(self.longLine + b"\nafter the long line\n")
        received = recvAll(client)
        self.assertTrue(received.startswith(b"error:"), received)
        self.assertTrue(received.endswith(b"\n"), received)
        self.assertEqual(received.count(b"\n"), 1, received)
        server.twistd.waitForLog(f"{peer} disconnected (1 line;")
        records = [parseJSONRecord(r) for r in self.finalRecords(server, 1)]
        self.assertEqual(len(records), 1, records)
        self.assertEqual(records[0]["line"].encode(), self.longLine[: self.limit])
        self.assertIs(records[0]["truncated"], True)


class StartupErrorTests(SynchronousTestCase):
    """
    twistd refuses to start, with a short message, when it cannot work.
    """

    def test_portInUse(self) -> None:
        """
        When the port is already in use, twistd exits quickly with a
        non-zero status and a one-line C{Couldn't listen} / C{Address
        already in use} message, and no traceback.
        """
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(5)
        port = localPort(taken)
        workdir = makeTempDir(self)
        args = ["-n", "--pidfile=", "linelogger", "--port", f"tcp:{port}:interface=127.0.0.1"]
        args += ["--output", os.path.join(workdir, "records.out")]
        status, output, duration = runTwistd(self, args, workdir=workdir)
        self.assertNotEqual(status, 0, output)
        self.assertLess(duration, 15.0, output)
        self.assertNotIn("Traceback", output)
        messages = [
            line for line in output.splitlines() if "Couldn't listen" in line or "Address already in use" in line
        ]
        self.assertEqual(len(messages), 1, output)
        self.assertIn(str(port), messages[0])

    def test_daemonWithStandardOutput(self) -> None:
        """
        Without C{-n} (as a daemon) and with the default C{--output -},
        twistd exits non-zero with an error that mentions C{--output},
        without daemonizing or listening.
        """
        workdir = makeTempDir(self)
        pidfile = os.path.join(workdir, "twistd.pid")
        port = freePort()

        def killStrayDaemon() -> None:
            # Only if the test failed and a daemon we started is running.
            try:
                with open(pidfile) as f:
                    os.kill(int(f.read().strip()), signal.SIGKILL)
            except (OSError, ValueError):
                pass

        self.addCleanup(killStrayDaemon)
        args = [f"--pidfile={pidfile}", f"--logfile={os.path.join(workdir, 'twistd.log')}"]
        args += ["linelogger", "--port", f"tcp:{port}:interface=127.0.0.1"]
        status, output, duration = runTwistd(self, args, workdir=workdir)
        self.assertNotEqual(status, 0, output)
        self.assertIn("--output", output)
        self.assertNotIn("Traceback", output)
        self.assertFalse(os.path.exists(pidfile), "twistd daemonized")
        self.assertFalse(canConnect(("127.0.0.1", port)), "something listens on the port")


HELP_HINT = "Run 'twistd linelogger --help' for the options."
"""The line after the reason for a mistake in the options."""


class OneLineStartupErrorTests(SynchronousTestCase):
    """
    Every start-up failure is one line saying what is wrong (and, for a
    mistake in the options, a pointer to C{--help}) and a non-zero exit, in
    the foreground (C{-n}) and as a daemon: no traceback, no usage text.
    """

    def startFailing(self, daemon: bool, *options: str, extraPath: Optional[str] = None) -> List[str]:
        """
        Run twistd (with C{-n} unless C{daemon}) with linelogger C{options}
        (and C{--output FILE}), expecting it to refuse to start.

        @param extraPath: a directory to put on twistd's C{PYTHONPATH}, after
            the checkout.
        @return: the lines it printed (standard output and error).
        """
        workdir = makeTempDir(self)
        pidfile = os.path.join(workdir, "twistd.pid")
        logfile = os.path.join(workdir, "twistd.log")
        if daemon:
            twistdArgs = [f"--pidfile={pidfile}", f"--logfile={logfile}"]

            def killStrayDaemon() -> None:
                try:
                    with open(pidfile) as f:
                        os.kill(int(f.read().strip()), signal.SIGKILL)
                except (OSError, ValueError):
                    pass

            self.addCleanup(killStrayDaemon)
        else:
            twistdArgs = ["-n", "--pidfile="]
        if extraPath is not None:
            self.patch(os, "environ", dict(os.environ, PYTHONPATH=extraPath))
        args = [*twistdArgs, "linelogger", "--output", os.path.join(workdir, "records.out"), *options]
        status, output, duration = runTwistd(self, args, workdir=workdir)
        self.assertNotEqual(status, 0, output)
        self.assertLess(duration, 20.0, output)
        self.assertNotIn("Traceback", output)
        self.assertNotIn("Usage:", output)
        self.assertFalse(os.path.exists(pidfile), "a pidfile was left")
        if os.path.exists(logfile):
            with open(logfile) as f:
                self.assertNotIn("Traceback", f.read())
        return output.splitlines()

    def assertOneLine(self, lines: List[str], *parts: str, hint: bool = False) -> None:
        """
        C{lines} are one line starting C{linelogger: } that holds every one
        of C{parts}, and then, if C{hint}, the pointer to C{--help}.
        """
        self.assertEqual(len(lines), 2 if hint else 1, lines)
        self.assertTrue(lines[0].startswith("linelogger: "), lines)
        for part in parts:
            self.assertIn(part, lines[0])
        if hint:
            self.assertEqual(lines[1], HELP_HINT)

    def bothWays(self, *options: str, parts: Tuple[str, ...], hint: bool = False, extraPath: Optional[str] = None):
        """
        Check the failure with C{-n} and as a daemon.
        """
        for daemon in (False, True):
            lines = self.startFailing(daemon, *options, extraPath=extraPath)
            self.assertOneLine(lines, *parts, hint=hint)

    def test_portNotANumber(self) -> None:
        """
        C{tcp:abc}: the port is not a number.
        """
        self.bothWays("--port", "tcp:abc", parts=("--port tcp:abc: not a number: 'abc'",), hint=True)

    def test_portOutOfRange(self) -> None:
        """
        C{tcp:99999}: not a TCP port.
        """
        self.bothWays("--port", "tcp:99999", parts=("--port tcp:99999: 99999 is not a TCP port",), hint=True)

    def test_unknownEndpointType(self) -> None:
        """
        An endpoint type Twisted does not know.
        """
        self.bothWays("--port", "nosuch:1234", parts=("unknown endpoint type 'nosuch'",), hint=True)

    def test_missingSocketDirectory(self) -> None:
        """
        A UNIX socket in a directory that does not exist.
        """
        self.bothWays(
            "--port",
            "unix:/nonexistent/dir/x.sock",
            parts=("--port unix:/nonexistent/dir/x.sock: no such directory: /nonexistent/dir",),
        )

    def test_missingKey(self) -> None:
        """
        C{ssl:} with a key file that does not exist.
        """
        missing = os.path.join(makeTempDir(self), "key.pem")
        self.bothWays(
            "--port",
            f"ssl:{freePort()}:interface=127.0.0.1:privateKey={missing}",
            parts=(f"cannot read {missing}: No such file or directory",),
        )

    def test_unreadableCertificate(self) -> None:
        """
        C{ssl:} with a certificate that cannot be read (a directory: the
        tests may run as root, who reads any file).
        """
        directory = makeTempDir(self)
        self.bothWays(
            "--port",
            f"ssl:{freePort()}:interface=127.0.0.1:privateKey={directory}",
            parts=(f"cannot read {directory}: Is a directory",),
        )

    def test_tlsWithoutPyOpenSSL(self) -> None:
        """
        C{ssl:} when pyOpenSSL cannot be imported: the line names the extra
        to install.
        """
        shim = makeTempDir(self)
        os.mkdir(os.path.join(shim, "OpenSSL"))
        with open(os.path.join(shim, "OpenSSL", "__init__.py"), "w") as f:
            f.write("raise ImportError('No module named OpenSSL')\n")
        key = os.path.join(shim, "key.pem")
        with open(key, "w") as f:
            f.write("not used: the import fails first\n")
        self.bothWays(
            "--port",
            f"ssl:{freePort()}:interface=127.0.0.1:privateKey={key}",
            parts=("ssl endpoints need pyOpenSSL", "pip install 'linelogger[tls]'"),
            extraPath=shim,
        )

    def test_socketActivationWithoutSockets(self) -> None:
        """
        C{systemd:} when systemd passed no socket.
        """
        self.bothWays("--port", "systemd:domain=INET:index=0", parts=("systemd passed no sockets to this process",))

    def test_portInUse(self) -> None:
        """
        A port in use: Twisted's one line for it, from the daemon too
        (which once wrote a 42-line traceback to its log, and a truncated
        bytes repr to the terminal).  Also when the port's holder set
        C{SO_REUSEADDR}, as Twisted does: then binding succeeds and only
        listening fails.
        """
        for reuse in (False, True):
            taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.addCleanup(taken.close)
            if reuse:
                taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            taken.bind(("127.0.0.1", 0))
            taken.listen(5)
            port = localPort(taken)
            self.bothWays(
                "--port",
                f"tcp:{port}:interface=127.0.0.1",
                parts=(f"Couldn't listen on 127.0.0.1:{port}:", "Address already in use"),
            )

    def test_metricsPortInUse(self) -> None:
        """
        The same for C{--metrics}.
        """
        taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(5)
        port = localPort(taken)
        self.bothWays(
            "--port",
            f"tcp:{freePort()}:interface=127.0.0.1",
            "--metrics",
            f"tcp:{port}:interface=127.0.0.1",
            parts=(f"Couldn't listen on 127.0.0.1:{port}:",),
        )

    def test_optionValue(self) -> None:
        """
        A bad option value: the reason first, then the pointer to
        C{--help}, not the usage text.
        """
        self.bothWays("--format", "xml", parts=("linelogger: --format must be one of: json, text",), hint=True)
        self.bothWays("--no-such-option", parts=("option --no-such-option not recognized",), hint=True)

    def test_chatWithAck(self) -> None:
        """
        C{--chat --ack} is refused: acknowledgements would show in the chat.
        """
        self.bothWays("--chat", "--ack", parts=("--ack does not go with --chat",), hint=True)

    def test_daemonLockedSocket(self) -> None:
        """
        A failure only the listening itself finds (a UNIX socket another
        linelogger holds the lock of), as a daemon: the waiting twistd
        prints linelogger's line, the log has it once, without a traceback,
        and no pidfile is left.
        """
        first = LineLogger(self, unixSockets=1)
        path = first.unixPaths[0]
        workdir = makeTempDir(self)
        pidfile = os.path.join(workdir, "twistd.pid")
        logfile = os.path.join(workdir, "twistd.log")
        args = [f"--pidfile={pidfile}", f"--logfile={logfile}", "linelogger", "--port", f"unix:{path}"]
        args += ["--output", os.path.join(workdir, "records.out")]
        status, output, _ = runTwistd(self, args, workdir=workdir)
        self.assertNotEqual(status, 0, output)
        self.assertNotIn("Traceback", output)
        self.assertIn("linelogger: Couldn't listen on", output)
        self.assertFalse(os.path.exists(pidfile))
        with open(logfile) as f:
            log = f.read()
        self.assertNotIn("Traceback", log)
        self.assertEqual(log.count("linelogger: Couldn't listen on"), 1, log)
        self.assertTrue(first.twistd.running())

    def test_foregroundLockedSocket(self) -> None:
        """
        The same in the foreground: one line, no traceback.
        """
        first = LineLogger(self, unixSockets=1)
        workdir = makeTempDir(self)
        args = ["-n", "--pidfile=", "linelogger", "--port", f"unix:{first.unixPaths[0]}"]
        args += ["--output", os.path.join(workdir, "records.out")]
        status, output, _ = runTwistd(self, args, workdir=workdir)
        self.assertNotEqual(status, 0, output)
        self.assertNotIn("Traceback", output)
        self.assertEqual(output.count("linelogger: Couldn't listen on"), 1, output)


class VersionTests(SynchronousTestCase):
    """
    C{twistd linelogger --version}.
    """

    def test_version(self) -> None:
        """
        It prints linelogger's name and version (and Twisted's), and exits 0.
        """
        from logger_service import __version__
        from twisted import copyright

        status, output, _ = runTwistd(self, ["linelogger", "--version"])
        self.assertEqual(status, 0, output)
        self.assertEqual(output.splitlines(), [f"linelogger {__version__} (Twisted {copyright.version})"])


class PidfileTests(SynchronousTestCase):
    """
    Several foreground servers from one directory, as README.rst's quick
    start shows.
    """

    def start(self, workdir: str, *twistdOptions: str) -> Tuple[TwistdProcess, int]:
        """
        Start C{twistd -n [twistdOptions] linelogger} in C{workdir} on a
        free port on 127.0.0.1.
        """
        port = freePort()
        args = ["-n", *twistdOptions, "linelogger", "--port", f"tcp:{port}:interface=127.0.0.1"]
        args += ["--output", os.path.join(workdir, f"records-{port}.out")]
        twistd = TwistdProcess(args, workdir, logName=f"twistd-{port}.out")
        self.addCleanup(twistd.cleanup)
        return twistd, port

    def waitListening(self, twistd: TwistdProcess, port: int) -> None:
        """
        Wait until C{twistd} accepts connections on C{port}.
        """

        def check() -> bool:
            if not twistd.running():
                raise AssertionError(f"twistd exited\n{twistd.log()}")
            return canConnect(("127.0.0.1", port))

        waitFor(f"twistd to listen on {port}", check, 20)

    def test_severalFromOneDirectory(self) -> None:
        """
        A second C{twistd -n linelogger} in the directory of a first is
        refused (twistd's C{twistd.pid}), even on another port; with
        C{--pidfile=} (no pidfile) or a pidfile of its own it runs.
        """
        workdir = makeTempDir(self)
        first, firstPort = self.start(workdir)
        self.waitListening(first, firstPort)
        self.assertTrue(os.path.exists(os.path.join(workdir, "twistd.pid")))
        second, _ = self.start(workdir)
        self.assertNotEqual(second.wait(20), 0)
        self.assertIn("Another twistd server is running", second.log())
        third, thirdPort = self.start(workdir, "--pidfile=")
        fourth, fourthPort = self.start(workdir, f"--pidfile=linelogger-{firstPort + 1}.pid")
        self.waitListening(third, thirdPort)
        self.waitListening(fourth, fourthPort)
        for twistd in (first, third, fourth):
            assertCleanShutdown(self, twistd.stop(), twistd.log())


class SeveralPortsTests(_ServerTestMixin, SynchronousTestCase):
    """
    Several C{--port} options: one server, one record file.
    """

    def test_twoTCPPortsAndUnix(self) -> None:
        """
        Lines arriving on two TCP ports and on a UNIX socket all go to the
        same file, TCP lines under their clients' peers, UNIX lines under a
        C{unix:...#N} peer.
        """
        server = LineLogger(self, tcpPorts=2, unixSockets=1)
        one = server.connect(server.ports[0])
        two = server.connect(server.ports[1])
        local = server.connectUnix()
        one.sendall(b"via port one\n")
        two.sendall(b"via port two\n")
        local.sendall(b"via unix socket\n")
        onePeer, twoPeer = peerOf(one), peerOf(two)
        for s in (one, two, local):
            s.close()
        grouped = byPeer(self.finalRecords(server, 3))
        self.assertEqual(grouped.pop(onePeer), ["via port one"])
        self.assertEqual(grouped.pop(twoPeer), ["via port two"])
        self.assertEqual(list(grouped.values()), [["via unix socket"]])
        (unixPeer,) = grouped
        self.assertRegex(unixPeer, r"\Aunix:\S+#\d+\Z")

    def test_unixPeerNamesSocketPath(self) -> None:
        """
        A UNIX-socket client (which has no name of its own) is shown as
        C{unix:PATH#N}, PATH the socket it connected to and N its
        connection id.
        """
        server = LineLogger(self, "--format", "json", unixSockets=1)
        local = server.connectUnix()
        local.sendall(b"hello from a unix client\n")
        local.close()
        (record,) = [parseJSONRecord(r) for r in self.finalRecords(server, 1)]
        self.assertEqual(record["line"], "hello from a unix client")
        self.assertEqual(record["peer"], f"unix:{server.unixPaths[0]}#{record['conn']}")


class ShutdownTests(_ServerTestMixin, SynchronousTestCase):
    """
    SIGTERM: what clients already sent is recorded, once.
    """

    clients = 50
    batch = 10
    pause = 0.002
    lineFormat = "c{:03d} {:09d}\n"
    lineLength = 15

    def test_sigtermWhileSending(self) -> None:
        """
        50 clients send numbered lines from threads, 10 lines per
        C{sendall}, continuously; after about 0.5 s twistd gets SIGTERM.
        Just before the signal, each client's count of lines whose
        C{sendall} had returned is noted, and how many of those bytes the
        server's kernel had already acknowledged.

        Each client pauses 2 ms between sends.  Flat out, 50 threads can
        outrun the server by so much that draining its backlog takes longer
        than the hub's 5 s C{drainTimeout}, after which unread input is
        dropped by design (with a warning); the pause also lets the test's
        main thread get the GIL back on time to send the signal.

        After a clean exit, each client's records are its lines 0, 1, 2,
        ... in order, each exactly once, possibly followed by one partial
        line; they include every line the server's kernel had
        acknowledged before the signal.  (Lines whose C{sendall} had
        returned but that were still in the client's own send queue were
        never received by the server before the signal, so no server can
        promise them; how many of those were recorded anyway is printed.)
        """
        # Every connection logged: the log says when all are accepted.
        server = LineLogger(self, "--connection-log-rate", "0")
        sockets = [server.connect() for _ in range(self.clients)]
        ports = {localPort(s): i for i, s in enumerate(sockets)}

        def allAccepted() -> bool:
            log = server.log()
            return all(f"Got connection from 127.0.0.1:{p}\n" in log for p in ports)

        waitFor("the server to accept every client", allAccepted, timeout=20.0, interval=0.05)

        sent = [0] * self.clients
        errors: List[Optional[Tuple[float, OSError]]] = [None] * self.clients
        stop = threading.Event()

        def blast(i: int) -> None:
            s = sockets[i]
            n = 0
            try:
                while not stop.is_set():
                    s.sendall("".join(self.lineFormat.format(i, n + k) for k in range(self.batch)).encode())
                    n += self.batch
                    sent[i] = n
                    time.sleep(self.pause)
            except OSError as e:
                errors[i] = (time.monotonic(), e)

        threads = [threading.Thread(target=blast, args=(i,), daemon=True) for i in range(self.clients)]
        for t in threads:
            t.start()
        self.addCleanup(stop.set)
        time.sleep(0.5)

        sentBefore = list(sent)
        unsent = [unsentBytes(s) for s in sockets]
        ackedBefore = [
            max(0, sentBefore[i] * self.lineLength - unsent[i]) // self.lineLength for i in range(self.clients)
        ]
        signalled = time.monotonic()
        os.kill(server.twistd.pid, signal.SIGTERM)
        status = server.twistd.wait(30.0)
        exited = time.monotonic()
        stop.set()
        for t in threads:
            t.join(10.0)
            self.assertFalse(t.is_alive(), "a client thread is stuck")

        for i, error in enumerate(errors):
            if error is not None:
                self.assertGreaterEqual(error[0], signalled, f"client {i} failed before SIGTERM: {error[1]!r}")
        log = server.log()
        assertCleanShutdown(self, status, log)

        recorded: Dict[int, List[int]] = defaultdict(list)
        partial: Set[int] = set()
        pattern = re.compile(r"c(\d{3}) (\d{9})\Z")
        for record in server.records():
            _, peer, payload = parseTextRecord(record)
            host, _, port = peer.rpartition(":")
            self.assertEqual(host, "127.0.0.1", record)
            i = ports[int(port)]
            self.assertNotIn(i, partial, f"a record after the partial line of client {i}: {record!r}")
            match = pattern.match(payload)
            if match:
                self.assertEqual(int(match.group(1)), i, record)
                recorded[i].append(int(match.group(2)))
            else:
                # The unfinished line a client was sending at shutdown.
                following = self.lineFormat.format(i, len(recorded[i]))
                self.assertTrue(following.startswith(payload), f"{record!r} is not the start of {following!r}")
                partial.add(i)

        sendallRecorded = sum(min(len(recorded[i]), sentBefore[i]) for i in range(self.clients))
        print(
            f"\nSIGTERM with {self.clients} clients sending: exited in {exited - signalled:.2f}s; "
            f"{sum(len(v) for v in recorded.values())} lines and {len(partial)} partial lines recorded; "
            f"before the signal {sum(sentBefore)} lines had left sendall, "
            f"{sum(ackedBefore)} were acknowledged by the server's kernel; "
            f"{sendallRecorded} of the {sum(sentBefore)} were recorded"
        )
        stopping = "\n".join(line for line in log.splitlines() if "Stopping" in line)
        for i in range(self.clients):
            numbers = recorded[i]
            wrong = next((k for k, n in enumerate(numbers) if n != k), None)
            self.assertIsNone(
                wrong,
                f"client {i}: record {wrong} is line {numbers[wrong] if wrong is not None else ''}: "
                "a line lost, repeated or out of order",
            )
            self.assertGreaterEqual(
                len(numbers),
                ackedBefore[i],
                f"client {i}: {ackedBefore[i]} lines acknowledged before SIGTERM, only {len(numbers)} recorded; "
                f"twistd exited {exited - signalled:.2f}s after the signal\n{stopping}",
            )

    def test_sigtermRecordsUnterminatedLine(self) -> None:
        """
        On SIGTERM, an open connection's unterminated line is recorded as
        partial, and the server closes the connection.
        """
        server = LineLogger(self, "--format", "json")
        client = server.connect()
        peer = peerOf(client)
        client.sendall(b"complete\nunterminated")
        server.waitForRecords(1)
        log = self.stopCleanly(server)
        self.assertEqual(recvAll(client), b"")
        complete, unterminated = [parseJSONRecord(r) for r in server.records()]
        self.assertEqual(complete["line"], "complete")
        self.assertNotIn("partial", complete)
        self.assertEqual(unterminated["line"], "unterminated")
        self.assertIs(unterminated["partial"], True)
        self.assertIn(f"{peer} disconnected (2 lines; server shutting down)", log)


def _openbsdNetcat() -> Optional[str]:
    """
    The path of OpenBSD netcat (which has C{-N}), or C{None}.
    """
    path = shutil.which("nc")
    if path is None:
        return None
    try:
        result = subprocess.run([path, "-h"], capture_output=True, timeout=10, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (result.stdout + result.stderr).decode("utf-8", "replace")
    return path if "OpenBSD" in text and "-N" in text else None


class NetcatTests(_ServerTestMixin, SynchronousTestCase):
    """
    A user pipes lines through C{nc}.
    """

    def test_pipeThroughNetcat(self) -> None:
        """
        C{printf ... | nc -N 127.0.0.1 PORT}: every line, CRLF or LF, and a
        last unterminated one, is recorded from one peer, in order.
        """
        nc = _openbsdNetcat()
        if nc is None:
            self.skipTest("OpenBSD netcat (nc with -N, package netcat-openbsd) is not on PATH")
        assert nc is not None
        server = LineLogger(self)
        result = subprocess.run(
            [nc, "-N", "127.0.0.1", str(server.port)],
            input=b"first from nc\nsecond from nc\r\nthird, no newline",
            capture_output=True,
            timeout=20,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        grouped = byPeer(self.finalRecords(server, 3))
        self.assertEqual(list(grouped.values()), [["first from nc", "second from nc", "third, no newline"]])
        (peer,) = grouped
        self.assertRegex(peer, r"\A127\.0\.0\.1:\d+\Z")
