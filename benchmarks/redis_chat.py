"""
Chat across processes: one room of N clients split over two linelogger nodes
sharing one Redis (C{--redis}), against one node without Redis, same load.

    python -m benchmarks.redis_chat [--conns 100,1000] [--lines 50,5]
        [--paced-rate 100:5,1000:0.2] [--timeout S] [--json FILE]

For each room size: a burst (every client sends its C{--lines} lines of 80
bytes at once) and a paced run (each client sends at the given lines per
second), first on one node without Redis, then over two nodes on one Redis,
clients alternating between the nodes.  The load generator is
L{benchmarks.loadgen}'s chat mode (every client checks it receives every
other client's lines exactly once, and times each from its send), connecting
its clients to the nodes in turn.  Redis runs with no persistence
(C{--save "" --appendonly no}).  Everything runs on 127.0.0.1, on one machine:
Redis, the nodes and the generator share its cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from benchmarks import loadgen, procinfo
from benchmarks.run import FLOOD_BURST, FLOOD_RATE, HOST, SENDQ, TWISTD_MAIN, freePort


class SplitEngine(loadgen.Engine):
    """
    L{loadgen.Engine} whose client C{i} connects to C{ports[i % len(ports)]}.
    """

    ports: List[int] = []

    def addressFor(self, conn: loadgen.Conn) -> Any:
        """
        Client C{i} connects to C{ports[i % len(ports)]}.
        """
        return (HOST, self.ports[conn.index % len(self.ports)])


def waitForLog(path: Path, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.05)
    raise RuntimeError(f"{path}: no {text!r} within {timeout} s")


def startRedis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = freePort()
    log = open(workdir / "redis.log", "wb")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", HOST, "--dir", str(workdir), "--save", "", "--appendonly", "no"],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(10).startswith(b"+PONG"):
                    return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not answer")


def startNode(workdir: Path, name: str, redisURL: Optional[str], prefix: str) -> tuple[subprocess.Popen[bytes], int]:
    port = freePort()
    logPath = workdir / f"{name}.log"
    command = [
        sys.executable,
        "-c",
        TWISTD_MAIN,
        "-n",
        "--pidfile=",
        "--logfile",
        str(logPath),
        "linelogger",
        "--port",
        f"tcp:{port}:interface={HOST}",
        "--output",
        str(workdir / f"{name}.out"),
        "--no-connection-log",
        "--chat",
        "--flood-rate",
        str(FLOOD_RATE),
        "--flood-burst",
        str(FLOOD_BURST),
        "--sendq",
        str(SENDQ),
    ]
    if redisURL:
        command += ["--redis", redisURL, "--redis-prefix", prefix]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    waitForLog(logPath, f"starting on {port}")
    return process, port


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def generate(ports: List[int], conns: int, lines: int, rate: Optional[float], timeout: float) -> Dict[str, Any]:
    """
    One chat run of L{loadgen.chat}, its clients spread over C{ports}.
    """
    SplitEngine.ports = ports
    loadgen.Engine = SplitEngine  # type: ignore[misc]
    original = procinfo.acceptedCount
    loadgen.acceptedCount = lambda port: sum(original(p) for p in ports)  # type: ignore[assignment]
    spec: Dict[str, Any] = {
        "mode": "chat",
        "host": HOST,
        "port": ports[0],
        "conns": conns,
        "lines": lines,
        "size": 80,
        "timeout": timeout,
        "chatTimeout": timeout / 2,
    }
    if rate:
        spec["rate"] = rate
    procinfo.raiseNofile(conns + 64)
    return loadgen.chat(spec)


def summary(result: Dict[str, Any]) -> Dict[str, Any]:
    elapsed = result.get("elapsed")
    deliveries = result.get("deliveries", 0)
    return {
        "completed": result.get("completed"),
        "why": result.get("why"),
        "deliveries": deliveries,
        "duplicates": result.get("duplicates"),
        "missing": result.get("missing"),
        "deliveries_per_s": deliveries / elapsed if elapsed else None,
        "offered_deliveries_per_s": result.get("offered_deliveries_per_s"),
        "p50_ms": result.get("p50_ms"),
        "p99_ms": result.get("p99_ms"),
        "max_ms": result.get("max_ms"),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--conns", default="100,1000")
    parser.add_argument("--lines", default="50,5", help="burst lines per client, per room size")
    parser.add_argument("--paced-rate", default="100:5,1000:0.2", help="CONNS:lines per second per client")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--json", help="write every result to this file")
    args = parser.parse_args(argv)
    sizes = [int(c) for c in args.conns.split(",")]
    bursts = dict(zip(sizes, (int(n) for n in args.lines.split(","))))
    paced = {int(k): float(v) for k, v in (pair.split(":") for pair in args.paced_rate.split(","))}
    workdir = Path(tempfile.mkdtemp(prefix="linelogger-redis-bench-"))
    redis, redisPort = startRedis(workdir)
    results: List[Dict[str, Any]] = []
    try:
        for conns in sizes:
            for setup in ("1 node, no Redis", "2 nodes, Redis"):
                for kind in ("burst", "paced"):
                    rate = paced.get(conns) if kind == "paced" else None
                    if kind == "paced" and not rate:
                        continue
                    lines = bursts.get(conns, 5) if kind == "burst" else max(2, int(rate * 10))  # type: ignore[operator]
                    prefix = f"bench{len(results)}"
                    nodes = []
                    try:
                        if setup.startswith("1"):
                            nodes.append(startNode(workdir, f"n{len(results)}", None, prefix))
                        else:
                            url = f"redis://{HOST}:{redisPort}"
                            nodes.append(startNode(workdir, f"n{len(results)}a", url, prefix))
                            nodes.append(startNode(workdir, f"n{len(results)}b", url, prefix))
                        time.sleep(1.0)
                        result = generate([port for _, port in nodes], conns, lines, rate, args.timeout)
                    finally:
                        for process, _ in nodes:
                            stop(process)
                    row = {"conns": conns, "setup": setup, "kind": kind, "lines": lines, "rate": rate}
                    row.update(summary(result))
                    results.append(row)
                    rateText = f"{row['deliveries_per_s']:,.0f}/s" if row["deliveries_per_s"] else "-"
                    print(
                        f"{conns:5d} clients  {setup:17s} {kind:6s} "
                        f"{'ok' if row['completed'] else 'INCOMPLETE'}  {row['deliveries']:>10,} deliveries  "
                        f"{rateText:>14s}  p50 {row['p50_ms'] or 0:7.1f} ms  p99 {row['p99_ms'] or 0:7.1f} ms"
                        + ("" if row["completed"] else f"  ({row['why']})"),
                        flush=True,
                    )
    finally:
        stop(redis)
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["completed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
