"""
The benchmark suite (C{benchmarks/}), run small so that it cannot rot.

The smoke run is the suite's own command, C{python -m benchmarks.run --quick},
in a subprocess: tiny sizes, every workload, against linelogger (with its
defaults and with --no-connection-log), the asyncio server and the select()
relay (plus the discard server the suite always runs), chat both saturated
and paced at half load, all on 127.0.0.1.  It takes seconds.  The full run
is not part of the test suite: see C{benchmarks/run.py}.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from twisted.trial.unittest import SkipTest, SynchronousTestCase

PROJECT_ROOT = Path(__file__).resolve().parent.parent

SMOKE_SERVERS = ["linelogger", "linelogger-quiet", "asyncio", "select-relay"]
WORKLOADS = ["ingest-small", "ingest-many", "idle-10k", "chat-100"]


def _environment() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _needLinux() -> None:
    if not sys.platform.startswith("linux") or not os.path.exists("/proc/net/tcp"):
        raise SkipTest("the benchmark suite reads Linux's /proc")


class SmokeRunTests(SynchronousTestCase):
    """
    C{python -m benchmarks.run --quick} works end to end.
    """

    def test_quickRun(self) -> None:
        """
        The quick run measures every workload against each server it is
        given, reports that every line arrived exactly once at each server,
        and writes the markdown report.
        """
        _needLinux()
        out = Path(tempfile.mkdtemp(prefix="benchmarks-smoke-"))
        self.addCleanup(shutil.rmtree, out, True)
        results = out / "results.json"
        command = [
            sys.executable,
            "-m",
            "benchmarks.run",
            "--quick",
            "--servers",
            ",".join(SMOKE_SERVERS),
            "--out",
            str(out),
            "--json",
            str(results),
            "--timeout",
            "20",
        ]
        run = subprocess.run(
            command,
            cwd=PROJECT_ROOT,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=180,
        )
        output = run.stdout.decode("utf-8", "replace")
        self.assertEqual(run.returncode, 0, output)
        report: Dict[str, Any] = json.loads(results.read_text())
        runs: List[Dict[str, Any]] = report["results"]

        ran = {(r["workload"], r["server"]) for r in runs}
        for workload in WORKLOADS:
            self.assertIn((workload, "linelogger"), ran, output)
        for workload in ("ingest-small", "ingest-many", "idle-10k"):
            self.assertIn((workload, "asyncio"), ran, output)
            self.assertIn((workload, "linelogger-quiet"), ran, output)
        for workload in ("ingest-small", "ingest-many"):
            self.assertIn((workload, "discard"), ran, output)
        self.assertIn(("chat-100", "select-relay"), ran, output)

        for r in runs:
            where = f"{r['workload']} / {r['server']}: {r.get('why')}\n{output}"
            self.assertEqual(r["status"], "ok", where)
            if r["server"] == "discard":
                self.assertIsNone(r.get("exactly_once"), where)
                self.assertGreater(r["lines_per_s"], 0, where)
                continue
            self.assertIs(r["exactly_once"], True, where)
            if r["workload"] == "chat-100":
                for one in (r, r["paced"]):
                    self.assertEqual(one["status"], "ok", f"{where}; paced: {r['paced'].get('why')}")
                    self.assertIs(one["exactly_once"], True, where)
                    self.assertEqual(one["deliveries"], one["deliveries_expected"], where)
                    self.assertEqual((one["duplicates"], one["missing"], one["malformed"]), (0, 0, 0), where)
                    self.assertGreater(one["deliveries_per_s"], 0, where)
                    self.assertIsNotNone(one["p99_ms"], where)
                paced = r["paced"]
                # Paced at half of what the saturated run reached.
                self.assertAlmostEqual(
                    paced["offered_deliveries_per_s"], r["deliveries_per_s"] / 2, delta=r["deliveries_per_s"] / 100
                )
                self.assertGreater(paced["lines"], 1, where)
            if r["server"] == "linelogger-quiet":
                self.assertEqual(r["connection_log_events"], 0, where)
            elif r["server"] == "linelogger" and r["workload"] != "chat-100":
                self.assertGreater(r["connection_log_events"], 0, where)
            if "file" in r:
                self.assertEqual((r["file"]["missing"], r["file"]["duplicates"], r["file"]["corrupt"]), (0, 0, 0))
            if r["workload"].startswith("ingest"):
                self.assertGreater(r["lines_per_s"], 0, where)
            self.assertGreater(r["peak_rss_kib"], 0, where)

        markdown = (out / "benchmarks.md").read_text()
        self.assertIn("# linelogger benchmarks", markdown)
        self.assertIn("python -m benchmarks.run --quick", markdown)
        for workload in WORKLOADS:
            self.assertIn(f"## {workload}:", markdown)
        self.assertIn("as installed without the tls extra", markdown)
        self.assertIn("| linelogger --no-connection-log |", markdown)
        self.assertIn("At half load", markdown)
        self.assertIn("p99 delivery latency under 20 ms", markdown)


class CommandTests(SynchronousTestCase):
    """
    How the suite starts linelogger.
    """

    def test_withoutTLS(self) -> None:
        """
        linelogger runs as installed without the tls extra: its twistd cannot
        import pyOpenSSL (unless asked for, with linelogger-openssl), and only
        its command is started so.  In chat it gets a send queue the
        benchmark's bursts fit in, C{linelogger-quiet} adds
        C{--no-connection-log}, and C{linelogger-every} logs every
        connection (C{--connection-log-rate 0}).
        """
        from benchmarks.run import SPECS, Context

        def command(name: str, workload: str = "ingest-small") -> List[str]:
            ctx = Context(workload, 1, Path("out.log"), Path("."), {"conns": 1, "lines": 1, "size": 100})
            return list(SPECS[name].command(ctx))

        blocked = "sys.modules['OpenSSL'] = None"
        for name in ("linelogger", "linelogger-quiet", "linelogger-every"):
            self.assertIn(blocked, " ".join(command(name)))
        for name in ("linelogger-openssl", "chatserver"):
            self.assertNotIn(blocked, " ".join(command(name, "chat-100")))
        self.assertIn("--no-connection-log", command("linelogger-quiet"))
        self.assertNotIn("--no-connection-log", command("linelogger"))
        every = command("linelogger-every", "ingest-many")
        self.assertEqual(every[every.index("--connection-log-rate") + 1], "0")
        self.assertNotIn("--connection-log-rate", command("linelogger"))
        chat = command("linelogger", "chat-100")
        self.assertEqual(chat[chat.index("--sendq") + 1], "8388608")


class ChatReceiverTests(SynchronousTestCase):
    """
    The chat clients' check: the fast path and the line-by-line one agree,
    and what is off sends the check line by line.
    """

    def _receiver(self, duplicate: bool = False) -> Any:
        from benchmarks.loadgen import ChatReceiver, lineFor

        conns, lines, size = 3, 4, 40
        receiver = ChatReceiver(conns, lines, size)
        for sender in range(conns):
            for seq in range(lines):
                receiver.sent(sender, seq, 0.001 * seq)
        receiver.startMeasuring(0.0)
        for recipient in range(conns):
            data = b"".join(
                b"<guest%d> " % sender + lineFor(sender, seq, size, b"\r\n")
                for seq in range(lines)
                for sender in range(conns)
                if sender != recipient
            )
            if duplicate and recipient == 1:
                data += data[: data.index(b"\n") + 1]
            # In three chunks, cut mid-line, arriving 10 ms apart.
            third = len(data) // 3
            for i, chunk in enumerate((data[:third], data[third : 2 * third], data[2 * third :])):
                receiver.feed(recipient, chunk, 0.01 * (i + 1))
        return receiver

    def test_agree(self) -> None:
        """
        On clean input the fast path is taken, and it finds the same
        deliveries and latencies as the line-by-line check.
        """
        _needLinux()
        fast = self._receiver()
        fast.analyze()
        exact = self._receiver()
        for recipient in range(exact.conns):
            exact._analyzeExact(recipient, b"".join(exact.chunks[recipient]))
        self.assertEqual(fast.exactChecks, 0)
        self.assertEqual(fast.distinct, 3 * 2 * 4)
        self.assertEqual((fast.distinct, fast.duplicates, fast.malformed), (exact.distinct, 0, 0))
        self.assertEqual(sorted(fast.latencies), sorted(exact.latencies))

    def test_duplicate(self) -> None:
        """
        A line delivered twice is found, by the line-by-line check.
        """
        _needLinux()
        receiver = self._receiver(duplicate=True)
        receiver.analyze()
        self.assertEqual(receiver.exactChecks, 1)
        self.assertEqual((receiver.distinct, receiver.duplicates), (3 * 2 * 4, 1))


class VerifyFileTests(SynchronousTestCase):
    """
    The suite's exactly-once check finds lost, duplicated and damaged lines.
    """

    def test_counts(self) -> None:
        """
        A file with one line missing, one twice and one cut short is
        reported as such; records around the payload do not matter.
        """
        _needLinux()
        from benchmarks.loadgen import lineFor
        from benchmarks.run import verifyFile

        path = Path(tempfile.mkdtemp(prefix="benchmarks-verify-")) / "out.log"
        self.addCleanup(shutil.rmtree, path.parent, True)
        lines = [lineFor(c, s, 100) for c in range(2) for s in range(3)]
        records = [b"2026-11-27T13:19:11.123456Z 127.0.0.1:5 " + line for line in lines]
        records[1] = records[0]  # (0, 1) lost, (0, 0) twice
        records[4] = records[4][:70] + b"\n"  # (1, 1) cut short
        path.write_bytes(b"".join(records) + b"something else\n")
        self.assertEqual(
            verifyFile(path, 2, 3, 100, b"\n"),
            {"missing": 2, "duplicates": 1, "corrupt": 1, "other": 1, "records": 7},
        )


class ProcessTreeTests(SynchronousTestCase):
    """
    The memory sampler finds a server's whole process tree.
    """

    def test_treeMatchesScan(self) -> None:
        """
        L{benchmarks.procinfo.treePids} finds the same processes as a walk
        over every process's parent: children and grandchildren.
        """
        import signal
        import time

        from benchmarks import procinfo

        tree = subprocess.Popen(["sh", "-c", "(sleep 30 & sleep 30 & wait) & sleep 30 & wait"], start_new_session=True)
        self.addCleanup(tree.wait)
        self.addCleanup(os.killpg, tree.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while len(procinfo.treePids(tree.pid)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        children: Dict[int, List[int]] = {}
        for pid, ppid in procinfo._parents().items():
            children.setdefault(ppid, []).append(pid)
        walked, todo = [], [tree.pid]
        while todo:
            pid = todo.pop()
            walked.append(pid)
            todo.extend(children.get(pid, ()))
        self.assertEqual(sorted(procinfo.treePids(tree.pid)), sorted(walked))
        self.assertEqual(len(walked), 5)
