"""
Fault and limit tests against the real C{twistd -n linelogger}: signals
during bursts, rotation and SIGHUP under load, a full disk, a stalled
standard output, connection limits, idle timeouts, rate limits, acks and
connection churn.

Like L{tests.test_twistd}, every test is a L{SynchronousTestCase} driving a
real twistd subprocess (L{tests.twistd_helpers.LineLogger}) over real
sockets on 127.0.0.1, with blocking sockets, threads and polling; every
wait is bounded.  Figures worth knowing (latencies, memory) are printed.
"""

from __future__ import annotations

import fcntl
import os
import re
import resource
import select
import signal
import socket
import struct
import subprocess
import termios
import threading
import time
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from twisted.trial.unittest import SynchronousTestCase

from logger_service.text import plural

from .test_metrics import fetch, parse
from .twistd_helpers import (
    LineLogger,
    assertCleanShutdown,
    canConnect,
    freePort,
    parseTextRecord,
    parseTime,
    recvAll,
    recvUntil,
    waitFor,
)

"""
Exit statuses of a twistd that shut down cleanly after SIGTERM (it kills
itself with the signal once its services have stopped); a clean exit is
also checked by the log's C{Server Shut Down.} line.
"""

NUMBERED = re.compile(r"([a-z])(\d{4}) (\d{7})(?: x*)?\Z")
"""A payload made by L{numbered}: tag, client, line number, padding."""


def numbered(tag: str, client: int, n: int, pad: int = 0) -> bytes:
    """
    Line C{n} of client C{client}, with its LF; C{pad} more bytes of C{x}.
    """
    return f"{tag}{client:04d} {n:07d}{' ' + 'x' * (pad - 1) if pad else ''}\n".encode("ascii")


def numbers(payloads: Iterable[str], tag: str) -> Dict[int, List[int]]:
    """
    The line numbers of L{numbered} payloads, by client, in the order given.

    @raise AssertionError: for any other payload.
    """
    found: Dict[int, List[int]] = defaultdict(list)
    for payload in payloads:
        match = NUMBERED.match(payload)
        if match is None or match.group(1) != tag:
            raise AssertionError(f"unexpected payload {payload!r}")
        found[int(match.group(2))].append(int(match.group(3)))
    return found


def readRecords(path: str) -> List[str]:
    """
    The records of a record file, which must hold complete records only:
    UTF-8, ending with LF, every line C{TIME SP PEER SP PAYLOAD}.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        raise AssertionError(f"{path} ends with an incomplete record: {data[-200:]!r}")
    records = data.decode("utf-8").split("\n")[:-1]
    for record in records:
        parseTextRecord(record)
    return records


def payloadsOf(records: Iterable[str]) -> List[str]:
    """
    The payloads of text records, in order.
    """
    return [parseTextRecord(record)[2] for record in records]


def localPort(s: socket.socket) -> int:
    """
    The local port of a connected TCP socket.
    """
    port: int = s.getsockname()[1]
    return port


def peerOf(s: socket.socket) -> str:
    """
    The PEER that records of C{s}'s lines show.
    """
    return f"127.0.0.1:{localPort(s)}"


def unsentBytes(s: socket.socket) -> int:
    """
    Bytes written to C{s} that the server's kernel has not acknowledged yet
    (C{SIOCOUTQ}).
    """
    count: int = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
    return count


def rss(pid: int) -> int:
    """
    The resident set size of process C{pid}, in bytes (C{VmRSS}).
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def sendCounted(s: socket.socket, data: bytes, stop: threading.Event, progress: Callable[[int], None]) -> bool:
    """
    Send all of C{data} on C{s} (which must have a short timeout), calling
    C{progress(n)} for every C{n} bytes the kernel took, unless C{stop} is
    set while the socket cannot take more.

    Unlike C{sendall} with a timeout, this always knows how much was sent.

    @return: whether all of C{data} was sent.
    """
    view = memoryview(data)
    while view:
        try:
            sent = s.send(view)
        except socket.timeout:
            if stop.is_set():
                return False
            continue
        view = view[sent:]
        progress(sent)
    return True


def readInThread(fd: int) -> Tuple[threading.Thread, List[bytes]]:
    """
    Read C{fd} to its end in a daemon thread.

    @return: the thread, and the list it appends each chunk read to.
    """
    chunks: List[bytes] = []

    def read() -> None:
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, chunks


class Received:
    """
    What the server sent each of several sockets, and which it closed.

    @ivar data: bytes received, by socket.
    @ivar closed: sockets whose peer closed (EOF or reset).
    """

    def __init__(self, sockets: Sequence[socket.socket]) -> None:
        self.sockets = list(sockets)
        self.data: Dict[socket.socket, bytes] = {s: b"" for s in sockets}
        self.closed: Set[socket.socket] = set()

    def poll(self, seconds: float, until: Callable[[], bool] = lambda: False) -> None:
        """
        Read for C{seconds}, or until C{until()} is true.
        """
        deadline = time.monotonic() + seconds
        while not until():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            open_ = [s for s in self.sockets if s not in self.closed]
            if not open_:
                return
            readable, _, _ = select.select(open_, [], [], min(remaining, 0.1))
            for s in readable:
                try:
                    chunk = s.recv(65536)
                except ConnectionError:
                    chunk = b""
                if chunk:
                    self.data[s] += chunk
                else:
                    self.closed.add(s)


class _ServerTestMixin:
    """
    Shared checks for tests that start a L{LineLogger}.
    """

    def stopCleanly(self, server: LineLogger) -> str:
        """
        SIGTERM the server, check that it shut down cleanly, return its log.
        """
        assert isinstance(self, SynchronousTestCase)
        status = server.stop()
        log = server.log()
        assertCleanShutdown(self, status, log)
        return log

    def waitForDisconnects(self, server: LineLogger, peers: Dict[str, int], timeout: float = 20.0) -> str:
        """
        Wait until the log says that each of C{peers} disconnected after
        sending its number of lines: every line was then received and
        handed to the recorder, and a SIGTERM writes it.
        """
        expected = [f"{peer} disconnected ({plural(count, 'line')};" for peer, count in peers.items()]

        def check() -> Optional[str]:
            log = server.log()
            return log if all(text in log for text in expected) else None

        try:
            return waitFor(f"{len(peers)} clients to disconnect", check, timeout, interval=0.05)
        except AssertionError as e:
            log = server.log()
            missing = [text for text in expected if text not in log]
            raise AssertionError(f"{e}; missing {missing[:5]}\n--- twistd log ---\n{log[-3000:]}") from None


