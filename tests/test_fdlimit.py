"""
Tests for L{logger_service.fdlimit}: the connection limit fitted to the
open-file limit, in the abstract and in a real twistd started under a low
C{ulimit -n}.
"""

from __future__ import annotations

import re
import resource
import socket
import subprocess
import threading
from typing import Any, Dict, List

from twisted.trial.unittest import SynchronousTestCase

from logger_service.fdlimit import RESERVE, AcceptPacer, fit, openDescriptors, plan

from .twistd_helpers import LineLogger, assertCleanShutdown, parseTextRecord, recvUntil


class PlanTests(SynchronousTestCase):
    """
    L{plan} keeps connections admitted and connections being refused below
    the limit.
    """

    def test_enough(self) -> None:
        """
        With descriptors to spare, the options stand and nothing is said.
        """
        self.assertEqual(plan(10000, 1024, 1, 1 << 20, 1 << 20, 10), (10000, 1024, None, 0))

    def test_justEnough(self) -> None:
        """
        Room for the connections, the listeners, the reserve and two rounds
        of refusals is enough; one descriptor less is not.
        """
        soft = 100 + 2 * (10 + 1) + 1 + RESERVE + 7
        self.assertEqual(plan(100, 10, 1, soft, soft, 7), (100, 10, None, 0))
        self.assertIsNotNone(plan(100, 10, 1, soft - 1, soft, 7).message)

    def test_tooFew(self) -> None:
        """
        Under C{ulimit -n 1024} the default 10000 connections cannot be:
        fewer are admitted and the backlog shrinks, all within the limit,
        and the message says so with the figures.
        """
        result = plan(10000, 1024, 2, 1024, 1024, 12)
        free = 1024 - 12 - 2 - RESERVE
        self.assertEqual(result.backlog, free // 8)
        self.assertEqual(result.maxConnections, free - 2 * (result.backlog + 1))
        self.assertEqual(result.acceptsPerTurn, result.backlog + 1)
        assert result.message is not None
        self.assertIn("1024 descriptors", result.message)
        self.assertIn("--max-connections 10000", result.message)
        self.assertIn(f"at most {result.maxConnections} connections", result.message)
        self.assertNotIn("\n", result.message)

    def test_noLimitAsked(self) -> None:
        """
        C{--max-connections 0} gets the descriptors' limit, quietly.
        """
        result = plan(0, 1024, 1, 4096, 4096, 10)
        free = 4096 - 10 - 1 - RESERVE
        self.assertEqual(result.backlog, free // 8)
        self.assertEqual(result.maxConnections, free - 2 * (free // 8 + 1))
        self.assertIsNone(result.message)

    def test_noRoom(self) -> None:
        """
        A limit with no room for one connection is an error that says what
        to do.
        """
        with self.assertRaises(ValueError) as caught:
            plan(10, 8, 1, 24, 24, 10)
        self.assertIn("ulimit -n", str(caught.exception))

    def test_fitRaisesTheSoftLimit(self) -> None:
        """
        L{fit} raises this process's soft limit to its hard limit.
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        if hard == resource.RLIM_INFINITY or hard < openDescriptors() + 200:
            self.skipTest(f"hard limit {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (openDescriptors() + 100, hard))
        fit(10, 8, 1)
        self.assertEqual(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)


class FakePort:
    """
    A listener as Twisted's TCP port paces itself: C{numberAccepts} grows
    by 20 after each loop that reached it.
    """

    def __init__(self) -> None:
        self.numberAccepts = 100
        self.loops: List[int] = []

    def doRead(self) -> None:
        self.loops.append(self.numberAccepts)
        self.numberAccepts += 20


class FakeTransport:
    """
    A connection's transport, which knows the listener that accepted it.
    """

    def __init__(self, server: FakePort) -> None:
        self.server = server


class AcceptPacerTests(SynchronousTestCase):
    """
    L{AcceptPacer} keeps a listener's accept loops short.
    """

    def test_pace(self) -> None:
        """
        Once a connection of a listener is watched, each of the listener's
        loops accepts at most C{most}, however Twisted grows the number;
        watching it again changes nothing.
        """
        port = FakePort()
        pacer = AcceptPacer(5)
        pacer.watch(FakeTransport(port))
        pacer.watch(FakeTransport(port))
        for _ in range(3):
            port.doRead()
        self.assertEqual(port.loops, [5, 5, 5])

    def test_unknownListener(self) -> None:
        """
        A transport without a recognisable listener (none at all, or one
        without an integer C{numberAccepts}) is left alone: nothing is
        paced, and the listener's loop is not replaced.
        """
        pacer = AcceptPacer(5)
        pacer.watch(object())
        port = FakePort()
        port.numberAccepts = None  # type: ignore[assignment]
        pacer.watch(FakeTransport(port))
        self.assertEqual(pacer._paced, {})
        self.assertNotIn("doRead", vars(port))
        self.assertIsNone(port.numberAccepts)


class LowLimitTwistdTests(SynchronousTestCase):
    """
    A real twistd whose open-file limit is 64 (soft and hard), as under
    C{ulimit -n 64}.
    """

    limit = 64
    clients = 100

    def startLimited(self, *options: str) -> LineLogger:
        """
        Start a L{LineLogger} whose twistd runs with C{RLIMIT_NOFILE} at
        L{limit}.
        """
        original = subprocess.Popen
        limit = self.limit

        def limited(*args: Any, **kwargs: Any) -> Any:
            kwargs["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            return original(*args, **kwargs)

        subprocess.Popen = limited  # type: ignore[misc,assignment]
        try:
            return LineLogger(self, *options)
        finally:
            subprocess.Popen = original  # type: ignore[misc]

    def test_hundredClients(self) -> None:
        """
        100 clients connect one after another and each sends a line (and
        stays connected): each hears either C{ok 1} (its line is recorded)
        or an C{error:} line, none a reset or a silent close; the log says
        once why fewer than C{--max-connections} are admitted.
        """
        server = self.startLimited("--ack")
        sockets: List[socket.socket] = []
        for i in range(self.clients):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=60)
            self.addCleanup(s.close)
            s.sendall(b"client %03d\n" % i)
            sockets.append(s)
        answers: Dict[int, bytes] = {}
        for i, s in enumerate(sockets):
            try:
                answers[i] = recvUntil(s, b"\n", timeout=60)
            except OSError as e:
                answers[i] = repr(e).encode()
        oks = sorted(i for i, answer in answers.items() if answer == b"ok 1\r\n")
        errors = [i for i, answer in answers.items() if answer.startswith(b"error: too many connections")]
        others = {i: answer for i, answer in answers.items() if i not in oks and i not in errors}
        print(f"\nunder ulimit -n {self.limit}: {len(oks)} admitted, {len(errors)} refused with an error: line")
        self.assertEqual(others, {}, server.log()[-3000:])
        match = re.search(r"The open-file limit .* admitting at most (\d+) connections", server.log())
        assert match is not None, server.log()
        admitted = int(match.group(1))
        self.assertLess(admitted, self.limit)
        self.assertEqual(len(oks), min(admitted, self.clients))
        records = server.waitForRecords(len(oks))
        self.assertEqual(sorted(parseTextRecord(r)[2] for r in records), [f"client {i:03d}" for i in oks])
        for s in sockets:
            s.close()
        status = server.stop()
        log = server.log()
        assertCleanShutdown(self, status, log)
        self.assertNotIn("EMFILE", log)
        self.assertIn("Refused a connection", log)

    def test_burst(self) -> None:
        """
        100 clients connect at the same moment, each from its own thread,
        send a line and wait for the answer: each hears C{ok 1} or an
        C{error:} line, and the process never runs out of descriptors.
        """
        server = self.startLimited("--ack")
        answers: Dict[int, bytes] = {}

        def client(i: int) -> None:
            try:
                with socket.create_connection(("127.0.0.1", server.port), timeout=60) as s:
                    s.sendall(b"client %03d\n" % i)
                    answers[i] = recvUntil(s, b"\n", timeout=60)
                    if answers[i] == b"ok 1\r\n":
                        # Admitted clients stay a moment, holding their slots.
                        threading.Event().wait(2)
            except OSError as e:
                answers.setdefault(i, repr(e).encode())

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        oks = [i for i, answer in answers.items() if answer == b"ok 1\r\n"]
        others = {i: a for i, a in answers.items() if i not in oks and not a.startswith(b"error: too many")}
        print(f"\nburst under ulimit -n {self.limit}: {len(oks)} admitted, {self.clients - len(oks)} refused")
        self.assertEqual(len(answers), self.clients)
        self.assertEqual(others, {}, server.log()[-3000:])
        self.assertGreater(len(oks), 0)
        server.waitForRecords(len(oks))
        status = server.stop()
        log = server.log()
        assertCleanShutdown(self, status, log)
        self.assertNotIn("EMFILE", log)
