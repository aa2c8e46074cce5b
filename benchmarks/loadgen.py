"""
The load generator: one process, non-blocking sockets and C{selectors}.

Run by L{benchmarks.run} as::

    python -m benchmarks.loadgen 'JSON SPEC'

and prints one JSON object per line on standard output: the last one is the
result.  The spec's C{mode} is one of:

    - C{ingest}: open C{conns} connections at once (at most C{maxConnecting}
      connects in flight; with C{connectEvery}, one at a time, that many
      seconds apart, before any is sent on), send each C{lines} lines of C{size} bytes (LF
      included), half-close, read until the server closes.  With C{output},
      also wait until that file holds C{lines * conns} lines: the time is
      from the first connect until the last record is in the file.
    - C{idle}: open C{conns} connections and hold them; print an C{held}
      event and wait for C{go} on standard input; send one line on each
      and wait for the records; print C{recorded} and wait for C{go}; close.
    - C{chat}: connect C{conns} clients, wait until the server has accepted
      them all and every client hears every other's hello (a barrier), then
      every client sends C{lines} lines of C{size} bytes (CRLF included) at
      once; every client checks that it receives every other client's lines
      exactly once, and times each delivery from its send.  With C{rate}
      (lines per second, per client), paced instead: the C{conns * lines}
      lines go out one after another on a steady schedule, line C{k} (of
      client C{k % conns}) at C{k / (conns * rate)} seconds, so that each
      client sends C{rate} lines/s, staggered; the schedule is kept on a
      1 ms tick, and how late the generator was against it is reported.
    - C{capacity}: no sockets: how fast the chat receiving code parses
      deliveries, fed from memory.

Every line carries a unique id, C{cNNNNN-SSSSSS} (connection, sequence
number), padded with C{x} to the line size.  Every wait has a deadline, so a
stuck or dead server ends the run instead of hanging it.
"""

from __future__ import annotations

import errno
import gc
import json
import operator
import os
import re
import resource
import selectors
import socket
import sys
import time
from collections import deque
from functools import cache
from itertools import accumulate, repeat
from pathlib import Path
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from benchmarks.procinfo import acceptedCount, raiseNofile

ID_PATTERN = re.compile(rb'c(\d{5})-(\d{6}) ([^\r\n"]*)')
"""A line's id and filler, wherever it is in what a server wrote (a JSON
record's closing quote ends the filler)."""

TEXTS: Dict[str, Tuple[bytes, str]] = {
    "ascii": (b"", "x"),
    "zh": (b"", (Path(__file__).parent / "seed-zh.txt").read_text(encoding="utf-8").strip()),
    "latin": (b"", "Zo\u00eb's caf\u00e9 fa\u00e7ade, na\u00efve r\u00e9sum\u00e9 "),
    "bom": (b"<13>1 2026-12-03T00:00:00.000000Z bench app - - - \xef\xbb\xbf", "x"),
}
"""The texts lines are made of, by name: what comes before a line's id
(C{bom}: an RFC 5424 header whose message starts with a UTF-8 byte-order
mark, as syslog-ng's loggen sends), and the text its filler repeats (C{zh}:
the seed article's Chinese text, from C{seed-zh.txt})."""

HELLO_PATTERN = re.compile(rb"hello-from-(\d{5})")

CHUNK = 256 * 1024

CONNECTING, OPEN, CLOSED = range(3)


def lineFor(conn: int, seq: int, size: int, terminator: bytes = b"\n", text: str = "ascii") -> bytes:
    """
    The line number C{seq} of connection C{conn}: C{size} bytes, terminator
    included, made of C{text} (a name in L{TEXTS}).
    """
    head = TEXTS[text][0] + f"c{conn:05d}-{seq:06d} ".encode()
    return head + filler(size, terminator, text) + terminator