class SigtermBurstTests(_ServerTestMixin, SynchronousTestCase):
    """
    SIGTERM while a thousand clients are sending.
    """

    clients = 1000
    threads = 8
    lineLength = len(numbered("b", 0, 0))

    def raiseFileLimit(self, needed: int) -> None:
        """
        Make sure this process (and so the twistd it starts) may open
        C{needed} descriptors; restore the limit after the test.
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < needed:
            if hard != resource.RLIM_INFINITY and hard < needed:
                self.skipTest(f"RLIMIT_NOFILE hard limit {hard} < {needed}")
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))

    def test_sigtermDuringThousandClientBurst(self) -> None:
        """
        1000 clients connect; once all are accepted, 8 threads send their
        numbered lines round after round (one line per client per round).
        When every client has sent at least 3 lines, each client's count of
        lines whose C{sendall} had returned is noted with how many of those
        bytes the server's kernel had acknowledged (C{SIOCOUTQ}), and twistd
        gets SIGTERM while the threads go on sending.

        twistd exits cleanly; each client's records are its lines 0, 1,
        2... in order, each exactly once (possibly followed by the start of
        the next one, recorded as a partial line), and include every line
        the server's kernel had acknowledged before the signal.
        """
        self.raiseFileLimit(2 * self.clients + 200)
        # Every connection logged: the log says when all are accepted.
        server = LineLogger(self, "--connection-log-rate", "0")
        sockets = [server.connect() for _ in range(self.clients)]
        ports = {localPort(s): i for i, s in enumerate(sockets)}

        def allAccepted() -> bool:
            accepted = {int(p) for p in re.findall(r"Got connection from 127\.0\.0\.1:(\d+)$", server.log(), re.M)}
            return set(ports) <= accepted

        waitFor("the server to accept 1000 clients", allAccepted, timeout=30.0, interval=0.1)

        sent = [0] * self.clients
        errors: Dict[int, Tuple[float, OSError]] = {}
        stop = threading.Event()
        self.addCleanup(stop.set)

        def blast(first: int) -> None:
            mine = list(range(first, self.clients, self.threads))
            n = 0
            while mine and not stop.is_set() and n < 10000:
                for i in list(mine):
                    try:
                        sockets[i].sendall(numbered("b", i, n))
                    except OSError as e:
                        errors[i] = (time.monotonic(), e)
                        mine.remove(i)
                    else:
                        sent[i] = n + 1
                n += 1
                time.sleep(0.002)

        threads = [threading.Thread(target=blast, args=(t,), daemon=True) for t in range(self.threads)]
        for t in threads:
            t.start()
        waitFor("every client to send 3 lines", lambda: min(sent) >= 3, timeout=30.0)

        sentBefore = list(sent)
        unsent = [unsentBytes(s) for s in sockets]
        ackedBefore = [max(0, sentBefore[i] * self.lineLength - unsent[i]) // self.lineLength for i in range(len(sent))]
        signalled = time.monotonic()
        os.kill(server.pid, signal.SIGTERM)
        status = server.twistd.wait(40.0)
        exited = time.monotonic()
        stop.set()
        for t in threads:
            t.join(20.0)
            self.assertFalse(t.is_alive(), "a client thread is stuck")

        for i, (when, error) in errors.items():
            self.assertGreaterEqual(when, signalled, f"client {i} failed before SIGTERM: {error!r}")
        log = server.log()
        assertCleanShutdown(self, status, log)

        recorded: Dict[int, List[int]] = defaultdict(list)
        partial: Set[int] = set()
        for record in server.records():
            _, peer, payload = parseTextRecord(record)
            i = ports[int(peer.rpartition(":")[2])]
            self.assertNotIn(i, partial, f"a record after the partial line of client {i}: {record!r}")
            match = NUMBERED.match(payload)
            if match:
                self.assertEqual((match.group(1), int(match.group(2))), ("b", i), record)
                recorded[i].append(int(match.group(3)))
            else:
                following = numbered("b", i, len(recorded[i])).decode()
                self.assertTrue(following.startswith(payload), f"{record!r} is not the start of {following!r}")
                partial.add(i)

        total = sum(len(v) for v in recorded.values())
        print(
            f"\nSIGTERM during a {self.clients}-client burst: exited {exited - signalled:.2f}s after the signal; "
            f"{total} lines and {len(partial)} partial lines recorded; before the signal {sum(sentBefore)} lines "
            f"had left sendall and {sum(ackedBefore)} were acknowledged by the server's kernel"
        )
        stopping = "\n".join(line for line in log.splitlines() if "Stopping" in line)
        for i in range(self.clients):
            got = recorded[i]
            self.assertEqual(got, list(range(len(got))), f"client {i}: a line lost, repeated or out of order")
            self.assertGreaterEqual(
                len(got),
                ackedBefore[i],
                f"client {i}: {ackedBefore[i]} lines acknowledged before SIGTERM, only {len(got)} recorded\n{stopping}",
            )
        self.assertGreaterEqual(total, sum(ackedBefore))


class RotationTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--rotate-size} and C{--rotate-keep} while clients send.
    """

    clients = 5
    linesEach = 10000
    rotateSize = 200000

    def test_rotationUnderLoad(self) -> None:
        """
        With C{--rotate-size 200000 --rotate-keep 1000}, 5 clients send
        10,000 numbered lines each, 200 lines per C{sendall}, at the same
        time.  Afterwards FILE and FILE.1 ... FILE.K (no gaps) hold complete
        records only; each rotated file reached the rotation size; read
        oldest first (FILE.K ... FILE.1, FILE), each client's lines appear
        exactly once and in order: nothing was lost, repeated or reordered
        across rotations.
        """
        server = LineLogger(self, "--rotate-size", str(self.rotateSize), "--rotate-keep", "1000")
        sockets = [server.connect() for _ in range(self.clients)]
        peers = {peerOf(s): self.linesEach for s in sockets}
        errors: List[BaseException] = []

        def send(c: int) -> None:
            try:
                for start in range(0, self.linesEach, 200):
                    sockets[c].sendall(b"".join(numbered("r", c, n, 20) for n in range(start, start + 200)))
                sockets[c].close()
            except BaseException as e:
                errors.append(e)

        started = time.monotonic()
        threads = [threading.Thread(target=send, args=(c,), daemon=True) for c in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60.0)
            self.assertFalse(t.is_alive(), "a sending thread is stuck")
        self.assertEqual(errors, [])
        self.waitForDisconnects(server, peers, timeout=60.0)
        elapsed = time.monotonic() - started
        self.stopCleanly(server)

        base = server.outputPath
        directory = os.path.dirname(base)
        suffixes = sorted(
            int(name.rpartition(".")[2])
            for name in os.listdir(directory)
            if name.startswith("records.out.") and name.rpartition(".")[2].isdigit()
        )
        self.assertEqual(suffixes, list(range(1, len(suffixes) + 1)), "rotated files have gaps")
        self.assertGreater(len(suffixes), 0, "no rotation happened")
        oldestFirst = [f"{base}.{k}" for k in reversed(suffixes)] + [base]
        sizes = [os.path.getsize(path) for path in oldestFirst]
        payloads: List[str] = []
        for path in oldestFirst:
            records = readRecords(path)
            self.assertTrue(records, f"{path} is empty")
            payloads += payloadsOf(records)
        for path, size in zip(oldestFirst[:-1], sizes):
            self.assertGreaterEqual(size, self.rotateSize, f"{path} was rotated before reaching the size")
        print(
            f"\nrotation: {len(payloads)} records in {len(oldestFirst)} files in {elapsed:.2f}s; "
            f"rotated file sizes {min(sizes[:-1])}..{max(sizes[:-1])} bytes, current file {sizes[-1]} bytes"
        )
        found = numbers(payloads, "r")
        self.assertEqual(sorted(found), list(range(self.clients)))
        for c in range(self.clients):
            self.assertEqual(found[c], list(range(self.linesEach)), f"client {c}: lost, repeated or reordered")
        self.assertEqual(len(payloads), self.clients * self.linesEach)


