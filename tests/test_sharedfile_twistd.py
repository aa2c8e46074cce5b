"""
C{--workers N --worker-output direct|supervisor} as a whole: a real twistd
supervisor whose workers write the one output themselves (the default), or
send their records to the supervisor, on loopback.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import threading
from collections import Counter
from typing import Dict, List, Optional

from twisted.trial.unittest import SynchronousTestCase

from . import test_workers_twistd
from .test_workers_twistd import WORKERS, allRecords, workerOf, workerPids
from .twistd_helpers import LineLogger, recvUntil, waitFor


def holds(pid: int, path: str) -> int:
    """
    How many descriptors of process C{pid} are open on the file at C{path}.
    """
    found = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            found += os.readlink(f"/proc/{pid}/fd/{fd}") == os.path.realpath(path)
        except OSError:
            continue
    return found


class DirectOutputTests(SynchronousTestCase):
    """
    C{--workers 2}: each worker appends to the output itself.
    """

    setUp = test_workers_twistd.WorkersTests.setUp

    def start(self, *options: str) -> LineLogger:
        server = LineLogger(self, "--workers", str(WORKERS), "--format", "json", *options)
        server.twistd.waitForLog(f"All {WORKERS} workers listen", timeout=30)
        return server

    def test_workersWriteTheFile(self) -> None:
        """
        Both workers hold the output open and write their records to it;
        the supervisor holds it not at all.
        """
        server = self.start()
        clients = [server.connect() for _ in range(20)]
        for i, client in enumerate(clients):
            client.sendall(f"line {i}\n".encode())
        records = [json.loads(r) for r in server.waitForRecords(20, timeout=30)]
        self.assertEqual(sorted(Counter(workerOf(r["conn"]) for r in records)), [1, 2])
        self.assertEqual(holds(server.twistd.pid, server.outputPath), 0)
        for pid in workerPids(server.log()).values():
            self.assertEqual(holds(pid, server.outputPath), 1)
        for client in clients:
            client.close()
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_hangupReachesEveryWorker(self) -> None:
        """
        SIGHUP to the supervisor makes every worker reopen the output: after
        the file was moved away, both workers' records go to a new file.
        """
        server = self.start()
        os.rename(server.outputPath, server.outputPath + ".moved")
        os.kill(server.twistd.pid, signal.SIGHUP)
        for slot in range(1, WORKERS + 1):
            server.twistd.waitForLog(f"worker {slot}: Reopened {server.outputPath}", timeout=30)
        clients = [server.connect() for _ in range(20)]
        for i, client in enumerate(clients):
            client.sendall(f"after {i}\n".encode())
        records = [json.loads(r) for r in server.waitForRecords(20, timeout=30)]
        self.assertEqual(sorted(r["line"] for r in records), sorted(f"after {i}" for i in range(20)))
        self.assertEqual(sorted(Counter(workerOf(r["conn"]) for r in records)), [1, 2])
        for client in clients:
            client.close()
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_relativeOutputWithRundir(self) -> None:
        """
        A relative C{--output} names the file the supervisor opened, in the
        directory twistd started in, for the workers too, though twistd
        changes to C{--rundir} before they start.
        """
        rundir = os.path.abspath(self.mktemp())
        os.makedirs(rundir)
        server = LineLogger(
            self, "--workers", str(WORKERS), "--output", "records.out", twistdOptions=[f"--rundir={rundir}"]
        )
        server.twistd.waitForLog(f"All {WORKERS} workers listen", timeout=30)
        clients = [server.connect() for _ in range(20)]
        for i, client in enumerate(clients):
            client.sendall(f"relative {i}\n".encode())
        self.assertEqual(len(server.waitForRecords(20, timeout=30)), 20)
        for client in clients:
            client.close()
        self.assertEqual(server.stop(), -signal.SIGTERM)
        self.assertFalse(os.path.exists(os.path.join(rundir, "records.out")))

    def test_rotationLimitAcrossWorkers(self) -> None:
        """
        Ten clients on both workers send while the output rotates every
        50,000 bytes: every rotated file reached the limit and passed it by
        less than one record, and every line is in one of them, once.
        """
        limit = 50000
        server = self.start("--rotate-size", str(limit))
        sent: Dict[int, int] = {}

        def send(index: int) -> None:
            s = server.connect()
            for n in range(0, 3000, 100):
                s.sendall(b"".join(f"{index} {n + k} {'z' * 60}\n".encode() for k in range(100)))
            sent[index] = 3000
            s.close()

        threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)

        def everything() -> Optional[List[str]]:
            try:
                lines = allRecords(server.outputPath)
            except (FileNotFoundError, AssertionError):  # rotated meanwhile, or mid-write: look again
                return None
            return lines if len(lines) >= 30000 else None

        waitFor("30000 records", everything, timeout=120)
        self.assertEqual(server.stop(), -signal.SIGTERM)
        rotated = glob.glob(server.outputPath + ".[0-9]*")
        self.assertGreater(len(rotated), 10)
        for name in rotated:
            with open(name, "rb") as f:
                lines = f.read().splitlines(keepends=True)
            size = sum(map(len, lines))
            self.assertGreaterEqual(size, limit, name)
            self.assertLess(size - len(lines[-1]), limit, name)
        records = [json.loads(r) for r in allRecords(server.outputPath)]
        counts = Counter(r["line"] for r in records)
        expected = {f"{i} {n} {'z' * 60}" for i in range(10) for n in range(3000)}
        self.assertEqual(set(counts), expected)
        self.assertEqual([line for line, count in counts.items() if count > 1], [])
        self.assertEqual(sorted(Counter(workerOf(r["conn"]) for r in records)), [1, 2])

    def test_ackFsyncWhileRotating(self) -> None:
        """
        With C{--ack --fsync always} and a small C{--rotate-size}, each
        C{ok N} comes only once the N lines are in the output's files,
        whichever worker wrote them and whichever rotated.
        """
        server = self.start("--ack", "--fsync", "always", "--rotate-size", "2000")
        clients = [server.connect() for _ in range(10)]
        for round in range(1, 6):
            for i, client in enumerate(clients):
                client.sendall(f"acked {i} {round} {'a' * 100}\n".encode())
            for i, client in enumerate(clients):
                reply = recvUntil(client, f"ok {round}\r\n".encode(), timeout=30)
                self.assertTrue(reply.endswith(f"ok {round}\r\n".encode()), reply)
                lines = {json.loads(r)["line"] for r in allRecords(server.outputPath)}
                self.assertIn(f"acked {i} {round} {'a' * 100}", lines)
        for client in clients:
            client.close()
        self.assertEqual(server.stop(), -signal.SIGTERM)
        self.assertGreater(len(glob.glob(server.outputPath + ".[0-9]*")), 0, "never rotated")


class SupervisorOutputTests(SynchronousTestCase):
    """
    C{--workers 2 --worker-output supervisor}: the workers send their
    records to the supervisor, which writes them; the same promises.
    """

    setUp = test_workers_twistd.WorkersTests.setUp

    def start(self, *options: str) -> LineLogger:
        return test_workers_twistd.WorkersTests.start(self, "--worker-output", "supervisor", *options)  # type: ignore[arg-type]

    test_bothWorkersServe = test_workers_twistd.WorkersTests.test_bothWorkersServe
    test_sigtermMidBurst = test_workers_twistd.WorkersTests.test_sigtermMidBurst
    test_rotationAndHangupUnderLoad = test_workers_twistd.WorkersTests.test_rotationAndHangupUnderLoad
    test_ackFsyncAcrossWorkers = test_workers_twistd.WorkersTests.test_ackFsyncAcrossWorkers

    def test_supervisorWritesTheFile(self) -> None:
        """
        The supervisor holds the output open; the workers do not.
        """
        server = self.start()
        server.connect().sendall(b"one\n")
        server.waitForRecords(1, timeout=30)
        self.assertEqual(holds(server.twistd.pid, server.outputPath), 1)
        for pid in workerPids(server.log()).values():
            self.assertEqual(holds(pid, server.outputPath), 0)
        self.assertEqual(server.stop(), -signal.SIGTERM)
