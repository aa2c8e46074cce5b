"""
Chat over WebSocket (C{--web}) against chat over plain TCP: N clients in one
room of a real C{twistd -n linelogger --chat --web ...} on 127.0.0.1, the
same load on each transport, side by side.

    $ .venv/bin/python -m benchmarks.webchat --clients 1000 --lines 3 --paced-rate 100 --paced-seconds 10

Two runs per transport, each on a fresh server:

- burst: every client sends C{--lines} lines at once; the figure is
  deliveries (a line arriving at one other member) per second from the first
  line sent to the last delivery, and the p99 latency of client 0's lines
  (each carries its send time) at every receiver.
- paced: the clients together send C{--paced-rate} lines per second, spread
  evenly, for C{--paced-seconds}; the figures are the deliveries per second
  achieved and the p99 latency.

Flood control is set out of the way (a benchmark is not a person typing).
One client process does all the sockets with C{selectors}; it counts
deliveries with C{bytes.count}, so it is rarely the limit, but on a busy
machine its CPU is shared with the server's.  WebSocket frames from the
clients are masked (as browsers do) with a zero key.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

from tests.twistd_helpers import freePort, twistdCommand, twistdEnvironment

MARK = b"MSG"
STAMP = re.compile(rb"MSG0 (\d+) ")


class Client:
    """
    One connection: what waits to be sent, what has been counted.
    """

    __slots__ = ("sock", "out", "tail", "stampTail", "count", "ready", "handshake")

    def __init__(self, sock: socket.socket, websocket: bool) -> None:
        self.sock = sock
        self.out = b""
        self.tail = b""
        self.stampTail = b""
        self.count = 0
        self.ready = not websocket
        self.handshake = b""


def frame(line: bytes, websocket: bool) -> bytes:
    """
    One line as the client sends it.
    """
    if not websocket:
        return line + b"\n"
    assert len(line) < 126
    return bytes([0x81, 0x80 | len(line)]) + b"\0\0\0\0" + line


class Load:
    """
    N clients of one transport, driven by one selector.
    """

    def __init__(self, port: int, clients: int, websocket: bool) -> None:
        self.websocket = websocket
        self.selector = selectors.DefaultSelector()
        self.clients: List[Client] = []
        self.latencies: List[float] = []
        for _ in range(clients):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setblocking(False)
            client = Client(sock, websocket)
            if websocket:
                client.out = (
                    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                ).encode()
            self.clients.append(client)
            self.selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def send(self, client: Client, line: bytes) -> None:
        client.out += frame(line, self.websocket)
        self._flush(client)

    def _flush(self, client: Client) -> None:
        if client.out:
            try:
                sent = client.sock.send(client.out)
            except BlockingIOError:
                sent = 0
            client.out = client.out[sent:]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.out else 0)
        self.selector.modify(client.sock, events, client)

    def poll(self, timeout: float) -> int:
        """
        Read and write what is ready; return how many bytes were read.
        """
        total = 0
        now = time.time()
        for key, mask in self.selector.select(timeout):
            client: Client = key.data
            if mask & selectors.EVENT_WRITE:
                self._flush(client)
            if mask & selectors.EVENT_READ:
                try:
                    data = client.sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not data:
                    raise SystemExit("a client was disconnected by the server")
                total += len(data)
                if not client.ready:
                    client.handshake += data
                    head, sep, data = client.handshake.partition(b"\r\n\r\n")
                    if not sep:
                        continue
                    if not head.startswith(b"HTTP/1.1 101"):
                        raise SystemExit(f"WebSocket refused: {head[:80]!r}")
                    client.ready = True
                joined = client.tail + data
                client.count += joined.count(MARK)
                # Too short to hold a whole mark: none is counted twice.
                client.tail = joined[-(len(MARK) - 1) :]
                stamped = client.stampTail + data
                end = 0
                if b"MSG0 " in stamped:
                    for match in STAMP.finditer(stamped):
                        self.latencies.append(now - int(match.group(1)) / 1e6)
                        end = match.end()
                # Keep what may be the start of a stamp split between reads.
                client.stampTail = stamped[max(end, len(stamped) - 40) :]
        return total

    def settle(self, quiet: float = 1.0, limit: float = 120.0) -> None:
        """
        Read until nothing has come for C{quiet} seconds.
        """
        deadline = time.monotonic() + limit
        last = time.monotonic()
        while time.monotonic() - last < quiet:
            if time.monotonic() > deadline:
                raise SystemExit("the server never went quiet")
            if self.poll(0.1):
                last = time.monotonic()
        if not all(c.ready for c in self.clients):
            raise SystemExit("not every WebSocket opened")

    def delivered(self) -> int:
        return sum(c.count for c in self.clients)

    def line(self, index: int, seq: int) -> bytes:
        if index == 0:
            return b"MSG0 %d %d" % (int(time.time() * 1e6), seq)
        return b"MSG %d %d" % (index, seq)

    def close(self) -> None:
        for client in self.clients:
            self.selector.unregister(client.sock)
            client.sock.close()
        self.selector.close()


def p99(values: List[float]) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def server(workdir: str) -> Tuple[subprocess.Popen, int, int]:
    tcpPort, webPort = freePort(), freePort()
    args = ["-n", "--pidfile=", "linelogger", "--chat", "--port", f"tcp:{tcpPort}:interface=127.0.0.1"]
    args += ["--web", f"tcp:{webPort}:interface=127.0.0.1", "--output", "records.out", "--no-connection-log"]
    args += ["--flood-rate", "1000000", "--flood-burst", "1000000", "--sendq", str(64 << 20), "--history", "0"]
    log = open(os.path.join(workdir, "twistd.log"), "wb")
    process = subprocess.Popen(twistdCommand(*args), cwd=workdir, env=twistdEnvironment(), stdout=log, stderr=log)
    deadline = time.monotonic() + 30
    while b"Site starting" not in open(os.path.join(workdir, "twistd.log"), "rb").read():
        if time.monotonic() > deadline or process.poll() is not None:
            raise SystemExit("twistd did not start")
        time.sleep(0.05)
    time.sleep(0.5)
    return process, tcpPort, webPort


def run(transport: str, mode: str, args: argparse.Namespace) -> Dict[str, object]:
    workdir = tempfile.mkdtemp(prefix="linelogger-webbench-")
    process, tcpPort, webPort = server(workdir)
    try:
        websocket = transport == "websocket"
        load = Load(webPort if websocket else tcpPort, args.clients, websocket)
        load.settle()
        base = load.delivered()
        load.latencies.clear()
        n = args.clients
        if mode == "burst":
            lines = args.lines
            expected = lines * n * (n - 1)
            start = time.monotonic()
            for seq in range(lines):
                for index, client in enumerate(load.clients):
                    load.send(client, load.line(index, seq))
        else:
            lines = int(args.paced_rate * args.paced_seconds)
            expected = lines * (n - 1)
            start = time.monotonic()
            interval = 1.0 / args.paced_rate
            for seq in range(lines):
                due = start + seq * interval
                while time.monotonic() < due:
                    load.poll(max(0.0, due - time.monotonic()))
                index = seq % n
                load.send(load.clients[index], load.line(index, seq))
        deadline = time.monotonic() + args.timeout
        last = time.monotonic()
        while load.delivered() - base < expected and time.monotonic() < deadline:
            if load.poll(0.2):
                last = time.monotonic()
        got = load.delivered() - base
        elapsed = last - start
        load.close()
        latency = p99(load.latencies)
        return {
            "transport": transport,
            "mode": mode,
            "clients": n,
            "deliveries": got,
            "expected": expected,
            "seconds": round(elapsed, 3),
            "deliveries_per_s": round(got / elapsed) if elapsed > 0 else None,
            "p99_ms": round(latency * 1000, 1) if latency is not None else None,
        }
    finally:
        process.terminate()
        process.wait(60)
        shutil.rmtree(workdir, True)


def compare(args: argparse.Namespace) -> List[Dict[str, object]]:
    """
    Each run (burst, paced) on each transport, C{args.repeat} times
    (alternating transports); the median run of each by deliveries/s.
    """
    results = []
    for mode in ("burst", "paced"):
        runs: Dict[str, List[Dict[str, object]]] = {"tcp": [], "websocket": []}
        for _ in range(args.repeat):
            for transport in ("tcp", "websocket"):
                result = run(transport, mode, args)
                print(json.dumps(result), flush=True)
                runs[transport].append(result)
        for transport in ("tcp", "websocket"):
            ordered = sorted(runs[transport], key=lambda r: r["deliveries_per_s"] or 0)  # type: ignore[arg-type,return-value]
            results.append(ordered[len(ordered) // 2])
    return results


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--lines", type=int, default=3, help="lines per client in the burst run")
    parser.add_argument("--paced-rate", type=float, default=100.0, help="lines per second, all clients together")
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the median by deliveries/s is shown")
    args = parser.parse_args(argv)
    results = compare(args)
    print()
    print(f"{'run':<8} {'transport':<10} {'deliveries/s':>13} {'p99 ms':>8} {'delivered':>20}")
    for r in results:
        print(
            f"{r['mode']:<8} {r['transport']:<10} {r['deliveries_per_s']!s:>13} {r['p99_ms']!s:>8}"
            f" {r['deliveries']!s:>9}/{r['expected']!s:<10}"
        )
    for mode in ("burst", "paced"):
        tcp, ws = [r for r in results if r["mode"] == mode]
        if tcp["deliveries_per_s"] and ws["deliveries_per_s"]:
            ratio = ws["deliveries_per_s"] / tcp["deliveries_per_s"]  # type: ignore[operator]
            print(f"{mode}: WebSocket at {ratio:.0%} of TCP")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
