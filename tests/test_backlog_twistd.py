"""
A shutdown as a whole, on a real twistd: connections the kernel had
already queued on a listening socket, not yet accepted, when SIGTERM came.

Their handshake is done and their lines are in the kernel, so what they
sent was sent before the signal, and the drain must record it: the
listener accepts what is queued before it closes (closing it would reset
them all).  The tests stop the processes (C{SIGSTOP}) so that the
connections wait in the queue, un-accepted, deterministically.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections import Counter
from typing import List, Optional, Sequence

from twisted.trial.unittest import SynchronousTestCase

from .test_workers_twistd import allRecords, workerPids
from .twistd_helpers import LineLogger, waitFor

CLIENTS = 300
"""More than Twisted accepts in one turn after a quiet spell (1)."""

LINES = 5


def payload(client: int) -> bytes:
    """
    What client number C{client} sends.
    """
    return b"".join(f"{client} {n} {'q' * 40}\n".encode() for n in range(LINES))


def stateOf(pid: int) -> str:
    """
    The state letter of process C{pid} (C{T}: stopped).
    """
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def pendingSignals(pid: int) -> int:
    """
    The signals pending for process C{pid} as a whole (C{ShdPnd}).
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("ShdPnd:"):
                return int(line.split()[1], 16)
    return 0


def stopped(pids: Sequence[int]) -> None:
    """
    C{SIGSTOP} every process of C{pids} and wait until each is stopped.
    """
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    for pid in pids:

        def isStopped(pid: int = pid) -> Optional[bool]:
            return stateOf(pid) == "T" or None

        waitFor(f"process {pid} stopped", isStopped, 30)


class QueuedConnectionsTests(SynchronousTestCase):
    """
    SIGTERM while connections wait in the listen queue.
    """

    def start(self, *options: str) -> LineLogger:
        # A quiet start (no probe connection), JSON records to count lines.
        return LineLogger(self, "--format", "json", "--backlog", "2048", *options, probe=False)

    def sendQueued(self, server: LineLogger) -> List[socket.socket]:
        """
        Connect L{CLIENTS} clients to the stopped server and send their
        lines: the kernel completes each handshake into the listen queue
        and keeps the lines for the connection nobody accepted yet.
        """
        clients = []
        for i in range(CLIENTS):
            client = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            self.addCleanup(client.close)
            client.sendall(payload(i))
            clients.append(client)
        return clients

    def assertEveryLineOnce(self, server: LineLogger, status: int) -> None:
        self.assertEqual(status, -signal.SIGTERM, server.log())
        lines = [json.loads(r)["line"] for r in allRecords(server.outputPath)]
        counts = Counter(lines)
        expected = {f"{i} {n} {'q' * 40}" for i in range(CLIENTS) for n in range(LINES)}
        lost = sorted(expected - set(counts), key=lambda line: [int(x) for x in line.split()[:2]])
        lostClients = sorted({int(line.split()[0]) for line in lost})
        self.assertEqual(
            lost, [], f"lost {len(lost)} lines of {len(lostClients)} clients: {lostClients[:10]}...\n{server.log()}"
        )
        self.assertEqual(set(counts) - expected, set())
        self.assertEqual([line for line, count in counts.items() if count > 1], [])

    def test_queuedAtSigterm(self) -> None:
        """
        One process, stopped while 300 clients connect and send their
        lines, is sent SIGTERM and continued: it records every line of
        every client once, those of the connections still in its listen
        queue included.
        """
        server = self.start()
        pid = server.twistd.pid
        stopped([pid])
        clients = self.sendQueued(server)
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)
        status = server.twistd.wait(120)
        self.assertEveryLineOnce(server, status)
        self.assertIn("Stopping: reading what", server.log())
        del clients

    def test_queuedAtSigtermWorkers(self) -> None:
        """
        With C{--workers 2}, the workers stopped while 300 clients connect
        and send: SIGTERM reaches each worker with connections in its
        listen queue, and every line of every client is recorded once.
        """
        server = self.start("--workers", "2")
        log = server.twistd.waitForLog("All 2 workers listen", timeout=60)
        workers = list(workerPids(log).values())
        self.assertEqual(len(workers), 2, log)
        supervisor = server.twistd.pid
        stopped(workers)
        clients = self.sendQueued(server)
        os.kill(supervisor, signal.SIGTERM)

        # The supervisor passes SIGTERM on; the workers get it once they
        # run again, with their queues still full.
        for worker in workers:

            def termPending(pid: int = worker) -> Optional[bool]:
                return bool(pendingSignals(pid) & (1 << (signal.SIGTERM - 1))) or None

            waitFor(f"SIGTERM pending for worker {worker}", termPending, 60)
        for worker in workers:
            os.kill(worker, signal.SIGCONT)
        status = server.twistd.wait(120)
        self.assertEveryLineOnce(server, status)
        del clients
