"""
Integration tests of the output's durability promises, with the real
C{twistd -n linelogger}: C{--rotate-size} limits, C{ok N} only once a line is
fsynced whatever rotated or reopened, a record torn by C{kill -9} mended at
the next start, rotations and reopens logged.

Where the order of system calls matters, twistd runs with
L{tests.syscalls.installInTwistd}: its writes, fsyncs and renames in the
output's directory, and each C{ok N} it sends, are noted in a file that the
test replays.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from typing import Dict, List

from twisted.trial.unittest import SynchronousTestCase

from . import twistd_helpers
from .syscalls import readEvents, unsyncedAcks
from .twistd_helpers import LineLogger, assertCleanShutdown, parseTextRecord, recvUntil, waitFor

EVENTS = "syscalls.jsonl"
"""The file, next to the output, where a twistd started by L{withSyscalls}
notes its system calls."""


def withSyscalls(testCase: SynchronousTestCase) -> None:
    """
    Make the twistd processes this test starts note their system calls in
    L{EVENTS} next to their C{--output}.
    """
    hook = (
        "import sys, os; from tests.syscalls import installInTwistd; "
        "output = sys.argv[sys.argv.index('--output') + 1]; "
        f"installInTwistd(os.path.dirname(output), os.path.join(os.path.dirname(output), {EVENTS!r})); "
    )
    testCase.patch(twistd_helpers, "TWISTD_MAIN", hook + twistd_helpers.TWISTD_MAIN)


def outputFiles(server: LineLogger) -> Dict[str, bytes]:
    """
    The output file and its rotated copies, by name.
    """
    base = os.path.basename(server.outputPath)
    files = {}
    for name in os.listdir(server.workdir):
        if name == base or re.fullmatch(re.escape(base) + r"\.\d+", name):
            with open(os.path.join(server.workdir, name), "rb") as f:
                files[name] = f.read()
    return files


def inOrder(files: Dict[str, bytes]) -> bytes:
    """
    The content of the rotated files, oldest first, then the current one.
    """

    def age(name: str) -> int:
        suffix = name.rsplit(".", 1)[1]
        return -int(suffix) if suffix.isdigit() else 0

    return b"".join(files[name] for name in sorted(files, key=age))


def payloads(data: bytes) -> List[str]:
    return [parseTextRecord(record)[2] for record in data.decode("utf-8").splitlines()]


def sendInBursts(s: socket.socket, lines: List[bytes], burst: int, pause: float = 0.0) -> None:
    for start in range(0, len(lines), burst):
        s.sendall(b"".join(lines[start : start + burst]))
        if pause:
            time.sleep(pause)


class RotationSizeTests(SynchronousTestCase):
    """
    C{--rotate-size} is a limit, overshot by no more than one record.
    """

    def test_filesStopAtLimit(self) -> None:
        """
        Lines sent faster than they are written (so batches are large) are
        still split across files at the limit: each file rotated once it
        reached C{--rotate-size}, passing it by less than one record; no
        record is lost, doubled or split.
        """
        limit = 5000
        server = LineLogger(self, "--rotate-size", str(limit))
        lines = [b"line %05d %s\n" % (i, b"x" * (i % 50)) for i in range(20000)]
        s = server.connect()
        sendInBursts(s, lines, 5000)
        s.close()
        waitFor("the last record written", lambda: server.output().endswith(b" " + lines[-1]), 30)
        assertCleanShutdown(self, server.stop(), server.log())
        files = outputFiles(server)
        self.assertGreater(len(files), 10)
        longest = max(len(line) for line in lines) + len(b"2026-12-03T10:00:00.000000Z 127.0.0.1:65535 ")
        for name, data in files.items():
            self.assertLess(len(data), limit + longest, name)
            if name != os.path.basename(server.outputPath):
                self.assertGreaterEqual(len(data), limit, name)
                last = data[data.rstrip(b"\n").rfind(b"\n") + 1 :]
                self.assertLess(len(data) - len(last), limit, f"{name}: a record went in after the limit")
        self.assertEqual(payloads(inOrder(files)), [line[:-1].decode() for line in lines])


class AckDurabilityTests(SynchronousTestCase):
    """
    With C{--ack --fsync}, C{ok N} comes only after the N lines are on disk,
    even when the file holding them was rotated away or reopened since.
    """

    def test_rotation(self) -> None:
        """
        C{--ack --fsync 50 --rotate-size}: every file is fsynced before it
        is renamed away, the directory after, all before the C{ok N} that
        covers its lines; each rotation is logged with the file names.
        """
        withSyscalls(self)
        server = LineLogger(self, "--ack", "--fsync", "50", "--rotate-size", "2000")
        count = 1500
        lines = [b"line %05d\n" % i for i in range(count)]
        s = server.connect()
        sendInBursts(s, lines, 20, 0.01)
        recvUntil(s, b"ok %d\r\n" % count, timeout=60)
        assertCleanShutdown(self, server.stop(), server.log())
        events = readEvents(os.path.join(server.workdir, EVENTS))
        self.assertIn(["ack", count], events)
        self.assertEqual(unsyncedAcks(events), [])
        renames = [e for e in events if e[0] == "rename"]
        self.assertGreater(len(renames), 5)
        rotated = server.outputPath + ".1"
        self.assertIn(f"Rotated {server.outputPath} to {rotated} at ", server.log())
        self.assertEqual(server.log().count("Rotated "), len([e for e in renames if e[2] == rotated]))

    def test_reopen(self) -> None:
        """
        C{--ack --fsync 10000}: lines written before a SIGHUP reopen (after
        the file was moved away) are fsynced in the old file before the
        C{ok N} that covers them; the reopen is logged with both names.
        Ten seconds is far longer than the steps up to the SIGHUP take, even
        on a slow machine, so the group commit cannot have synced the old
        file before it: only the reopen can.
        """
        withSyscalls(self)
        server = LineLogger(self, "--ack", "--fsync", "10000")
        s = server.connect()
        s.sendall(b"one\n")
        recvUntil(s, b"ok 1\r\n")
        s.sendall(b"two\nthree\n")
        server.waitForRecords(3)
        moved = server.outputPath + ".1"
        os.rename(server.outputPath, moved)
        os.kill(server.pid, signal.SIGHUP)
        waitFor("the reopened file", lambda: os.path.exists(server.outputPath), 10)
        s.sendall(b"four\n")
        recvUntil(s, b"ok 4\r\n", timeout=40)
        assertCleanShutdown(self, server.stop(), server.log())
        events = readEvents(os.path.join(server.workdir, EVENTS))
        self.assertEqual(unsyncedAcks(events), [])
        self.assertIn(f"Reopened {server.outputPath}; the records before are in {moved}", server.log())
        with open(moved, "rb") as f:
            self.assertEqual(payloads(f.read()), ["one", "two", "three"])
        self.assertEqual(payloads(server.output()), ["four"])


class TornRecordTests(SynchronousTestCase):
    """
    A record torn by C{kill -9} (the file does not end with LF) is ended at
    the next start, so the next record is a line of its own.
    """

    def test_killedMidRecord(self) -> None:
        """
        A file left ending part way through a record gets a newline at
        start, with a warning; the records of the new run are whole lines.
        """
        first = LineLogger(self)
        s = first.connect()
        s.sendall(b"before the crash\n")
        first.waitForRecords(1)
        first.twistd.kill()
        # What kill -9 leaves when it lands in the middle of a write.
        with open(first.outputPath, "ab") as f:
            f.write(b"2026-12-03T10:00:00.000000Z 127.0.0.1:1 torn rec")
        second = LineLogger(self, "--output", first.outputPath)
        second.twistd.waitForLog("ended part way through a record")
        s = second.connect()
        s.sendall(b"after the restart\n")
        waitFor("the new record", lambda: first.output().endswith(b"after the restart\n"), 10)
        assertCleanShutdown(self, second.stop(), second.log())
        records = first.output().decode("utf-8").splitlines()
        self.assertEqual(len(records), 3)
        self.assertEqual(parseTextRecord(records[0])[2], "before the crash")
        self.assertEqual(parseTextRecord(records[1])[2], "torn rec")
        self.assertEqual(parseTextRecord(records[2])[2], "after the restart")
        self.assertIn(first.outputPath, second.log())
