"""
The benchmark suite (C{benchmarks/}), run small so that it cannot rot.

The smoke run is the suite's own command, C{python -m benchmarks.run --quick},
in a subprocess: tiny sizes, every workload, against linelogger, the asyncio
server and the select() relay (plus the discard server the suite always
runs), all on 127.0.0.1.  It takes seconds.  The full run is not part of the
test suite: see C{benchmarks/run.py}.
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

SMOKE_SERVERS = ["linelogger", "asyncio", "select-relay"]
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
                self.assertEqual(r["deliveries"], r["deliveries_expected"], where)
                self.assertEqual((r["duplicates"], r["missing"], r["malformed"]), (0, 0, 0), where)
                self.assertGreater(r["deliveries_per_s"], 0, where)
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
