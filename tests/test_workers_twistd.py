"""
C{--workers N} as a whole: a real twistd supervisor and its worker
processes, on loopback.
"""

from __future__ import annotations

import glob
import json
import os
import re
import resource
import shutil
import signal
import socket
import ssl
import threading
import time
from collections import Counter
from typing import Dict, List, Optional

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from logger_service.tap import Options

from .test_metrics import Samples, fetch, parse
from .twistd_helpers import LineLogger, freePort, makeTempDir, recvUntil, runTwistd, waitFor

WORKERS = 2


def workerPids(log: str) -> Dict[int, int]:
    """
    The newest pid of each worker slot, from the supervisor's log.
    """
    pids: Dict[int, int] = {}
    for slot, pid in re.findall(r"Started worker (\d+) \(pid (\d+)\)", log):
        pids[int(slot)] = int(pid)
    return pids


def alive(pid: int) -> bool:
    """
    Whether C{pid} is a live process (not gone, not a zombie).
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def workerOf(conn: int, workers: int = WORKERS) -> int:
    """
    The worker slot (from 1) that served connection number C{conn}.
    """
    return (conn - 1) % workers + 1


def allRecords(path: str) -> List[str]:
    """
    Every line of C{path} and of its rotated files, oldest first.
    """
    lines: List[str] = []
    rotated = sorted(glob.glob(path + ".*"), key=lambda p: -int(p.rsplit(".", 1)[1]))
    for name in [*rotated, path]:
        with open(name, "rb") as f:
            data = f.read()
        if data and not data.endswith(b"\n"):
            raise AssertionError(f"{name} ends in a torn record: {data[-80:]!r}")
        lines.extend(data.decode("utf-8").splitlines())
    return lines


class OptionsTests(SynchronousTestCase):
    """
    C{--workers} on the command line.
    """

    def test_default(self) -> None:
        """
        One worker, the single-process service, by default.
        """
        options = Options()
        options.parseOptions([])
        self.assertEqual(options["workers"], 1)

    def test_auto(self) -> None:
        """
        C{auto} is the number of usable cores.
        """
        options = Options()
        options.parseOptions(["--workers", "auto"])
        self.assertEqual(options["workers"], len(os.sched_getaffinity(0)))

    def test_bad(self) -> None:
        """
        Anything else is a usage error naming the option.
        """
        from twisted.python.usage import UsageError

        for value in ["0", "-1", "two"]:
            options = Options()
            error = self.assertRaises(UsageError, options.parseOptions, ["--workers", value])
            self.assertIn("--workers", str(error))

    def test_chatNeedsBroker(self) -> None:
        """
        C{--chat --workers 2} without C{--redis} is refused: a room would be
        split.
        """
        from twisted.python.usage import UsageError

        options = Options()
        error = self.assertRaises(UsageError, options.parseOptions, ["--chat", "--workers", "2"])
        self.assertIn("--redis", str(error))

    def test_metrics(self) -> None:
        """
        C{--metrics} goes with C{--workers}: the supervisor serves the
        totals.
        """
        options = Options()
        options.parseOptions(["--workers", "2", "--metrics", "tcp:9100:interface=127.0.0.1"])
        self.assertEqual((options["workers"], options["metrics"]), (2, "tcp:9100:interface=127.0.0.1"))


class WorkersTests(SynchronousTestCase):
    """
    A twistd with C{--workers 2}.
    """

    def setUp(self) -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < 4096 <= hard or soft < hard < 4096:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))

    def start(self, *options: str) -> LineLogger:
        server = LineLogger(self, "--workers", str(WORKERS), "--format", "json", *options)
        server.twistd.waitForLog(f"All {WORKERS} workers listen", timeout=30)
        return server

    def test_bothWorkersServe(self) -> None:
        """
        50 connections at once: each worker serves some, and every line is
        recorded once in the one output.
        """
        server = self.start()
        clients = [server.connect() for _ in range(50)]
        for i, client in enumerate(clients):
            client.sendall(f"line {i}\n".encode())
        for client in clients:
            client.close()
        records = [json.loads(r) for r in server.waitForRecords(50, timeout=30)]
        lines = sorted(r["line"] for r in records)
        self.assertEqual(lines, sorted(f"line {i}" for i in range(50)))
        served = Counter(workerOf(r["conn"]) for r in records)
        self.assertEqual(sorted(served), [1, 2], f"connections per worker: {dict(served)}")
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_sigtermMidBurst(self) -> None:
        """
        1,000 clients send 20 lines each; SIGTERM right after the last byte
        is sent, while the workers are still reading: every line is recorded
        exactly once.
        """
        server = self.start()
        clients = [server.connect(timeout=30) for _ in range(1000)]
        for i, client in enumerate(clients):
            client.sendall(b"".join(f"{i} {n} {'x' * 60}\n".encode() for n in range(20)))
        os.kill(server.twistd.pid, signal.SIGTERM)
        status = server.twistd.wait(120)
        for client in clients:
            client.close()
        self.assertEqual(status, -signal.SIGTERM, server.log)
        lines = [json.loads(r)["line"] for r in allRecords(server.outputPath)]
        counts = Counter(lines)
        expected = {f"{i} {n} {'x' * 60}" for i in range(1000) for n in range(20)}
        self.assertEqual(set(counts) - {""}, expected, f"lost: {len(expected - set(counts))}")
        self.assertEqual([line for line, count in counts.items() if count > 1 and line], [])

    def test_rotationAndHangupUnderLoad(self) -> None:
        """
        Ten clients send while the output rotates by size and SIGHUP
        reopens it: every line lands once, whole.
        """
        server = self.start("--rotate-size", "200000")
        stop = threading.Event()
        sent: Dict[int, int] = {}

        def send(index: int) -> None:
            s = server.connect()
            n = 0
            while not stop.is_set() or n < 100:
                s.sendall(b"".join(f"{index} {n + k} {'y' * 80}\n".encode() for k in range(50)))
                n += 50
            sent[index] = n
            s.close()

        def moved(to: str) -> bool:
            # The output reopened after the last SIGHUP (or just rotated)
            # is there once the writer has got to it: a busy one may take
            # a moment.
            try:
                os.rename(server.outputPath, to)
            except FileNotFoundError:
                return False
            return True

        threads = [threading.Thread(target=send, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for i in range(5):
            time.sleep(0.3)
            target = server.outputPath + ".moved" + str(i)
            waitFor("the output moved", lambda: moved(target), timeout=30)  # noqa: B023
            os.kill(server.twistd.pid, signal.SIGHUP)
        stop.set()
        for t in threads:
            t.join(60)
        total = sum(sent.values())

        def everything() -> Optional[bool]:
            # What a client sent may still wait in its own socket buffer,
            # which a shutdown does not wait for: wait for all of it first.
            count = 0
            for name in glob.glob(server.outputPath + "*"):
                try:
                    with open(name, "rb") as f:
                        count += f.read().count(b"\n")
                except FileNotFoundError:  # rotated meanwhile: look again
                    return None
            return True if count >= total else None

        waitFor(f"{total} records", everything, timeout=120)
        self.assertEqual(server.stop(), -signal.SIGTERM)
        lines: List[str] = []
        for name in sorted(glob.glob(server.outputPath + "*")):
            with open(name, "rb") as f:
                data = f.read()
            self.assertTrue(not data or data.endswith(b"\n"), f"{name} ends torn")
            lines.extend(json.loads(r)["line"] for r in data.decode().splitlines())
        counts = Counter(lines)
        expected = {f"{i} {n} {'y' * 80}" for i in range(10) for n in range(sent[i])}
        self.assertEqual(len(expected - set(counts)), 0, "lines lost")
        self.assertEqual([line for line, count in counts.items() if count > 1], [])
        self.assertGreater(len(glob.glob(server.outputPath + ".[0-9]*")), 0, "never rotated")

    def test_killedWorkerReplaced(self) -> None:
        """
        A worker killed with SIGKILL is logged and replaced; the service
        goes on serving.
        """
        server = self.start()
        pids = workerPids(server.log())
        os.kill(pids[1], signal.SIGKILL)
        server.twistd.waitForLog("Worker 1 (pid", timeout=30)
        server.twistd.waitForLog("Started worker 1 (pid", count=2, timeout=30)
        server.twistd.waitForLog("worker 1: LineLoggerFactory starting", count=2, timeout=30)
        replacement = workerPids(server.log())[1]
        self.assertNotEqual(replacement, pids[1])
        self.assertTrue(alive(replacement))
        clients = [server.connect() for _ in range(40)]
        for i, client in enumerate(clients):
            client.sendall(f"after {i}\n".encode())
            client.close()
        records = [json.loads(r) for r in server.waitForRecords(40, timeout=30)]
        self.assertEqual(sorted(r["line"] for r in records), sorted(f"after {i}" for i in range(40)))
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_supervisorKilledLeavesNoWorker(self) -> None:
        """
        kill -9 of the supervisor takes every worker down.
        """
        server = self.start()
        pids = list(workerPids(server.log()).values())
        self.assertEqual(len(pids), WORKERS)
        server.twistd.kill()

        def gone() -> Optional[bool]:
            return True if not any(alive(pid) for pid in pids) else None

        waitFor("workers gone", gone, timeout=30)

    def test_ackFsyncAcrossWorkers(self) -> None:
        """
        With C{--ack --fsync always}, C{ok N} comes only once the N lines
        are in the output file, whichever worker serves the connection.
        """
        server = self.start("--ack", "--fsync", "always")
        clients = [server.connect() for _ in range(10)]
        for i, client in enumerate(clients):
            client.sendall(f"acked {i} a\nacked {i} b\n".encode())
        for i, client in enumerate(clients):
            reply = recvUntil(client, b"ok 2\r\n", timeout=30)
            self.assertTrue(reply.endswith(b"ok 2\r\n"), reply)
            with open(server.outputPath, "rb") as f:
                data = f.read().decode()
            self.assertIn(f'"acked {i} a"', data)
            self.assertIn(f'"acked {i} b"', data)
            client.close()
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_unixSocket(self) -> None:
        """
        UNIX endpoints are served by the workers too, and the socket file
        stays until the supervisor stops.
        """
        server = LineLogger(self, "--workers", str(WORKERS), "--format", "json", unixSockets=1)
        server.twistd.waitForLog(f"All {WORKERS} workers listen", timeout=30)
        for i in range(10):
            s = server.connectUnix()
            s.sendall(f"unix {i}\n".encode())
            s.close()
        records = server.waitForRecords(10, timeout=30)
        self.assertEqual(sorted(json.loads(r)["line"] for r in records), sorted(f"unix {i}" for i in range(10)))
        self.assertTrue(os.path.exists(server.unixPaths[0]))
        self.assertEqual(server.stop(), -signal.SIGTERM)
        self.assertFalse(os.path.exists(server.unixPaths[0]))

    def test_readyOnceEveryWorkerListens(self) -> None:
        """
        With C{NOTIFY_SOCKET}, C{READY=1} goes out once every worker has
        adopted its sockets, and the daemon's status counts the workers.
        """
        workdir = makeTempDir(self)
        path = os.path.join(workdir, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(notify.close)
        notify.bind(path)
        previous = os.environ.get("NOTIFY_SOCKET")
        os.environ["NOTIFY_SOCKET"] = path
        try:
            server = LineLogger(self, "--workers", str(WORKERS), probe=False)
        finally:
            if previous is None:
                del os.environ["NOTIFY_SOCKET"]
            else:
                os.environ["NOTIFY_SOCKET"] = previous
        notify.settimeout(60)
        message = notify.recv(4096).decode()
        self.assertIn("READY=1", message)
        self.assertIn(f"STATUS={WORKERS} workers", message)
        self.assertEqual(server.twistd.log().count(f"worker {WORKERS}: LineLoggerFactory starting"), 1)
        self.assertIn(f"All {WORKERS} workers listen", server.twistd.log())
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_listensOnceEveryWorkerIsReady(self) -> None:
        """
        The port refuses connections until every worker is ready to accept
        (the supervisor logs that before its sockets listen): a client, a
        health check or a benchmark that finds the port open finds workers
        that serve it, not a listen queue that nobody reads for the
        quarter of a second and more the workers take to start.
        """
        # No probing connection: when the port first accepts is the test.
        server = LineLogger(self, "--workers", str(WORKERS), "--format", "json", probe=False)
        deadline = time.monotonic() + 60
        while True:
            client = connectOrNone(server.port)
            if client is not None:
                break
            self.assertTrue(server.twistd.running(), server.log())
            self.assertLess(time.monotonic(), deadline, server.log())
            time.sleep(0.002)
        self.assertIn(f"All {WORKERS} workers listen", server.log())
        client.sendall(b"first\n")
        client.close()
        self.assertEqual(json.loads(server.waitForRecords(1, timeout=30)[0])["line"], "first")
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_daemonAndPidfile(self) -> None:
        """
        As a daemon with C{--pidfile}, the supervisor's pid is in the file,
        its workers serve, and SIGTERM to that pid stops them all and
        removes the file.
        """
        workdir = makeTempDir(self)
        pidfile = os.path.join(workdir, "twistd.pid")
        output = os.path.join(workdir, "records.out")
        port = freePort()
        args = [f"--pidfile={pidfile}", f"--logfile={os.path.join(workdir, 'twistd.log')}", "linelogger"]
        args += ["--port", f"tcp:{port}:interface=127.0.0.1", "--workers", str(WORKERS), "--output", output]
        status, log, _ = runTwistd(self, args, workdir=workdir)
        self.assertEqual(status, 0, log)
        pid = waitFor("the pidfile", lambda: readPid(pidfile), timeout=30)

        def children() -> List[int]:
            found = []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat") as f:
                            fields = f.read().rsplit(")", 1)[1].split()
                    except OSError:
                        continue
                    if int(fields[1]) == pid and fields[0] != "Z":
                        found.append(int(entry))
            return found

        workers = waitFor("the workers", lambda: children() if len(children()) == WORKERS else None, timeout=30)
        for i in range(10):
            client = waitFor("listening", lambda: connectOrNone(port), timeout=30)
            client.sendall(f"daemon {i}\n".encode())
            client.close()

        def recorded() -> Optional[int]:
            with open(output, "rb") as f:
                count = f.read().count(b"daemon ")
            return count if count >= 10 else None

        waitFor("10 records", recorded, timeout=30)
        os.kill(pid, signal.SIGTERM)
        waitFor("the supervisor and workers gone", lambda: None if any(map(alive, [pid, *workers])) else True, 60)
        self.assertFalse(os.path.exists(pidfile))

    def test_metricsTotals(self) -> None:
        """
        With C{--metrics}, the one C{/metrics} shows the totals across the
        workers: every line and connection, whichever worker served it; and
        a killed worker's counts stay in them.
        """
        metricsPort = freePort()
        server = LineLogger(
            self,
            *("--workers", str(WORKERS), "--format", "json"),
            *("--metrics", f"tcp:{metricsPort}:interface=127.0.0.1"),
            # No probing connection: the counts are the test's own.
            probe=False,
        )
        server.twistd.waitForLog(f"All {WORKERS} workers listen", timeout=30)
        clients = [server.connect() for _ in range(50)]
        sent = 0
        for i, client in enumerate(clients):
            client.sendall(b"".join(f"metrics {i} {n}\n".encode() for n in range(i % 4 + 1)))
            sent += i % 4 + 1
        records = [json.loads(r) for r in server.waitForRecords(sent, timeout=30)]
        served = Counter(workerOf(r["conn"]) for r in records)
        self.assertEqual(sorted(served), [1, 2], f"connections per worker: {dict(served)}")
        last: Samples = {}

        def totals(lines: int, connections: int, open: int) -> Optional[Samples]:
            nonlocal last
            try:
                last = parse(fetch(metricsPort)[2])[0]
            except OSError:
                return None
            expected = {
                "linelogger_lines_received_total": lines,
                "linelogger_connections_total": connections,
                "linelogger_connections_open": open,
                "linelogger_records_written_total": lines,
            }
            return last if all(last.get(key) == value for key, value in expected.items()) else None

        try:
            samples = waitFor("the totals", lambda: totals(sent, 50, 50), timeout=30, interval=0.1)
        except AssertionError as e:
            raise AssertionError(f"{e}; last scrape: {last}") from None
        self.assertEqual(samples["linelogger_received_bytes_total"], sum(len(r["line"]) + 1 for r in records))
        self.assertEqual(samples["linelogger_written_bytes_total"], len(server.output()))
        for client in clients:
            client.close()
        waitFor("no connection open", lambda: totals(sent, 50, 0), timeout=30, interval=0.1)

        # A killed worker's counts stay; its replacement's add to them.
        os.kill(workerPids(server.log())[1], signal.SIGKILL)
        server.twistd.waitForLog("worker 1: LineLoggerFactory starting", count=2, timeout=30)
        more = [server.connect() for _ in range(10)]
        for client in more:
            client.sendall(b"after\n")
            client.close()
        try:
            waitFor(
                "the totals after a worker was replaced", lambda: totals(sent + 10, 60, 0), timeout=30, interval=0.1
            )
        except AssertionError as e:
            raise AssertionError(f"{e}; last scrape: {last}") from None
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_tlsEndpoint(self) -> None:
        """
        An C{ssl:} endpoint is served by the workers, which wrap the
        adopted sockets in TLS and accept once the sockets listen.
        """
        from .test_tls_proxy import HAVE_TLS, makeCertificate

        if not HAVE_TLS:
            raise SkipTest("TLS needs pyOpenSSL: pip install 'Twisted[tls]'")
        if shutil.which("openssl") is None:
            raise SkipTest("no openssl command to make a certificate")
        key, cert = makeCertificate(makeTempDir(self))
        tlsPort = freePort()
        server = self.start("--port", f"ssl:{tlsPort}:privateKey={key}:certKey={cert}:interface=127.0.0.1")
        context = ssl.create_default_context(cafile=cert)
        for i in range(10):
            with socket.create_connection(("127.0.0.1", tlsPort), timeout=10) as raw:
                with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(f"over tls {i}\n".encode())
                    tls.unwrap()
        records = [json.loads(r) for r in server.waitForRecords(10, timeout=30)]
        self.assertEqual(sorted(r["line"] for r in records), sorted(f"over tls {i}" for i in range(10)))
        self.assertEqual(server.stop(), -signal.SIGTERM)

    def test_haproxyWrapper(self) -> None:
        """
        A C{haproxy:} endpoint wraps the adopted sockets as it wraps its
        own: records name the peer the PROXY header gives.
        """
        proxied = freePort()
        server = self.start("--port", f"haproxy:tcp:{proxied}:interface=127.0.0.1")
        for i in range(10):
            client = socket.create_connection(("127.0.0.1", proxied), timeout=10)
            client.sendall(f"PROXY TCP4 192.0.2.{i + 1} 127.0.0.1 5000 {proxied}\r\nvia proxy {i}\n".encode())
            client.close()
        records = [json.loads(r) for r in server.waitForRecords(10, timeout=30)]
        self.assertEqual(sorted(r["peer"] for r in records), sorted(f"192.0.2.{i + 1}:5000" for i in range(10)))
        self.assertEqual(server.stop(), -signal.SIGTERM)


def readPid(path: str) -> Optional[int]:
    """
    The pid in C{path}, once it holds one.
    """
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def connectOrNone(port: int) -> Optional[socket.socket]:
    """
    A connection to 127.0.0.1:C{port}, or C{None} if refused.
    """
    try:
        return socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return None