@cache
def filler(size: int, terminator: bytes, text: str = "ascii") -> bytes:
    """
    What follows the id in a line of C{size} bytes made of C{text}: its
    text repeated, cut after a whole character, then C{x} to the size.
    """
    before, unit = TEXTS[text]
    length = size - len(before) - 14 - len(terminator)
    encoded = unit.encode("utf-8")
    repeated = (encoded * (length // len(encoded) + 1))[:length]
    return repeated.decode("utf-8", "ignore").encode("utf-8").ljust(length, b"x")


def padding(size: int, terminator: bytes, text: str = "ascii") -> int:
    """
    How many bytes follow the id in a line of C{size} bytes.
    """
    return len(filler(size, terminator, text))


def cpuSeconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def emit(event: Dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


class Conn:
    __slots__ = (
        "index",
        "sock",
        "state",
        "mask",
        "out",
        "outOffset",
        "closeAfterSend",
        "shutdownSent",
        "tConnected",
        "sentLines",
        "sentBytes",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.sock: Optional[socket.socket] = None
        self.state = CONNECTING
        self.mask = 0
        self.out: Optional[memoryview] = None
        self.outOffset = 0
        self.closeAfterSend = False
        self.shutdownSent = False
        self.tConnected = 0.0
        self.sentLines = 0
        self.sentBytes = 0


class FileCounter:
    """
    Counts the lines of a file that some server appends to.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.count = 0
        self._file: Optional[Any] = None

    def poll(self) -> int:
        if self._file is None:
            try:
                self._file = open(self.path, "rb")  # noqa: SIM115 - kept open across polls
            except OSError:
                return self.count
        while True:
            data = self._file.read(1 << 20)
            if not data:
                return self.count
            self.count += data.count(b"\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class Engine:
    """
    Many non-blocking client connections on one selector.
    """

    def __init__(self, host: str, port: int) -> None:
        self.address = (host, port)
        self.sel = selectors.DefaultSelector()
        self.conns: List[Conn] = []
        self.queue: Deque[Conn] = deque()
        self.maxConnecting = 1000
        self.connecting = 0
        self.connected = 0
        self.connectFailed = 0
        self.closedByServer = 0
        self.resets = 0
        self.finished = 0
        self.sendsDone = 0
        self.tLastSent = 0.0
        self.tLastConnected = 0.0
        self.errors: Dict[str, int] = {}
        self.onData: Optional[Callable[[Conn, bytes, float], None]] = None
        self.onSent: Optional[Callable[[Conn, int, float], None]] = None
        self.stdinBuffer = b""
        self.stdinFd: Optional[int] = None
        self.pace: Optional[Callable[[], bool]] = None
        self.noDelay = False

    def _error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1

    def open(self, count: int, maxConnecting: int, data: Optional[Callable[[int], bytes]] = None) -> None:
        """
        Connect C{count} connections, at most C{maxConnecting} at a time; a
        connection given C{data} sends it, half-closes and reads until EOF.
        """
        self.maxConnecting = maxConnecting
        for i in range(count):
            conn = Conn(len(self.conns))
            if data is not None:
                conn.out = memoryview(data(i))
                conn.closeAfterSend = True
            self.conns.append(conn)
            self.queue.append(conn)
        self._startConnects()

    def _startConnects(self) -> None:
        while self.queue and self.connecting < self.maxConnecting and (self.pace is None or self.pace()):
            conn = self.queue.popleft()
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            except OSError as e:
                self._fail(conn, f"socket: {e.strerror}")
                continue
            sock.setblocking(False)
            if self.noDelay:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = sock.connect_ex(self.addressFor(conn))
            if err not in (0, errno.EINPROGRESS):
                sock.close()
                self._fail(conn, f"connect: {os.strerror(err)}")
                continue
            conn.sock = sock
            self.connecting += 1
            conn.mask = selectors.EVENT_WRITE
            self.sel.register(sock, conn.mask, conn)

    def addressFor(self, conn: Conn) -> Tuple[str, int]:
        """
        Where connection C{conn} connects: the server's address.
        """
        return self.address

    def _fail(self, conn: Conn, why: str) -> None:
        conn.state = CLOSED
        self.connectFailed += 1
        self.finished += 1
        self._error(why)

    def _interest(self, conn: Conn) -> None:
        mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.out is not None else 0)
        if mask != conn.mask:
            conn.mask = mask
            assert conn.sock is not None
            self.sel.modify(conn.sock, mask, conn)

    def _close(self, conn: Conn) -> None:
        if conn.state == CLOSED:
            return
        if conn.state == CONNECTING:
            self.connecting -= 1
        conn.state = CLOSED
        self.finished += 1
        if conn.sock is not None:
            self.sel.unregister(conn.sock)
            conn.sock.close()
            conn.sock = None

    def _event(self, conn: Conn, mask: int, now: float) -> None:
        sock = conn.sock
        assert sock is not None
        if conn.state == CONNECTING:
            self.connecting -= 1
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                self.sel.unregister(sock)
                sock.close()
                conn.sock = None
                self._fail(conn, f"connect: {os.strerror(err)}")
            else:
                conn.state = OPEN
                conn.tConnected = self.tLastConnected = now
                self.connected += 1
                self._flush(conn, now)
                if conn.state == OPEN:
                    self._interest(conn)
            self._startConnects()
            return
        if mask & selectors.EVENT_READ:
            self._read(conn, now)
        if conn.state == OPEN and mask & selectors.EVENT_WRITE:
            self._flush(conn, now)
            if conn.state == OPEN:
                self._interest(conn)

    def _read(self, conn: Conn, now: float) -> None:
        assert conn.sock is not None
        try:
            data = conn.sock.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            self.resets += 1
            self._error(f"recv: {e.strerror}")
            self._close(conn)
            return
        if not data:
            if not conn.shutdownSent:
                self.closedByServer += 1
            self._close(conn)
            return
        if self.onData is not None:
            self.onData(conn, data, now)

    def _flush(self, conn: Conn, now: float) -> None:
        sock = conn.sock
        assert sock is not None
        out = conn.out
        while out is not None:
            try:
                n = sock.send(out[conn.outOffset : conn.outOffset + CHUNK])
            except BlockingIOError:
                return
            except OSError as e:
                self.resets += 1
                self._error(f"send: {e.strerror}")
                self._close(conn)
                return
            conn.outOffset += n
            conn.sentBytes += n
            if self.onSent is not None:
                self.onSent(conn, conn.sentBytes, now)
            if conn.outOffset >= len(out):
                out = conn.out = None
                conn.outOffset = 0
                self.sendsDone += 1
                self.tLastSent = now
                if conn.closeAfterSend:
                    self._shutdown(conn)

    def _shutdown(self, conn: Conn) -> None:
        if conn.sock is not None and not conn.shutdownSent:
            conn.shutdownSent = True
            try:
                conn.sock.shutdown(socket.SHUT_WR)
            except OSError as e:
                self._error(f"shutdown: {e.strerror}")

    def send(self, conn: Conn, data: bytes, closeAfter: bool = False) -> None:
        """
        Queue C{data} on an open connection (and half-close after it).
        """
        if conn.state != OPEN:
            return
        conn.out = memoryview(data) if data else None
        conn.outOffset = 0
        conn.closeAfterSend = closeAfter
        now = time.monotonic()
        if conn.out is None:
            if closeAfter:
                self._shutdown(conn)
        else:
            self._flush(conn, now)
        if conn.state == OPEN:
            self._interest(conn)

    def write(self, conn: Conn, data: bytes) -> None:
        """
        Append C{data} to what an open connection has yet to send, and send
        what the socket takes now.
        """
        if conn.state != OPEN or not data:
            return
        if conn.out is not None:
            conn.out = memoryview(bytes(conn.out[conn.outOffset :]) + data)
        else:
            conn.out = memoryview(data)
        conn.outOffset = 0
        self._flush(conn, time.monotonic())
        if conn.state == OPEN:
            self._interest(conn)

    def closeAll(self) -> None:
        """
        Half-close every open connection (and drop those still connecting).
        """
        for conn in self.conns:
            if conn.state == OPEN:
                self.send(conn, b"", closeAfter=True)
            elif conn.state == CONNECTING:
                self.queue.clear()
                if conn.sock is not None:
                    self._close(conn)
                else:
                    conn.state = CLOSED
                    self.finished += 1

    def watchStdin(self) -> None:
        self.stdinFd = sys.stdin.fileno()
        os.set_blocking(self.stdinFd, False)
        self.sel.register(self.stdinFd, selectors.EVENT_READ, None)

    def run(
        self,
        until: Callable[[], bool],
        deadline: float,
        tick: Optional[Callable[[float], None]] = None,
        tickEvery: float = 0.005,
    ) -> bool:
        """
        Serve events until C{until()} or the deadline; C{tick} is called
        at most every C{tickEvery} seconds.  Return C{until()}.
        """
        lastTick = 0.0
        while not until():
            now = time.monotonic()
            if now >= deadline:
                return False
            if self.queue and self.pace is not None:
                self._startConnects()
            if tick is not None and now - lastTick >= tickEvery:
                lastTick = now
                tick(now)
                if until():
                    break
            if self.pace is not None:
                timeout = min(deadline - now, 0.0005)
            else:
                timeout = min(deadline - now, tickEvery if tick is not None else 0.05)
            for key, mask in self.sel.select(timeout):
                if key.data is None:
                    try:
                        self.stdinBuffer += os.read(key.fd, 4096) or b"\n"
                    except BlockingIOError:
                        pass
                    continue
                self._event(key.data, mask, time.monotonic())
        return True

    def waitForCommand(self, deadline: float) -> bool:
        """
        Keep serving until a line arrives on standard input.
        """
        ok = self.run(lambda: b"\n" in self.stdinBuffer, deadline)
        self.stdinBuffer = self.stdinBuffer.partition(b"\n")[2]
        return ok

    def openCount(self) -> int:
        return sum(1 for conn in self.conns if conn.state == OPEN)


def ingest(spec: Dict[str, Any]) -> Dict[str, Any]:
    conns, lines, size = spec["conns"], spec["lines"], spec["size"]
    timeout = spec["timeout"]
    text = spec.get("text", "ascii")
    payloads = [b"".join(lineFor(c, s, size, b"\n", text) for s in range(lines)) for c in range(conns)]
    engine = Engine(spec["host"], spec["port"])
    counter = FileCounter(spec["output"]) if spec.get("output") else None
    expected = conns * lines
    state: Dict[str, float] = {"records": 0.0, "eof": 0.0, "grew": 0.0, "seen": 0.0}

    def lost() -> bool:
        return bool(engine.resets or engine.connectFailed or engine.closedByServer)

    def tick(now: float) -> None:
        if counter is None or state["records"]:
            return
        if engine.sendsDone + engine.connectFailed >= conns or engine.finished >= conns:
            count = counter.poll()
            if count != state["seen"]:
                state["seen"], state["grew"] = count, now
            if count >= expected:
                # When the read that found the last record ended: the time
                # it began may be before the server wrote it.
                state["records"] = time.monotonic()
                emit({"event": "clock", "phase": "stop"})

    def done() -> bool:
        if engine.finished < conns:
            return False
        now = time.monotonic()
        if not state["eof"]:
            state["eof"] = state["grew"] = now
        if counter is None or state["records"]:
            return True
        # Some lines can never arrive: stop once the file stops growing.
        return lost() and now - state["grew"] > 1.0

    every = spec.get("connectEvery", 0.0)
    last = {"t": 0.0}

    def pace() -> bool:
        now = time.monotonic()
        if engine.connecting or now - last["t"] < every:
            return False
        last["t"] = now
        return True

    cpu0 = cpuSeconds()
    emit({"event": "clock", "phase": "start"})
    t0 = time.monotonic()
    if every:
        # Connect first, one at a time and at most one every C{every} seconds,
        # so that a short listen queue does not overflow; then send on all.
        engine.pace = pace
        engine.open(conns, 1)
        engine.run(lambda: engine.connected + engine.connectFailed >= conns, t0 + timeout)
        engine.pace = None
        for conn in engine.conns:
            engine.send(conn, payloads[conn.index], closeAfter=True)
    else:
        engine.open(conns, spec.get("maxConnecting", conns), lambda i: payloads[i])
    ok = engine.run(done, t0 + timeout, tick) and not lost()
    tEnd = state["records"] if counter is not None else state["eof"]
    result: Dict[str, Any] = {
        "event": "result",
        "completed": ok,
        "elapsed": (tEnd - t0) if tEnd else None,
        "sent_s": engine.tLastSent - t0 if engine.tLastSent else None,
        "eof_s": state["eof"] - t0 if state["eof"] else None,
        "last_connect_s": engine.tLastConnected - t0 if engine.tLastConnected else None,
        "connected": engine.connected,
        "connect_failed": engine.connectFailed,
        "closed_by_server": engine.closedByServer,
        "resets": engine.resets,
        "records_seen": counter.count if counter is not None else None,
        "errors": engine.errors,
        "gen_cpu_s": cpuSeconds() - cpu0,
    }
    if lost():
        result["why"] = (
            f"{engine.connectFailed} connects failed, {engine.resets} connections reset, "
            f"{engine.closedByServer} closed early by the server: {engine.errors}"
        )
    elif not ok:
        result["why"] = (
            f"timed out after {timeout:.0f} s: {engine.finished}/{conns} connections finished, "
            f"{counter.count if counter else '-'} of {expected} records in the file"
        )
    return result


def idle(spec: Dict[str, Any]) -> Dict[str, Any]:
    conns, size = spec["conns"], spec["size"]
    t0 = time.monotonic()
    deadline = t0 + spec["timeout"]
    engine = Engine(spec["host"], spec["port"])
    engine.watchStdin()
    counter = FileCounter(spec["output"])
    cpu0 = cpuSeconds()
    engine.open(conns, spec.get("maxConnecting", 1000))
    connectDeadline = min(deadline, t0 + spec.get("connectTimeout", 30.0))
    allConnected = engine.run(lambda: engine.connected + engine.connectFailed >= conns, connectDeadline)
    tHeld = time.monotonic()
    emit(
        {
            "event": "held",
            "connected": engine.connected,
            "connect_failed": engine.connectFailed,
            "still_connecting": conns - engine.connected - engine.connectFailed,
            "open": engine.openCount(),
            "connect_s": (engine.tLastConnected - t0) if allConnected else None,
        }
    )
    engine.waitForCommand(deadline)
    openBefore = engine.openCount()
    for conn in engine.conns:
        engine.send(conn, lineFor(conn.index, 0, size))
    sent = engine.openCount()

    recordsDone = {"t": 0.0}

    def tick(now: float) -> None:
        if counter.poll() >= sent and not recordsDone["t"]:
            recordsDone["t"] = time.monotonic()

    recorded = engine.run(
        lambda: bool(recordsDone["t"]), min(deadline, time.monotonic() + spec.get("recordTimeout", 30)), tick, 0.01
    )
    emit(
        {
            "event": "recorded",
            "open_before_lines": openBefore,
            "lines_sent": sent,
            "records_seen": counter.count,
            "records_complete": recorded,
            "open": engine.openCount(),
        }
    )
    engine.waitForCommand(deadline)
    openAtEnd = engine.openCount()
    engine.closeAll()
    closed = engine.run(lambda: engine.finished >= conns, min(deadline, time.monotonic() + 15))
    return {
        "event": "result",
        "completed": allConnected and recorded and closed,
        "connected": engine.connected,
        "connect_failed": engine.connectFailed,
        "connect_s": (engine.tLastConnected - t0) if allConnected else None,
        "held_s": time.monotonic() - tHeld,
        "open_at_end": openAtEnd,
        "closed_by_server": engine.closedByServer,
        "resets": engine.resets,
        "records_seen": counter.count,
        "errors": engine.errors,
        "gen_cpu_s": cpuSeconds() - cpu0,
        "why": None
        if allConnected and recorded
        else (
            f"{engine.connected}/{conns} connected within {spec.get('connectTimeout', 30.0):.0f} s"
            if not allConnected
            else f"{counter.count}/{sent} records in the file"
        ),
    }


class ChatReceiver:
    """
    What every chat client receives.

    While the clock runs, a client only keeps what it receives, with the time
    each chunk arrived; its line ends are counted (in C) only once it has
    received as many bytes as the lines it waits for hold at the least, or
    once nothing has come for a while.  Once the clock has stopped,
    L{analyze} reads every line back: each id must come exactly once from
    every other client, and its latency is the arrival time of the chunk that
    ended it minus the time it was sent.
    """

    def __init__(self, conns: int, lines: int, size: int, text: str = "ascii") -> None:
        self.conns = conns
        self.lines = lines
        self.filler = filler(size, b"\r\n", text)
        self.pattern = re.compile(rb"c(\d{5}-\d{6}) ([^\r\n]*)\r?\n")
        self.idPattern = re.compile(rb"c(\d{5}-\d{6}) ")
        self.intact = (b" " + self.filler + b"\r\n", b" " + self.filler + b"\n")
        self.sendTimes: Dict[bytes, float] = {}
        self.keys = [[b"%05d-%06d" % (sender, seq) for seq in range(lines)] for sender in range(conns)]
        self.shortest = size - 1
        """The fewest bytes a line can arrive in: C{size}, CR dropped."""
        self.names = [b"%05d" % i for i in range(conns)]
        self.hellos: List[Set[int]] = [set() for _ in range(conns)]
        self.partial = [b""] * conns
        self.measuring = False
        self.chunks: List[List[bytes]] = [[] for _ in range(conns)]
        self.counts: List[List[int]] = [[] for _ in range(conns)]
        self.times: List[List[float]] = [[] for _ in range(conns)]
        self.newlines = [0] * conns
        self.received = [0] * conns
        self.tLastData = 0.0
        self.latencies: List[float] = []
        self.distinct = 0
        self.duplicates = 0
        self.echoes = 0
        self.malformed = 0
        self.other = 0
        self.tLast = 0.0
        self.exactChecks = 0

    def sent(self, sender: int, seq: int, now: float) -> None:
        self.sendTimes[self.keys[sender][seq]] = now

    def feed(self, recipient: int, data: bytes, now: float) -> None:
        self.tLastData = now
        if self.measuring:
            self.chunks[recipient].append(data)
            self.times[recipient].append(now)
            self.received[recipient] += len(data)
            return
        buffer = self.partial[recipient] + data
        end = buffer.rfind(b"\n") + 1
        self.partial[recipient] = buffer[end:]
        self.hellos[recipient].update(int(h) for h in HELLO_PATTERN.findall(buffer, 0, end))

    def helloBarrier(self) -> bool:
        need = self.conns - 1
        return all(len(h - {i}) >= need for i, h in enumerate(self.hellos))

    def echoing(self) -> bool:
        """
        Whether the server sends clients their own lines back.
        """
        return any(i in h for i, h in enumerate(self.hellos))

    def startMeasuring(self, now: float) -> None:
        self.measuring = True
        for recipient, rest in enumerate(self.partial):
            if rest:
                self.feed(recipient, rest, now)

    def count(self, recipient: int) -> int:
        """
        Count the line ends of the chunks not counted yet.
        """
        counts = self.counts[recipient]
        chunks = self.chunks[recipient]
        if len(counts) < len(chunks):
            fresh = [chunk.count(b"\n") for chunk in chunks[len(counts) :]]
            counts.extend(fresh)
            self.newlines[recipient] += sum(fresh)
        return self.newlines[recipient]

    def arrived(self, need: int, force: bool = False) -> bool:
        """
        Whether every client has received C{need} lines; unless C{force},
        lines are only counted at a client with bytes enough for them.
        """
        least = need * self.shortest
        for recipient in range(self.conns):
            if self.newlines[recipient] >= need:
                continue
            if not force and self.received[recipient] < least:
                return False
            if self.count(recipient) < need:
                return False
        return True

    def analyze(self) -> None:
        """
        Check every recipient's lines and time them; what was received is
        let go of as it is checked.
        """
        for recipient in range(self.conns):
            self.count(recipient)
            data = b"".join(self.chunks[recipient])
            if not self._analyzeFast(recipient, data):
                self.exactChecks += 1
                self._analyzeExact(recipient, data)
            self.chunks[recipient] = []
            self.counts[recipient] = []
            self.times[recipient] = []

    def _analyzeFast(self, recipient: int, data: bytes) -> bool:
        """
        The common case, in C loops: every line received is intact, has a
        known id and comes once.  Then the n-th line ended in the chunk that
        holds the n-th line end.  Return C{False} (having changed nothing) if
        anything is off: L{_analyzeExact} then looks at every line.
        """
        keys: List[bytes] = self.idPattern.findall(data)
        lineEnds = data.count(b"\n")
        if len(keys) != lineEnds or sum(data.count(tail) for tail in self.intact) != lineEnds:
            return False
        me = self.names[recipient]
        arrivals: List[float] = []
        for t, n in zip(self.times[recipient], self.counts[recipient]):
            if n:
                arrivals.extend(repeat(t, n))
        echoes = data.count(b"c" + me + b"-")
        if echoes:
            kept = [(t, key) for t, key in zip(arrivals, keys) if key[:5] != me]
            arrivals = [t for t, _ in kept]
            keys = [key for _, key in kept]
        if len(set(keys)) != len(keys):
            return False
        try:
            sentAt = list(map(self.sendTimes.__getitem__, keys))
        except KeyError:
            return False
        self.latencies.extend(map(operator.sub, arrivals, sentAt))
        if arrivals and arrivals[-1] > self.tLast:
            self.tLast = arrivals[-1]
        self.echoes += echoes
        self.distinct += len(keys)
        return True

    def _analyzeExact(self, recipient: int, data: bytes) -> None:
        """
        Line by line: tells lost, duplicated, damaged and unknown lines apart.
        """
        ends = list(accumulate(map(len, self.chunks[recipient])))
        times = self.times[recipient]
        me = self.names[recipient]
        seen: Set[bytes] = set()
        matched = chunk = 0
        for m in self.pattern.finditer(data):
            matched += 1
            key, x = m.group(1, 2)
            if x != self.filler:
                self.malformed += 1
                continue
            position = m.end() - 1
            while ends[chunk] <= position:
                chunk += 1
            if key[:5] == me:
                self.echoes += 1
                continue
            if key in seen:
                self.duplicates += 1
                continue
            sentAt = self.sendTimes.get(key)
            if sentAt is None:
                self.malformed += 1
                continue
            seen.add(key)
            arrived = times[chunk]
            self.latencies.append(arrived - sentAt)
            if arrived > self.tLast:
                self.tLast = arrived
        self.other += data.count(b"\n") - matched
        self.distinct += len(seen)


def percentile(ordered: List[float], fraction: float) -> Optional[float]:
    """
    The C{fraction} percentile of values already sorted.
    """
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def chat(spec: Dict[str, Any]) -> Dict[str, Any]:
    conns, lines, size = spec["conns"], spec["lines"], spec["size"]
    text = spec.get("text", "ascii")
    t0 = time.monotonic()
    deadline = t0 + spec["timeout"]
    engine = Engine(spec["host"], spec["port"])
    receiver = ChatReceiver(conns, lines, size, text)
    engine.onData = lambda conn, data, now: receiver.feed(conn.index, data, now)
    # Each line goes out when it is sent, as a person's line would: without
    # Nagle's algorithm holding it until the server acknowledges the last.
    engine.noDelay = spec.get("noDelay", True)
    cpu0 = cpuSeconds()
    engine.open(conns, conns)
    result: Dict[str, Any] = {"event": "result", "completed": False}

    def fail(why: str) -> Dict[str, Any]:
        result.update(why=why, errors=engine.errors, connected=engine.connected)
        return result

    if not engine.run(lambda: engine.connected + engine.connectFailed >= conns, min(deadline, t0 + 30)):
        return fail(f"{engine.connected}/{conns} clients connected")
    if engine.connectFailed:
        return fail(f"{engine.connectFailed} clients could not connect")
    port = spec["port"]
    held = {"n": 0}

    def tick(now: float) -> None:
        held["n"] = acceptedCount(port)

    if not engine.run(lambda: held["n"] >= conns, min(deadline, time.monotonic() + 15), tick, 0.05):
        return fail(f"the server accepted {held['n']}/{conns} clients")
    engine.run(lambda: False, time.monotonic() + 0.3)
    for conn in engine.conns:
        engine.send(conn, f"hello-from-{conn.index:05d}\r\n".encode())
    if not engine.run(receiver.helloBarrier, min(deadline, time.monotonic() + 20)):
        heard = min(len(h) for h in receiver.hellos)
        return fail(f"barrier: some client heard only {heard} of {conns - 1} hellos")
    tBarrier = time.monotonic() - t0
    rate: Optional[float] = spec.get("rate")
    if rate:
        # Made before the clock starts: one bytes object per line.
        lineBytes = [[lineFor(c, s, size, b"\r\n", text) for s in range(lines)] for c in range(conns)]
        payloads: List[bytes] = []
    else:
        lineBytes = []
        payloads = [b"".join(lineFor(c, s, size, b"\r\n", text) for s in range(lines)) for c in range(conns)]

    def onSent(conn: Conn, sentBytes: int, now: float) -> None:
        # A line is sent once the kernel has taken its last byte.
        complete = min(lines, sentBytes // size)
        for seq in range(conn.sentLines, complete):
            receiver.sent(conn.index, seq, now)
        conn.sentLines = complete

    for conn in engine.conns:
        conn.sentBytes = conn.sentLines = 0
    engine.onSent = onSent
    expected = conns * (conns - 1) * lines
    need = (conns - 1) * lines + (lines if receiver.echoing() else 0)
    total = conns * lines
    lags: List[float] = []
    schedule = {"next": 0}
    perSecond = conns * rate if rate else 0.0

    def pace(now: float) -> None:
        # Send every line whose time has come: line k, of client k % conns,
        # is due at tStart + k / perSecond.
        k = schedule["next"]
        due = min(total, int((now - tStart) * perSecond) + 1)
        if due <= k:
            return
        batches: Dict[int, List[bytes]] = {}
        for j in range(k, due):
            lags.append(now - tStart - j / perSecond)
            batches.setdefault(j % conns, []).append(lineBytes[j % conns][j // conns])
        schedule["next"] = due
        for c, parts in batches.items():
            engine.write(engine.conns[c], b"".join(parts))

    # The runner takes the server's CPU time between these two events.
    emit({"event": "clock", "phase": "start"})
    # What the clients keep piles up by the million: no cyclic garbage
    # collector passes over it while the clock runs.
    gc.disable()
    cpuMeasure = cpuSeconds()
    tStart = time.monotonic()
    receiver.startMeasuring(tStart)
    if rate:
        pace(tStart)
    else:
        for conn in engine.conns:
            engine.send(conn, payloads[conn.index])

    def over() -> bool:
        # Every delivery is in; or every client was disconnected; or some
        # were, and nothing has come for a second.
        if engine.finished >= conns:
            return True
        quiet = time.monotonic() - receiver.tLastData
        # Lines cut short would never add up to the bytes awaited: count
        # them all anyway once nothing has come for a moment.
        if receiver.arrived(need, force=quiet > 0.2 and (not rate or schedule["next"] >= total)):
            return True
        return bool(engine.resets or engine.closedByServer) and quiet > 1.0

    engine.run(over, min(deadline, tStart + spec.get("chatTimeout", 60)), pace if rate else None, 0.001)
    arrived = receiver.arrived(need, force=True)
    engine.onSent = None
    cpuMeasured = cpuSeconds() - cpuMeasure
    gc.enable()
    emit({"event": "clock", "phase": "stop"})
    # A grace period to catch duplicates, then leave.
    engine.run(lambda: False, min(deadline, time.monotonic() + 0.3))
    engine.closeAll()
    engine.run(lambda: engine.finished >= conns, min(deadline, time.monotonic() + 10))
    tAnalyze = time.monotonic()
    receiver.analyze()
    analyzeS = time.monotonic() - tAnalyze
    complete = arrived and receiver.distinct == expected
    elapsed = receiver.tLast - tStart if receiver.tLast else None
    lat = receiver.latencies
    lat.sort()
    if rate:
        lags.sort()
        result.update(
            rate=rate,
            offered_deliveries_per_s=conns * (conns - 1) * rate,
            schedule_s=(total - 1) / perSecond if total > 1 else 0.0,
            lines_scheduled=schedule["next"],
            lag_p99_ms=None if not lags else 1000 * (percentile(lags, 0.99) or 0.0),
            lag_max_ms=None if not lags else 1000 * lags[-1],
        )
    result.update(
        completed=complete,
        why=None
        if complete
        else (
            f"{receiver.distinct}/{expected} deliveries after {time.monotonic() - tStart:.1f} s; "
            f"{engine.resets} clients reset, {engine.closedByServer} closed by the server"
        ),
        echoing=receiver.echoing(),
        connected=engine.connected,
        barrier_s=tBarrier,
        elapsed=elapsed,
        deliveries_expected=expected,
        deliveries=receiver.distinct,
        duplicates=receiver.duplicates,
        missing=expected - receiver.distinct,
        echoes=receiver.echoes,
        malformed=receiver.malformed,
        other_lines=receiver.other,
        closed_by_server=engine.closedByServer,
        resets=engine.resets,
        p50_ms=None if not lat else 1000 * (percentile(lat, 0.50) or 0.0),
        p99_ms=None if not lat else 1000 * (percentile(lat, 0.99) or 0.0),
        max_ms=None if not lat else 1000 * lat[-1],
        analyze_s=analyzeS,
        exact_checks=receiver.exactChecks,
        errors=engine.errors,
        gen_cpu_s=cpuMeasured,
        gen_cpu_total_s=cpuSeconds() - cpu0,
        gen_max_rss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )
    return result


def capacity(spec: Dict[str, Any]) -> Dict[str, Any]:
    """
    What L{ChatReceiver} costs per delivery, as linelogger words them, fed
    from memory: while the clock runs (C{rate}) and after (C{analyze_rate}).
    """
    conns, lines, size = spec["conns"], spec["lines"], spec["size"]
    receiver = ChatReceiver(conns, lines, size)
    blocks = []
    for recipient in range(conns):
        data = b"".join(
            b"<guest%d> " % (sender + 1) + lineFor(sender, seq, size, b"\r\n")
            for seq in range(lines)
            for sender in range(conns)
            if sender != recipient
        )
        blocks.append([data[i : i + 65536] for i in range(0, len(data), 65536)])
    for sender in range(conns):
        for seq in range(lines):
            receiver.sent(sender, seq, 0.0)
    receiver.startMeasuring(0.0)
    start = time.perf_counter()
    for recipient, chunks in enumerate(blocks):
        for chunk in chunks:
            receiver.feed(recipient, chunk, 1.0)
    # The line ends are counted while the clock runs too, once enough came.
    assert receiver.arrived((conns - 1) * lines)
    elapsed = time.perf_counter() - start
    start = time.perf_counter()
    receiver.analyze()
    analyzed = time.perf_counter() - start
    total = conns * (conns - 1) * lines
    assert receiver.distinct == total, (receiver.distinct, total)
    return {
        "event": "result",
        "deliveries": total,
        "elapsed": elapsed,
        "rate": total / elapsed,
        "analyze_rate": total / analyzed,
        "exact_checks": receiver.exactChecks,
    }


MODES = {"ingest": ingest, "idle": idle, "chat": chat, "capacity": capacity}


def main(argv: List[str]) -> int:
    spec = json.loads(argv[1])
    needed = spec.get("conns", 0) + 64
    limit = raiseNofile(needed)
    if limit < needed:
        emit({"event": "result", "completed": False, "skipped": True, "why": f"open-file limit {limit} < {needed}"})
        return 3
    emit(MODES[spec["mode"]](spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