class ReopenTests(_ServerTestMixin, SynchronousTestCase):
    """
    SIGHUP reopens the output, as C{logrotate}'s C{create} mode needs.
    """

    clients = 4

    def test_sighupUnderLoad(self) -> None:
        """
        4 clients keep sending numbered lines (50 per send, every few
        milliseconds).  Meanwhile FILE is renamed FILE.old and twistd gets
        SIGHUP: it logs C{Reopening the output}, keeps running and accepting
        connections, and new records go to a new FILE.  After the clients
        stop and twistd exits cleanly, FILE.old then FILE hold each
        client's lines exactly once and in order, and both hold some.
        """
        server = LineLogger(self)
        sockets = [server.connect() for _ in range(self.clients)]
        for s in sockets:
            s.settimeout(0.2)
        counts = [0] * self.clients
        stop = threading.Event()
        self.addCleanup(stop.set)
        abort = threading.Event()
        self.addCleanup(abort.set)
        errors: List[BaseException] = []

        def send(c: int) -> None:
            n = 0
            try:
                while not stop.is_set():
                    chunk = b"".join(numbered("h", c, k) for k in range(n, n + 50))
                    if not sendCounted(sockets[c], chunk, abort, lambda sent: None):
                        return
                    n += 50
                    counts[c] = n
                    time.sleep(0.003)
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=send, args=(c,), daemon=True) for c in range(self.clients)]
        for t in threads:
            t.start()
        server.waitForRecords(2000, timeout=20.0)

        oldPath = server.outputPath + ".old"
        os.rename(server.outputPath, oldPath)
        hangup = time.monotonic()
        os.kill(server.pid, signal.SIGHUP)
        server.twistd.waitForLog("Reopening the output")
        waitFor("records in the new file", lambda: len(server.records()) >= 1000, timeout=20.0)
        reopened = time.monotonic() - hangup
        time.sleep(0.3)
        self.assertTrue(server.twistd.running(), "twistd died of SIGHUP")
        late = server.connect()
        latePeer = peerOf(late)
        late.sendall(b"after the hangup\n")
        late.close()

        stop.set()
        for t in threads:
            t.join(20.0)
            self.assertFalse(t.is_alive(), "a sending thread is stuck")
        self.assertEqual(errors, [])
        peers = {peerOf(s): counts[c] for c, s in enumerate(sockets)}
        peers[latePeer] = 1
        for s in sockets:
            s.close()
        self.waitForDisconnects(server, peers)
        log = self.stopCleanly(server)
        self.assertNotIn("Cannot reopen", log)

        old = payloadsOf(readRecords(oldPath))
        new = payloadsOf(readRecords(server.outputPath))
        print(
            f"\nSIGHUP under load: {len(old)} records in FILE.old, {len(new)} in the new FILE "
            f"(1000 there {reopened:.2f}s after the signal)"
        )
        self.assertTrue(old)
        self.assertIn("after the hangup", new)
        new.remove("after the hangup")
        found = numbers(old + new, "h")
        for c in range(self.clients):
            self.assertEqual(found[c], list(range(counts[c])), f"client {c}: lost, repeated or reordered")


class FullDiskTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--output /dev/full}: every write fails with ENOSPC.
    """

    def test_devFull(self) -> None:
        """
        A client sends lines to a server writing to C{/dev/full}.  The log
        says C{Cannot write records: ... No space left on device} once,
        however many retries follow (one a second, for over 3 seconds); the
        server keeps running and accepting connections; at SIGTERM it gives
        up on the unwritten records after C{--drain-timeout} and exits
        cleanly, without a traceback.
        """
        server = LineLogger(self, "--output", "/dev/full", "--drain-timeout", "1")
        client = server.connect()
        client.sendall(b"".join(b"doomed line %d\n" % n for n in range(100)))
        log = server.twistd.waitForLog("Cannot write records")
        failedAt = time.monotonic()
        errorLines = [line for line in log.splitlines() if "Cannot write records" in line]
        self.assertEqual(len(errorLines), 1, log)
        self.assertIn("No space left on device", errorLines[0])

        client.sendall(b"more doomed lines\n" * 10)
        time.sleep(max(0.0, failedAt + 3.5 - time.monotonic()))
        self.assertTrue(server.twistd.running(), server.log())
        late = server.connect()
        server.twistd.waitForLog(f"Got connection from {peerOf(late)}\n")
        log = server.log()
        self.assertEqual(log.count("Cannot write records"), 1, log)
        self.assertNotIn("Writing records works again", log)

        stopping = time.monotonic()
        log = self.stopCleanly(server)
        # Figures only: the server's own log lines here are errors, as they
        # should be, and would read as failures in a passing run.
        print(
            f"\n/dev/full: one write failure logged for {stopping - failedAt:.1f}s of retries; "
            f"exited {time.monotonic() - stopping:.2f}s after SIGTERM"
        )
        self.assertEqual(log.count("Cannot write records"), 1, log)
        self.assertIn("Exiting with", log)


class StalledStdoutTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--output -} into a pipe nobody reads, for a while.
    """

    clients = 2
    linesEach = 100000
    pad = 88
    lineLength = len(numbered("s", 0, 0, pad))

    def test_stalledPipe(self) -> None:
        """
        twistd writes records to its standard output, a pipe the test does
        not read at first, with C{--buffer 1000000}; 2 clients try to send
        10 MB each.  While the pipe is stalled, the log says input is paused,
        the clients stop making progress (their sends block) well before
        all 20 MB are sent, and twistd's resident memory stays within 60 MB
        of what it was at start.  Once the test reads the pipe, the clients
        finish and every line arrives on standard output exactly once, in
        order per client.
        """
        server = LineLogger(
            self, "--output", "-", "--buffer", "1000000", "--drain-timeout", "5", stdout=subprocess.PIPE
        )
        assert server.twistd.process.stdout is not None
        pipe = server.twistd.process.stdout.fileno()
        baseline = rss(server.pid)
        sockets = [server.connect() for _ in range(self.clients)]
        for s in sockets:
            s.settimeout(0.2)
            # A fixed send buffer: the kernel must not absorb megabytes per client.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
        progress = [0] * self.clients
        done = [False] * self.clients
        stop = threading.Event()
        self.addCleanup(stop.set)

        def send(c: int) -> None:
            def count(n: int) -> None:
                progress[c] += n

            for start in range(0, self.linesEach, 1000):
                chunk = b"".join(numbered("s", c, n, self.pad) for n in range(start, start + 1000))
                if not sendCounted(sockets[c], chunk, stop, count):
                    return
            done[c] = True

        threads = [threading.Thread(target=send, args=(c,), daemon=True) for c in range(self.clients)]
        for t in threads:
            t.start()
        total = self.clients * self.linesEach * self.lineLength
        server.twistd.waitForLog("pausing input", timeout=20.0)

        samples: List[Tuple[float, int, int]] = []
        stalledFor = 3.0
        started = time.monotonic()
        while time.monotonic() - started < stalledFor:
            samples.append((time.monotonic(), sum(progress), rss(server.pid)))
            time.sleep(0.1)
        peak = max(sample[2] for sample in samples)
        lastSecond = [sample for sample in samples if sample[0] >= samples[-1][0] - 1.0]
        stalledProgress = lastSecond[-1][1] - lastSecond[0][1]
        print(
            f"\nstalled stdout: RSS {baseline / 2**20:.1f} MB at start, peak {peak / 2**20:.1f} MB while stalled; "
            f"clients had sent {samples[-1][1] / 2**20:.1f} of {total / 2**20:.1f} MB after {stalledFor:.0f}s, "
            f"{stalledProgress} bytes in the last second"
        )
        self.assertLess(peak, baseline + 60 * 2**20)
        self.assertLess(samples[-1][1], total // 2, "the clients were not held back")
        self.assertLess(stalledProgress, 64 * 1024, "the clients still make progress against a stalled output")
        self.assertFalse(any(done))

        reader, chunks = readInThread(pipe)
        resumed = time.monotonic()
        for t in threads:
            t.join(60.0)
            self.assertFalse(t.is_alive(), "a sending thread is stuck after the pipe is read again")
        self.assertTrue(all(done))
        drained = time.monotonic() - resumed
        for s in sockets:
            s.close()
        lines = self.clients * self.linesEach
        waitFor(
            f"{lines} records on standard output",
            lambda: sum(c.count(b"\n") for c in list(chunks)) >= lines,
            timeout=60.0,
            interval=0.05,
        )
        print(f"stalled stdout: the clients finished {drained:.2f}s after the pipe was read again")
        self.stopCleanly(server)
        reader.join(10.0)
        self.assertFalse(reader.is_alive(), "standard output was not closed")

        data = b"".join(chunks)
        self.assertTrue(data.endswith(b"\n"))
        found = numbers(payloadsOf(data.decode("utf-8").split("\n")[:-1]), "s")
        for c in range(self.clients):
            self.assertEqual(found[c], list(range(self.linesEach)), f"client {c}: lost, repeated or reordered")


class ConnectionLimitTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--max-per-ip}, C{--max-connections} and C{--allow}.

    These servers start without the readiness probe connection, which
    would count against the limits.
    """

    def connectMany(self, server: LineLogger, count: int) -> List[socket.socket]:
        """
        Open C{count} connections, one after the other.
        """
        return [server.connect() for _ in range(count)]

    def checkRefusals(
        self, server: LineLogger, sockets: List[socket.socket], allowed: int, message: bytes
    ) -> List[socket.socket]:
        """
        Check that the first C{allowed} of C{sockets} stay open and get
        nothing, and that each of the others gets C{message} (one line) and
        is closed; return the open ones.
        """
        received = Received(sockets)
        refused = len(sockets) - allowed
        received.poll(15.0, until=lambda: len(received.closed) >= refused)
        # Give a wrongly refused (or late) connection time to show itself.
        received.poll(0.5)
        kept = [s for s in sockets if s not in received.closed]
        self.assertEqual(kept, sockets[:allowed], {peerOf(s): received.data[s] for s in sockets})
        for s in sockets[allowed:]:
            self.assertEqual(received.data[s], message)
        for s in kept:
            self.assertEqual(received.data[s], b"")
        return kept

    def sendAndRecord(self, server: LineLogger, sockets: List[socket.socket]) -> List[str]:
        """
        Each of C{sockets} sends a line naming its peer and closes; wait
        until the server has them all.

        @return: the lines sent.
        """
        peers = [peerOf(s) for s in sockets]
        for s, peer in zip(sockets, peers):
            s.sendall(f"kept {peer}\n".encode())
            s.close()
        self.waitForDisconnects(server, {peer: 1 for peer in peers})
        return [f"kept {peer}" for peer in peers]

    def test_maxPerIP(self) -> None:
        """
        C{--max-per-ip 5}: of 20 connections from 127.0.0.1, the first 5
        stay open; each of the other 15 gets C{error: too many connections
        from 127.0.0.1 (limit 5)} and EOF, and the log says so.  The 5
        kept clients' lines are recorded; once they are gone, a new client
        from 127.0.0.1 is accepted again.
        """
        server = LineLogger(self, "--max-per-ip", "5", probe=False)
        sockets = self.connectMany(server, 20)
        kept = self.checkRefusals(server, sockets, 5, b"error: too many connections from 127.0.0.1 (limit 5)\r\n")
        log = server.log()
        self.assertIn("Refused a connection from 127.0.0.1: too many connections from 127.0.0.1 (limit 5)", log)
        self.assertEqual(log.count("Got connection from"), 5, log)
        sent = self.sendAndRecord(server, kept)

        again = server.connect()
        again.sendall(b"accepted again\n")
        again.shutdown(socket.SHUT_WR)
        self.assertEqual(recvAll(again), b"")
        self.waitForDisconnects(server, {peerOf(again): 1})
        self.stopCleanly(server)
        self.assertEqual(sorted(payloadsOf(server.records())), sorted([*sent, "accepted again"]))

    def test_maxConnections(self) -> None:
        """
        C{--max-connections 3}: of 6 connections the first 3 stay open, the
        other 3 get C{error: too many connections (limit 3); try again
        later} and EOF; the kept clients' lines are recorded.
        """
        server = LineLogger(self, "--max-connections", "3", probe=False)
        sockets = self.connectMany(server, 6)
        kept = self.checkRefusals(server, sockets, 3, b"error: too many connections (limit 3); try again later\r\n")
        self.assertIn("Refused a connection from 127.0.0.1: too many connections (limit 3)", server.log())
        sent = self.sendAndRecord(server, kept)
        self.stopCleanly(server)
        self.assertEqual(sorted(payloadsOf(server.records())), sorted(sent))

    def test_allowRefuses(self) -> None:
        """
        C{--allow 10.0.0.0/8}: a client from 127.0.0.1 gets C{error: your
        address is not allowed to connect} and EOF, even after sending a
        line, which is not recorded; the log says so.
        """
        server = LineLogger(self, "--allow", "10.0.0.0/8", probe=False)
        client = server.connect()
        received = recvAll(client)
        self.assertEqual(received, b"error: your address is not allowed to connect\r\n")
        log = server.twistd.waitForLog("Refused a connection from 127.0.0.1: your address is not allowed")
        self.assertNotIn("Got connection from", log)
        late = server.connect()
        try:
            late.sendall(b"should not be recorded\n")
            reply: Optional[bytes] = recvUntil(late, b"\n")
        except ConnectionResetError:
            # The server closed with the line unread: the reset may beat the error line.
            reply = None
        if reply is not None:
            self.assertTrue(reply.startswith(b"error: your address is not allowed"), reply)
        self.stopCleanly(server)
        self.assertEqual(server.records(), [])

    def test_allowRepeatable(self) -> None:
        """
        C{--allow 10.0.0.0/8 --allow 127.0.0.0/8}: a client from 127.0.0.1
        is in the second network, so it is accepted and recorded.
        """
        server = LineLogger(self, "--allow", "10.0.0.0/8", "--allow", "127.0.0.0/8", probe=False)
        client = server.connect()
        client.sendall(b"allowed\n")
        client.shutdown(socket.SHUT_WR)
        self.assertEqual(recvAll(client), b"")
        self.waitForDisconnects(server, {peerOf(client): 1})
        self.stopCleanly(server)
        self.assertEqual(payloadsOf(server.records()), ["allowed"])


class IdleTimeoutTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--idle-timeout SECONDS}.
    """

    def test_idleTimeout(self) -> None:
        """
        C{--idle-timeout 1}: a client that sends nothing gets C{error: idle
        for 1 seconds; closing connection} and EOF about 1 s after it
        connected.  A client that sends a line every 0.3 s for 2 s stays
        open (receiving nothing) and its lines are recorded; once it stops,
        it too is closed about 1 s later.
        """
        server = LineLogger(self, "--idle-timeout", "1")
        message = b"error: idle for 1 seconds; closing connection\r\n"
        idle = server.connect()
        connected = time.monotonic()
        idleResult: List[Tuple[bytes, float]] = []

        def watch() -> None:
            data = recvAll(idle, timeout=10.0)
            idleResult.append((data, time.monotonic() - connected))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        active = server.connect()
        activeStarted = time.monotonic()
        sent = 0
        lastSent = activeStarted
        while True:
            readable, _, _ = select.select([active], [], [], 0)
            self.assertEqual(readable, [], f"the active client was sent something (or closed) after {sent} lines")
            openFor = time.monotonic() - activeStarted
            if openFor >= 2.0:
                break
            active.sendall(b"still here %d\n" % sent)
            lastSent = time.monotonic()
            sent += 1
            time.sleep(0.3)
        watcher.join(10.0)
        self.assertFalse(watcher.is_alive())
        (data, idleAfter) = idleResult[0]
        self.assertEqual(data, message)

        closing = recvAll(active, timeout=10.0)
        activeAfter = time.monotonic() - lastSent
        print(
            f"\nidle timeout 1s: idle client closed after {idleAfter:.2f}s; a client still open after "
            f"{openFor:.2f}s ({sent} lines) closed {activeAfter:.2f}s after its last line"
        )
        self.assertEqual(closing, message)
        self.assertGreaterEqual(idleAfter, 0.95)
        self.assertLess(idleAfter, 3.0)
        self.assertGreaterEqual(openFor, 2.0)
        self.assertLess(activeAfter, 3.0)
        log = self.stopCleanly(server)
        self.assertEqual(log.count("sent nothing for 1.0s: closing"), 2, log)
        self.assertEqual(payloadsOf(server.records()), [f"still here {n}" for n in range(sent)])


class IdleWhilePausedTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--idle-timeout} together with the server pausing its reads: a client
    whose input the server is not reading has not gone idle.

    When these were written both failed: the idle timer keeps running while
    reading is paused (by C{--max-rate} or by a full output), so a client
    that is sending is closed as idle and what it sent, unread, is lost.
    """

    def test_idleTimeoutWhileRateLimited(self) -> None:
        """
        C{--max-rate 10 --idle-timeout 1}: a client sends 30 lines at once
        (20 over the burst of 10, so the server stops reading it for about
        2 s) and, once they are recorded, 10 more, which wait unread in the
        server's kernel.  The client sent those before any second of
        silence, so it is not idle: all 40 lines are recorded (by about 3 s
        later), and it is not sent an idle error before that.
        """
        server = LineLogger(self, "--max-rate", "10", "--idle-timeout", "1")
        client = server.connect()
        peer = peerOf(client)
        started = time.monotonic()
        client.sendall(b"".join(numbered("i", 0, n) for n in range(30)))
        server.waitForRecords(30)
        client.sendall(b"".join(numbered("i", 0, n) for n in range(30, 40)))
        sentAt = time.monotonic() - started
        received = Received([client])
        received.poll(6.0, until=lambda: len(server.records()) >= 40 or bool(received.closed))
        log = server.log()
        events = "\n".join(line for line in log.splitlines() if peer in line)
        print(
            f"\nidle timeout while rate-limited: 10 more lines sent {sentAt:.2f}s after the first 30; "
            f"{len(server.records())} of 40 recorded; the client received {received.data[client]!r}"
        )
        self.assertNotIn(b"error: idle", received.data[client], f"closed as idle with unread input\n{events}")
        server.waitForRecords(40, timeout=10.0)
        self.stopCleanly(server)
        self.assertEqual(numbers(payloadsOf(server.records()), "i"), {0: list(range(40))})

    def test_idleTimeoutWhileOutputStalled(self) -> None:
        """
        C{--idle-timeout 1}, C{--output -} into a pipe the test does not
        read at first, C{--buffer 100000}: a client keeps sending until the
        server pauses input (the output is behind) and its sends block.
        For the 2.5 s the output stays stalled the client is sending, not
        idle, so it is not disconnected; once the pipe is read, all it
        sent arrives on standard output.
        """
        server = LineLogger(
            self,
            *("--output", "-", "--buffer", "100000", "--idle-timeout", "1", "--drain-timeout", "3"),
            stdout=subprocess.PIPE,
        )
        assert server.twistd.process.stdout is not None
        pipe = server.twistd.process.stdout.fileno()
        client = server.connect()
        peer = peerOf(client)
        client.settimeout(0.2)
        lines = 20000
        sent = [0]
        outcome: List[object] = []
        abort = threading.Event()
        self.addCleanup(abort.set)

        def send() -> None:
            try:
                data = b"".join(numbered("o", 0, n, 88) for n in range(lines))

                def count(n: int) -> None:
                    sent[0] += n

                outcome.append(sendCounted(client, data, abort, count))
            except OSError as e:
                outcome.append(e)

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        server.twistd.waitForLog("pausing input", timeout=20.0)
        time.sleep(2.5)
        stalledLog = server.log()
        events = "\n".join(line for line in stalledLog.splitlines() if peer in line)

        reader, chunks = readInThread(pipe)
        sender.join(30.0)
        self.assertFalse(sender.is_alive(), "the client is stuck after the pipe is read again")
        print(
            f"\nidle timeout while the output is stalled: the client sent {sent[0]} bytes; "
            f"its sender ended with {outcome!r}"
        )
        self.assertNotIn("sent nothing for", stalledLog, f"closed as idle while its input was paused\n{events}")
        self.assertEqual(outcome, [True])
        client.close()
        self.waitForDisconnects(server, {peer: lines})
        self.stopCleanly(server)
        reader.join(10.0)
        self.assertFalse(reader.is_alive(), "standard output was not closed")
        data = b"".join(chunks)
        self.assertEqual(numbers(payloadsOf(data.decode("utf-8").split("\n")[:-1]), "o"), {0: list(range(lines))})


class RateLimitTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--max-rate LINES_PER_SECOND}.
    """

    lines = 3000
    pad = 480

    def test_maxRate(self) -> None:
        """
        C{--max-rate 1000}: a client blasts 3000 lines of about 500 bytes
        (1.5 MB, many reads' worth).  The first second's worth of lines
        (the burst) arrives at once, the rest at about 1000 a second, so
        all 3000 take at least 1.5 s to be recorded (more than 2000 lines
        beyond the burst, less at most one read's worth); none is dropped
        and they are recorded in order.
        """
        server = LineLogger(self, "--max-rate", "1000")
        client = server.connect(timeout=30.0)
        data = b"".join(numbered("m", 0, n, self.pad) for n in range(self.lines))
        started = time.monotonic()
        client.sendall(data)
        sendallReturned = time.monotonic() - started
        records = server.waitForRecords(self.lines, timeout=30.0)
        elapsed = time.monotonic() - started
        client.close()
        times = [parseTime(parseTextRecord(r)[0]) for r in records]
        span = times[-1] - times[0]
        print(
            f"\nmax-rate 1000: {self.lines} lines of {len(data) // self.lines} bytes recorded after {elapsed:.2f}s "
            f"(records span {span:.2f}s; sendall returned after {sendallReturned:.2f}s)"
        )
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertGreaterEqual(span, 1.4)
        self.assertLess(elapsed, 20.0)
        self.stopCleanly(server)
        self.assertEqual(numbers(payloadsOf(server.records()), "m"), {0: list(range(self.lines))})


class AckTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--ack}: clients hear C{ok N} once N of their lines are written.
    """

    def readAcks(self, server: LineLogger, client: socket.socket, until: int) -> List[int]:
        """
        Read C{ok N} lines until N reaches C{until}; whenever one arrives,
        check that the file already holds at least N of this client's
        records.

        @return: every N received.
        """
        peer = peerOf(client)
        buffer = b""
        acks: List[int] = []
        deadline = time.monotonic() + 15.0
        while not acks or acks[-1] < until:
            if b"\r\n" not in buffer:
                remaining = deadline - time.monotonic()
                self.assertGreater(remaining, 0, f"timed out waiting for ok {until}; got {acks}")
                client.settimeout(remaining)
                chunk = client.recv(4096)
                self.assertTrue(chunk, f"closed while waiting for ok {until}; got {acks}")
                buffer += chunk
                continue
            line, buffer = buffer.split(b"\r\n", 1)
            match = re.fullmatch(rb"ok (\d+)", line)
            self.assertIsNotNone(match, f"not an ack: {line!r}")
            assert match is not None
            count = int(match.group(1))
            acks.append(count)
            written = sum(1 for r in server.records() if parseTextRecord(r)[1] == peer)
            self.assertGreaterEqual(written, count, f"ok {count} but only {written} records of {peer} in the file")
        self.assertEqual(buffer, b"", "more than the acks")
        return acks

    def checkAcks(self, *options: str) -> None:
        """
        Client A sends 5 lines at once and reads acks until C{ok 5}; client
        B sends 3 and reads until C{ok 3}; then A sends 5 more, one every
        60 ms, and reads until C{ok 10}.  A's acks rise strictly, include 5
        and end at exactly 10; B's end at exactly 3, although 5 of A's lines
        were written before B's: each counts only its own lines.  Each ack
        arrives only once the file holds that many of the client's records;
        nothing else is sent.
        """
        server = LineLogger(self, "--ack", *options)
        a = server.connect()
        b = server.connect()
        a.sendall(b"".join(b"a line %d\n" % n for n in range(5)))
        acksA = self.readAcks(server, a, 5)
        b.sendall(b"".join(b"b line %d\n" % n for n in range(3)))
        acksB = self.readAcks(server, b, 3)
        for n in range(5, 10):
            a.sendall(b"a line %d\n" % n)
            time.sleep(0.06)
        acksA += self.readAcks(server, a, 10)
        print(f"\nacks {' '.join(options) or '(no fsync)'}: A got ok {acksA}, B got ok {acksB}")
        for acks, last in ((acksA, 10), (acksB, 3)):
            self.assertEqual(acks, sorted(set(acks)), "acks do not rise strictly")
            self.assertEqual(acks[-1], last)
            self.assertGreater(acks[0], 0)
        self.assertIn(5, acksA)
        for s in (a, b):
            s.shutdown(socket.SHUT_WR)
            self.assertEqual(recvAll(s), b"", "an ack beyond the lines sent")
        log = self.stopCleanly(server)
        self.assertNotIn("Cannot", log)
        grouped: Dict[str, List[str]] = defaultdict(list)
        for record in server.records():
            _, peer, payload = parseTextRecord(record)
            grouped[peer].append(payload)
        self.assertEqual(grouped[peerOf(a)], [f"a line {n}" for n in range(10)])
        self.assertEqual(grouped[peerOf(b)], [f"b line {n}" for n in range(3)])

    def test_ack(self) -> None:
        """
        C{--ack} alone: see L{checkAcks}.
        """
        self.checkAcks()

    def test_ackWithFsyncAlways(self) -> None:
        """
        C{--ack --fsync always}: see L{checkAcks}.
        """
        self.checkAcks("--fsync", "always")


class ChurnTests(_ServerTestMixin, SynchronousTestCase):
    """
    Many short connections, one after another.
    """

    rounds = 5
    perRound = 2000

    def test_connectionChurnMemory(self) -> None:
        """
        5 rounds of 2000 connections, each sending one line and closing.
        After the first (warm-up) round and after the last, once the server
        has seen every connection close, its resident memory is measured:
        it grows by less than 4 MB over the last 4 rounds (8000
        connections).  Every line is recorded exactly once.
        """
        # Every disconnection logged: the log says when a round is over.
        server = LineLogger(self, "--connection-log-rate", "0")
        measured: List[int] = []
        started = time.monotonic()
        for r in range(self.rounds):
            for i in range(self.perRound):
                with socket.create_connection(("127.0.0.1", server.port), timeout=10.0) as s:
                    s.sendall(numbered("z", r, i))
            expected = (r + 1) * self.perRound

            def closed(expected: int = expected) -> bool:
                return server.log().count(" disconnected (1 line;") >= expected

            waitFor(f"{expected} connections closed", closed, timeout=30.0, interval=0.1)
            server.waitForRecords(expected, timeout=30.0)
            measured.append(rss(server.pid))
        elapsed = time.monotonic() - started
        growth = measured[-1] - measured[0]
        print(
            f"\nchurn: {self.rounds * self.perRound} connections in {elapsed:.2f}s; RSS after each round "
            f"{', '.join(f'{m / 2**20:.1f}' for m in measured)} MB; growth after warm-up {growth / 2**20:.2f} MB"
        )
        self.assertLess(growth, 4 * 2**20)
        self.stopCleanly(server)
        # Separate connections: their records need not be in connection order.
        found = {r: sorted(n) for r, n in numbers(payloadsOf(server.records()), "z").items()}
        self.assertEqual(found, {r: list(range(self.perRound)) for r in range(self.rounds)})


def startWithMetrics(testCase: SynchronousTestCase, *options: str) -> Tuple[LineLogger, int]:
    """
    Start linelogger with C{--metrics} on a free port and C{options}; wait
    until the metrics answer.

    @return: the server and its metrics port.
    """
    metricsPort = freePort()
    server = LineLogger(testCase, "--metrics", f"tcp:{metricsPort}:interface=127.0.0.1", *options, probe=False)

    def answers() -> bool:
        try:
            return fetch(metricsPort)[0] == 200
        except OSError:
            return False

    waitFor("the metrics page", answers, timeout=20)
    return server, metricsPort


def sample(port: int, key: str) -> Optional[float]:
    """
    One sample of a scrape of the metrics on C{port}.
    """
    return parse(fetch(port)[2])[0].get(key)


class SlowlorisTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--line-timeout}: a client trickling bytes cannot hold a connection.
    """

    def test_trickler(self) -> None:
        """
        With C{--idle-timeout 5 --line-timeout 7}, a client sending one byte
        every 2 s (never idle, never ending its line) is told C{error: no
        end of line in 7 seconds} and closed about 7 s after its first
        byte (a second away from any byte it sends, so that none is on its
        way as the server closes); the bytes it sent are recorded; a client ending a line every
        2 s meanwhile stays open.  The log says why, and
        C{linelogger_line_timeouts_total} counts it.
        """
        server, metricsPort = startWithMetrics(self, "--idle-timeout", "5", "--line-timeout", "7")
        trickler = server.connect()
        steady = server.connect()
        started = time.monotonic()
        sent = b""
        closedAfter: Optional[float] = None
        n = 0
        while time.monotonic() - started < 20:
            byte = b"abcdefghij"[n % 10 : n % 10 + 1]
            trickler.sendall(byte)
            sent += byte
            steady.sendall(b"steady %d\n" % n)
            n += 1
            readable, _, _ = select.select([trickler], [], [], 2.0)
            if readable:
                closedAfter = time.monotonic() - started
                break
        self.assertIsNotNone(closedAfter, "the trickler was never closed")
        assert closedAfter is not None
        answer = recvAll(trickler)
        self.assertEqual(answer, b"error: no end of line in 7 seconds; closing connection\r\n")
        self.assertGreaterEqual(closedAfter, 6.5)
        self.assertLess(closedAfter, 13.0)
        readable, _, _ = select.select([steady], [], [], 0)
        self.assertEqual(readable, [], "the steady client was closed or sent something")
        self.assertEqual(sample(metricsPort, "linelogger_line_timeouts_total"), 1)
        self.assertEqual(sample(metricsPort, "linelogger_idle_timeouts_total"), 0)
        print(f"\nline timeout 7s, a byte every 2s: closed {closedAfter:.2f}s after the first byte")
        log = self.stopCleanly(server)
        self.assertIn(f"{peerOf(trickler)} held an unfinished line for 7.0s: closing", log)
        payloads = payloadsOf(server.records())
        self.assertIn(sent.decode(), payloads)
        self.assertEqual([p for p in payloads if p.startswith("steady")], [f"steady {i}" for i in range(n)])


class LongLineCloseAckTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{--long-lines close --ack}.
    """

    def test_okBeforeClose(self) -> None:
        """
        Two lines and a long one in one packet: the client hears C{ok 3}
        (the two lines and the long line's first bytes, all recorded), then
        the error line, then EOF.
        """
        server = LineLogger(self, "--long-lines", "close", "--ack", "--max-line-length", "10")
        client = server.connect()
        client.sendall(b"one\ntwo\n" + b"x" * 30 + b"\nafter\n")
        answer = recvAll(client)
        self.assertEqual(answer, b"ok 3\r\nerror: line longer than 10 bytes; closing connection\r\n")
        self.assertEqual(payloadsOf(server.waitForRecords(3)), ["one", "two", "x" * 10])
        self.stopCleanly(server)


class ProxyHeaderTests(_ServerTestMixin, SynchronousTestCase):
    """
    C{haproxy:} listeners: connections without a valid PROXY header.
    """

    def test_noHeader(self) -> None:
        """
        A client that sends a plain line to a PROXY-protocol listener is
        closed, logged as refused and counted under C{no-proxy-header}; a
        connection that closes without a byte (a health check) is not
        counted.
        """
        port = freePort()
        server, metricsPort = startWithMetrics(self, "--port", f"haproxy:tcp:{port}:interface=127.0.0.1")
        waitFor("the proxied port", lambda: canConnect(("127.0.0.1", port)), timeout=20)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"no header here\n")
            self.assertEqual(recvAll(s), b"")
        key = 'linelogger_connections_refused_total{reason="no-proxy-header"}'
        waitFor("the refusal to be counted", lambda: sample(metricsPort, key) == 1, timeout=10)
        log = self.stopCleanly(server)
        self.assertIn("Refused a connection from 127.0.0.1: no valid PROXY header", log)
        self.assertEqual(server.records(), [])

    def test_silentConnections(self) -> None:
        """
        With the default C{--idle-timeout 0}, connections that never send a
        PROXY header count against C{--max-connections} while they wait,
        and are closed after C{--line-timeout}.
        """
        port = freePort()
        server, _ = startWithMetrics(
            self,
            *("--port", f"haproxy:tcp:{port}:interface=127.0.0.1"),
            *("--max-connections", "2", "--line-timeout", "5"),
        )
        # Not probed by connecting: the probe would hold one of the two.
        server.twistd.waitForLog(f"starting on {port}", timeout=20)
        # The server starts each timer after the kernel completed the
        # handshake, so the clock taken before connecting runs ahead of it.
        started = time.monotonic()
        silent = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(2)]
        for s in silent:
            self.addCleanup(s.close)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as third:
            self.assertIn(b"error: too many connections", recvAll(third, timeout=30))
        for s in silent:
            self.assertEqual(recvAll(s, timeout=60), b"")
        self.assertGreaterEqual(time.monotonic() - started, 5.0)
        log = self.stopCleanly(server)
        self.assertIn("no PROXY header within 5 seconds", log)
