"""
Workload idle-100k: 100,000 connections held at once, each sending one line that is recorded.

Run as::

    python -m benchmarks.idle100k [--conns 100000] [--workers 6] [--clients N]
                                  [--rsyslog-conns 19000] [--servers linelogger,rsyslog]

A process may open at most as many descriptors as its hard C{RLIMIT_NOFILE}
allows (20,000 on the machines this was written for, for the server and
the load generator alike), and one source address reaches one server port
from at most as many ports as C{net.ipv4.ip_local_port_range} holds
(about 28,000).  So the clients run in C{--clients} processes, each under
its own limit and bound to its own source address (127.0.0.2, 127.0.0.3,
...), and linelogger runs with C{--workers N --max-connections M}, M the
most one worker's descriptors allow.  Each client connects (at most
C{--in-flight} connects pending at once per process), sends one line
C{idle C N} once connected, and then holds the connection; a connection
the server closes, resets or answers (an C{error:} line) is counted as
such.

Reported, per server: connections held (established on the server's side,
from C{ss}), the records written (which must equal the connections), the
time from the first connect until the server held them all and until all
records were written, and resident memory: the sum of C{VmRSS} of the
server's processes (supervisor and workers) once all are held, minus the
sum measured before the first connect, divided by the connections held.
Also the kernel's side (C{/proc/meminfo} C{Slab}, C{/proc/net/sockstat}),
to show that kernel memory is not what limits the count.  rsyslog runs as
one process, so it holds at most what one process's descriptors allow: it
gets C{--rsyslog-conns}.

Prints one JSON object per server on its last lines (C{--json}) after a
human-readable summary.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import resource
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

from benchmarks import procinfo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = "127.0.0.1"
IP_BIND_ADDRESS_NO_PORT = 24


# -- the client processes ----------------------------------------------------


def client(spec: Dict[str, Any]) -> int:
    """
    One client process: open C{spec["conns"]} connections from
    C{spec["source"]}, send one line on each, hold them until a line
    C{close} comes on standard input; report progress as JSON lines.
    """
    procinfo.raiseNofile(resource.getrlimit(resource.RLIMIT_NOFILE)[1])
    source, port, conns, index = spec["source"], spec["port"], spec["conns"], spec["index"]
    inFlight = spec["inFlight"]
    low, high = (int(p) for p in open("/proc/sys/net/ipv4/ip_local_port_range").read().split())
    nextPort: Optional[int] = low if spec["pickPorts"] else None
    lastPort = high
    poller = select.epoll()
    poller.register(sys.stdin.fileno(), select.EPOLLIN)
    connecting: Dict[int, Tuple[socket.socket, int]] = {}
    held: Dict[int, socket.socket] = {}
    counts = {"connected": 0, "failed": 0, "refused": 0, "closed": 0, "reset": 0}
    failures: Dict[str, int] = {}
    started = 0
    lastReport = 0.0
    firstConnect: Optional[float] = None
    lastConnected: Optional[float] = None
    closing = False

    def report(final: bool = False) -> None:
        print(
            json.dumps(
                {
                    **counts,
                    "held": len(held),
                    "connecting": len(connecting),
                    "started": started,
                    "failures": failures,
                    "first_connect": firstConnect,
                    "last_connected": lastConnected,
                    "final": final,
                }
            ),
            flush=True,
        )

    while not closing:
        while started < conns and len(connecting) < inFlight:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                code = -1
                if nextPort is None:
                    # The kernel's choice: it searches the range for a
                    # free port on every connect.
                    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
                    s.bind((source, 0))
                else:
                    # Ports picked in turn: no search.
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    while True:
                        if nextPort > lastPort:
                            raise OSError(errno.EADDRNOTAVAIL, "source ports exhausted")
                        try:
                            s.bind((source, nextPort))
                            break
                        except OSError as e:
                            if e.errno != errno.EADDRINUSE:
                                raise
                        finally:
                            nextPort += 1
                code = s.connect_ex((HOST, port))
            except OSError as e:
                code = e.errno or -1
            if firstConnect is None:
                firstConnect = time.time()
            started += 1
            if code not in (0, errno.EINPROGRESS):
                name = errno.errorcode.get(code, str(code))
                failures[name] = failures.get(name, 0) + 1
                counts["failed"] += 1
                s.close()
                continue
            connecting[s.fileno()] = (s, started - 1)
            poller.register(s.fileno(), select.EPOLLOUT)
        for fd, _mask in poller.poll(0.2):
            if fd == sys.stdin.fileno():
                if sys.stdin.readline().strip() in ("close", ""):
                    closing = True
                continue
            if fd in connecting:
                s, n = connecting.pop(fd)
                code = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    name = errno.errorcode.get(code, str(code))
                    failures[name] = failures.get(name, 0) + 1
                    counts["failed"] += 1
                    poller.unregister(fd)
                    s.close()
                    continue
                s.send(b"idle %d %d\n" % (index, n))
                held[fd] = s
                counts["connected"] += 1
                lastConnected = time.time()
                poller.modify(fd, select.EPOLLIN | select.EPOLLRDHUP)
            elif fd in held:
                s = held[fd]
                try:
                    data = s.recv(4096)
                except OSError:
                    data = None
                if data is None:
                    counts["reset"] += 1
                elif data.startswith(b"error:"):
                    counts["refused"] += 1
                elif not data:
                    counts["closed"] += 1
                else:
                    # Anything else: not expected, but not a loss either.
                    continue
                poller.unregister(fd)
                del held[fd]
                s.close()
        now = time.monotonic()
        if now - lastReport >= 0.5:
            lastReport = now
            report()
    for s in held.values():
        # Not closed by the server: reset, leaving no TIME_WAIT behind.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    report(final=True)
    return 0


# -- measuring ---------------------------------------------------------------


def established(port: int) -> int:
    """
    Connections established on the server's side of C{port}, accepted or
    still in its listen queue.
    """
    out = subprocess.run(
        # The clients' own source ports may include the server's port:
        # only the server's address counts.
        ["ss", "-Htn", "state", "established", "src", f"{HOST}:{port}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return out.count("\n")


def held(port: int) -> int:
    """
    Connections the server has accepted on C{port}: established sockets
    with the server's address that have an inode (one still in the listen
    queue has none).
    """
    local = f"0100007F:{port:04X}"
    seen = set()
    with open("/proc/net/tcp") as f:
        next(f, None)
        for line in f:
            row = line.split()
            if row[1] == local and row[3] == "01" and row[9] != "0":
                seen.add(row[2])
    return len(seen)


def meminfo() -> Dict[str, int]:
    """
    Some of C{/proc/meminfo}, in KiB.
    """
    values: Dict[str, int] = {}
    with open("/proc/meminfo") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("MemFree", "MemAvailable", "Slab", "SUnreclaim"):
                values[name] = int(rest.split()[0])
    return values


def sockstat() -> str:
    """
    The TCP line of C{/proc/net/sockstat}.
    """
    with open("/proc/net/sockstat") as f:
        return next((line.strip() for line in f if line.startswith("TCP:")), "")


def countLines(path: str) -> int:
    """
    Complete lines in C{path}.
    """
    try:
        with open(path, "rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def freePort() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def waitFor(what: str, predicate: Any, timeout: float, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise RuntimeError(f"timed out waiting for {what}")


# -- the servers -------------------------------------------------------------


def startLinelogger(workdir: str, port: int, workers: int, maxConnections: int) -> Tuple[subprocess.Popen[bytes], str]:
    """
    Start C{twistd -n linelogger --workers N}; wait until every worker listens.
    """
    output = os.path.join(workdir, "records.out")
    logPath = os.path.join(workdir, "twistd.log")
    command = [
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()",
        "-n",
        "--pidfile=",
        f"--logfile={logPath}",
        "linelogger",
        "--port",
        f"tcp:{port}:interface={HOST}",
        "--output",
        output,
        "--workers",
        str(workers),
        "--max-connections",
        str(maxConnections),
    ]
    server = subprocess.Popen(
        command,
        cwd=workdir,
        env=dict(os.environ, PYTHONPATH=ROOT),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def ready() -> bool:
        if server.poll() is not None:
            raise RuntimeError(f"twistd exited: {open(logPath).read()[-2000:]}")
        try:
            with open(logPath) as f:
                text = f.read()
        except FileNotFoundError:
            return False
        return f"All {workers} workers listen" in text or (workers == 1 and f"starting on {port}" in text)

    waitFor("linelogger to listen", ready, 120)
    return server, output


def startRsyslog(workdir: str, port: int) -> Tuple[subprocess.Popen[bytes], str]:
    """
    Start rsyslogd in the foreground with an imtcp input writing raw lines.
    """
    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    output = os.path.join(workdir, "records.out")
    conf = os.path.join(workdir, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(
            f'global(workDirectory="{workdir}")\n'
            'module(load="imtcp" MaxSessions="200000")\n'
            'template(name="rawline" type="string" string="%rawmsg%\\n")\n'
            'ruleset(name="bench") {\n'
            f'    action(type="omfile" file="{output}" template="rawline")\n'
            "}\n"
            f'input(type="imtcp" port="{port}" address="{HOST}" ruleset="bench")\n'
        )
    server = subprocess.Popen(
        [binary, "-n", "-f", conf, "-i", os.path.join(workdir, "rsyslogd.pid")],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=open(os.path.join(workdir, "rsyslogd.err"), "wb"),
        preexec_fn=lambda: procinfo.raiseNofile(resource.getrlimit(resource.RLIMIT_NOFILE)[1]),
    )

    def listening() -> bool:
        if server.poll() is not None:
            raise RuntimeError("rsyslogd exited")
        try:
            socket.create_connection((HOST, port), timeout=1).close()
            return True
        except OSError:
            return False

    waitFor("rsyslogd to listen", listening, 60)
    return server, output


def measure(
    name: str,
    server: subprocess.Popen[bytes],
    output: str,
    port: int,
    conns: int,
    clients: int,
    inFlight: int,
    pickPorts: bool = True,
) -> Dict[str, Any]:
    """
    Open C{conns} connections from C{clients} processes, wait until the
    server holds them all and has recorded every line, and measure.
    """
    time.sleep(1.0)
    # A probe connection of startRsyslog's, or the linelogger readiness, may
    # have left a record: count from here.
    recordsBefore = countLines(output)
    pids = [server.pid, *procinfo.children(server.pid)]
    base = {pid: procinfo.rssKiB(pid) for pid in pids}
    cpuBase = {pid: procinfo.ownCpuSeconds(pid) for pid in pids}
    kernelBefore = meminfo()
    sockBefore = sockstat()
    per = [conns // clients + (1 if i < conns % clients else 0) for i in range(clients)]
    procs = []
    t0 = time.time()
    for i, count in enumerate(per):
        spec = {
            "index": i,
            "source": f"127.0.0.{2 + i}",
            "port": port,
            "conns": count,
            "inFlight": inFlight,
            "pickPorts": pickPorts,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "benchmarks.idle100k", "--client", json.dumps(spec)],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
        )
    reports: List[Dict[str, Any]] = [{} for _ in procs]

    def readReports() -> None:
        for i, proc in enumerate(procs):
            assert proc.stdout is not None
            while select.select([proc.stdout], [], [], 0)[0]:
                line = proc.stdout.readline()
                if not line:
                    break
                reports[i] = json.loads(line)

    heldAt: Optional[float] = None
    recordedAt: Optional[float] = None
    peak = 0
    deadline = time.monotonic() + max(120.0, conns / 500)
    stable = 0
    lastHeld = -1
    while time.monotonic() < deadline:
        readReports()
        # Reading 200,000 rows of /proc/net/tcp takes a while: the time
        # is when the reading started.
        polled = time.time()
        now = held(port)
        peak = max(peak, now)
        records = countLines(output) - recordsBefore
        if heldAt is None and now >= conns:
            heldAt = polled
        if recordedAt is None and records >= conns:
            recordedAt = time.time()
        attempted = sum(r.get("started", 0) for r in reports) >= conns
        pending = sum(r.get("connecting", 0) for r in reports)
        if heldAt and recordedAt:
            break
        # Everything attempted, nothing connecting, and the count settled:
        # this is as far as it goes.
        if attempted and not pending and now == lastHeld:
            stable += 1
            if stable >= 20:
                break
        else:
            stable = 0
        lastHeld = now
        time.sleep(0.5)
    time.sleep(2.0)
    readReports()
    heldNow = held(port)
    establishedNow = established(port)
    records = countLines(output) - recordsBefore
    pidsNow = [server.pid, *procinfo.children(server.pid)]
    after = {pid: procinfo.rssKiB(pid) for pid in pidsNow}
    cpu = {pid: procinfo.ownCpuSeconds(pid) - cpuBase.get(pid, 0.0) for pid in pidsNow}
    kernelAfter = meminfo()
    sockAfter = sockstat()
    ssSummary = subprocess.run(["ss", "-s"], capture_output=True, text=True, check=False).stdout
    grown = sum(after[pid] - base.get(pid, 0) for pid in after)
    perProcess = [
        {"pid": pid, "base_kib": base.get(pid), "rss_kib": after[pid], "cpu_s": round(cpu[pid], 2)} for pid in pidsNow
    ]
    # The server closes first: the TIME_WAIT sockets are then its own
    # (on its port, which the next run does not reuse), not the clients'
    # (whose source ports the next run needs).
    stop(server)
    for proc in procs:
        assert proc.stdin is not None
        try:
            proc.stdin.write(b"close\n")
            proc.stdin.flush()
        except OSError:
            pass
    for proc in procs:
        proc.wait(120)
    clientTotals: Dict[str, Any] = {}
    for r in reports:
        for key in ("connected", "failed", "refused", "closed", "reset", "held"):
            clientTotals[key] = clientTotals.get(key, 0) + r.get(key, 0)
        for key, count in r.get("failures", {}).items():
            clientTotals.setdefault("failures", {})
            clientTotals["failures"][key] = clientTotals["failures"].get(key, 0) + count
    lastConnected = max((r.get("last_connected") or 0 for r in reports), default=0)
    return {
        "server": name,
        "conns_asked": conns,
        "client_processes": clients,
        "held": heldNow,
        "held_peak": peak,
        "established": establishedNow,
        "records": records,
        "records_equal_held": records == heldNow,
        "accept_all_s": round(heldAt - t0, 2) if heldAt else None,
        "connect_all_s": round(lastConnected - t0, 2) if lastConnected else None,
        "records_all_s": round(recordedAt - t0, 2) if recordedAt else None,
        "processes": len(pidsNow),
        "rss_base_kib": sum(base.values()),
        "rss_held_kib": sum(after.values()),
        "rss_per_conn_bytes": round(grown * 1024 / heldNow) if heldNow else None,
        "per_process": perProcess,
        "clients": clientTotals,
        "kernel_slab_kib": [kernelBefore.get("Slab"), kernelAfter.get("Slab")],
        "kernel_sunreclaim_kib": [kernelBefore.get("SUnreclaim"), kernelAfter.get("SUnreclaim")],
        "mem_available_kib": kernelAfter.get("MemAvailable"),
        "sockstat": [sockBefore, sockAfter],
        "ss_summary": ssSummary.splitlines()[:2],
    }


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def describe(result: Dict[str, Any]) -> str:
    """
    A few lines for people.
    """
    c = result["clients"]
    lines = [
        f"{result['server']}: {result['held']:,} of {result['conns_asked']:,} connections held "
        f"({result['established']:,} established, accept queue included) "
        f"({result['processes']} server processes, {result['client_processes']} client processes), "
        f"{result['records']:,} records",
        f"  all held after {result['accept_all_s']} s, all recorded after {result['records_all_s']} s",
        f"  RSS {result['rss_base_kib'] / 1024:.1f} MiB before, {result['rss_held_kib'] / 1024:.1f} MiB held: "
        f"{result['rss_per_conn_bytes']} bytes per connection beyond the processes' base",
        f"  clients: {c.get('connected', 0):,} connected, {c.get('failed', 0)} failed {c.get('failures', {})}, "
        f"{c.get('refused', 0)} refused (error: line), {c.get('closed', 0)} closed, {c.get('reset', 0)} reset",
        f"  kernel: Slab {result['kernel_slab_kib'][0] // 1024} -> {result['kernel_slab_kib'][1] // 1024} MiB, "
        f"MemAvailable {result['mem_available_kib'] // 1024} MiB; {result['sockstat'][1]}",
    ]
    for p in result["per_process"]:
        lines.append(
            f"    pid {p['pid']}: {p['base_kib'] / 1024:.1f} -> {p['rss_kib'] / 1024:.1f} MiB, {p['cpu_s']} CPU s"
        )
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--conns", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--max-connections", type=int, default=20_000, help="linelogger's, per worker")
    parser.add_argument(
        "--clients",
        type=int,
        default=0,
        help="client processes, one source address each (default: one per 18,000 connections)",
    )
    parser.add_argument("--in-flight", type=int, default=500, help="connects pending at once per client process")
    parser.add_argument(
        "--kernel-ports",
        action="store_true",
        help="let the kernel pick each client's source port (slow: it searches the range on every connect)",
    )
    parser.add_argument("--rsyslog-conns", type=int, default=19_000)
    parser.add_argument("--servers", default="linelogger,rsyslog")
    args = parser.parse_args(argv)
    if args.client:
        return client(json.loads(args.client))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    print(
        f"open-file limit {soft}/{hard}; "
        f"ip_local_port_range {open('/proc/sys/net/ipv4/ip_local_port_range').read().split()}; "
        f"somaxconn {open('/proc/sys/net/core/somaxconn').read().strip()}",
        flush=True,
    )
    results = []
    for name in args.servers.split(","):
        workdir = tempfile.mkdtemp(prefix=f"idle100k-{name}-")
        port = freePort()
        try:
            if name == "linelogger":
                server, output = startLinelogger(workdir, port, args.workers, args.max_connections)
                conns = args.conns
            elif name == "rsyslog":
                server, output = startRsyslog(workdir, port)
                conns = args.rsyslog_conns
            else:
                raise SystemExit(f"unknown server {name}")
            clients = args.clients or -(-conns // 18_000)
            try:
                result = measure(name, server, output, port, conns, clients, args.in_flight, not args.kernel_ports)
            finally:
                stop(server)
            result["log_tail"] = []
            log = os.path.join(workdir, "twistd.log")
            if os.path.exists(log):
                with open(log) as f:
                    result["log_tail"] = [
                        line.rstrip()
                        for line in f
                        if "Refused" in line or "EMFILE" in line or "open-file" in line or "Stopping:" in line
                    ][-20:]
            print(describe(result), flush=True)
            for line in result["log_tail"]:
                print("  log:", line[:300], flush=True)
            results.append(result)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    for result in results:
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
