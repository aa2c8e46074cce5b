"""
C{--workers N} against one process: ingest of 2M lines over 20 connections.

Run as::

    python -m benchmarks.workers [--lines N] [--repeat 3] [--workers 1,2] [--cpus 0,0-1]
                                 [--worker-output direct,supervisor]

For each set of cores (C{taskset -c}; the load generator runs on the same
cores, as it shares the machine with the server) and each worker count, it
starts C{twistd -n linelogger --workers N --no-connection-log} with its
output in a temporary file, sends C{--lines} lines of 100 bytes over 20
connections with L{benchmarks.loadgen}, times from the first connect until
the last record is in the file, and prints the median of C{--repeat} runs,
in lines per second, and the ratio to one worker on the same cores, with
the median CPU seconds each side spent during the run (the one process, or
the supervisor and its workers together; and the load generator): where
the time goes.  More than one worker runs once per C{--worker-output}
mode: C{direct} (each worker appends to the file) and C{supervisor} (the
workers send their records to the supervisor, which writes them).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

from benchmarks import procinfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def freePort() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def waitListening(port: int, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("twistd exited before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("twistd did not listen")


def waitLog(path: str, text: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(path, "rb") as f:
            if text.encode() in f.read():
                return
        time.sleep(0.05)
    raise RuntimeError(f"{text!r} never logged")


def serverCpu(pid: int) -> Dict[str, float]:
    """
    CPU seconds of the supervisor (or the one process) and of its workers.
    """
    return {
        "supervisor": procinfo.ownCpuSeconds(pid),
        "workers": sum(procinfo.ownCpuSeconds(child) for child in procinfo.children(pid)),
    }


def runOnce(
    workers: int, cpus: str, lines: int, conns: int, mode: str = "direct"
) -> Tuple[Optional[float], Dict[str, object]]:
    """
    One run: lines per second, or C{None} if it did not complete, and the
    load generator's result with the CPU seconds each side spent during the
    run (C{supervisor_cpu_s}, C{workers_cpu_s}; the load generator's is its
    C{gen_cpu_s}).
    """
    workdir = tempfile.mkdtemp(prefix="linelogger-workers-")
    try:
        port = freePort()
        output = os.path.join(workdir, "records.out")
        logPath = os.path.join(workdir, "twistd.log")
        env = dict(os.environ, PYTHONPATH=ROOT)
        taskset = ["taskset", "-c", cpus]
        command = [
            *taskset,
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()",
            "-n",
            "--pidfile=",
            f"--logfile={logPath}",
            "linelogger",
            "--port",
            f"tcp:{port}:interface=127.0.0.1",
            "--output",
            output,
            "--no-connection-log",
            "--workers",
            str(workers),
            "--worker-output",
            mode,
        ]
        server = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            waitListening(port, server)
            if workers > 1:
                waitLog(logPath, f"All {workers} workers listen")
            spec = {
                "mode": "ingest",
                "host": "127.0.0.1",
                "port": port,
                "conns": conns,
                "lines": lines // conns,
                "size": 100,
                "output": output,
                "timeout": 300,
            }
            before = serverCpu(server.pid)
            done = subprocess.run(
                [*taskset, sys.executable, "-m", "benchmarks.loadgen", json.dumps(spec)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=False,
            )
            after = serverCpu(server.pid)
            result: Dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
            result["supervisor_cpu_s"] = after["supervisor"] - before["supervisor"]
            result["workers_cpu_s"] = after["workers"] - before["workers"]
        finally:
            server.terminate()
            server.wait(120)
        elapsed = result.get("elapsed")
        if not result.get("completed") or not isinstance(elapsed, float):
            return None, result
        return lines / elapsed, result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--lines", type=int, default=2_000_000)
    parser.add_argument("--conns", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--cpus", default="0,0-1", help="taskset core lists to try, separated by commas: 0 or 0-1")
    parser.add_argument(
        "--worker-output", default="direct", help="with more than one worker: direct, supervisor or both (commas)"
    )
    args = parser.parse_args(argv)
    counts = [int(w) for w in args.workers.split(",")]
    for cpus in args.cpus.split(","):
        base: Optional[float] = None
        runs = [(w, mode) for w in counts for mode in (args.worker_output.split(",") if w > 1 else [""])]
        for workers, mode in runs:
            rates: List[float] = []
            cpu: Dict[str, List[float]] = {"supervisor_cpu_s": [], "workers_cpu_s": [], "gen_cpu_s": [], "elapsed": []}
            for _ in range(args.repeat):
                rate, result = runOnce(workers, cpus, args.lines, args.conns, mode or "direct")
                if rate is None:
                    print(f"cores {cpus} workers {workers}: run failed: {result.get('why')}", flush=True)
                else:
                    rates.append(rate)
                    for key, values in cpu.items():
                        value = result.get(key)
                        if isinstance(value, (int, float)):
                            values.append(float(value))
            if not rates:
                continue
            median = statistics.median(rates)
            if base is None:
                base = median
            figures = ", ".join(f"{r / 1e6:.2f}" for r in rates)
            seconds = {key: statistics.median(values) for key, values in cpu.items() if values}
            print(
                f"cores {cpus:4} "
                + (f"{mode} " if mode else "")
                + f"workers {workers}: median {median / 1e6:.2f}M lines/s "
                f"(runs {figures}), {median / base:.2f}x the first; median seconds: "
                f"wall {seconds.get('elapsed', 0):.2f}, CPU: "
                + ("one process" if workers == 1 else "supervisor")
                + f" {seconds.get('supervisor_cpu_s', 0):.2f}"
                + ("" if workers == 1 else f", workers {seconds.get('workers_cpu_s', 0):.2f}")
                + f", load generator {seconds.get('gen_cpu_s', 0):.2f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
