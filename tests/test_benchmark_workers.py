"""
The C{--workers} benchmarks (C{benchmarks.idle100k}, C{benchmarks.workers}),
run small so that they cannot rot.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List

from twisted.trial.unittest import SkipTest, SynchronousTestCase

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run(module: str, *args: str, timeout: float = 300) -> List[str]:
    """
    Run C{python -m MODULE ARGS} from the project root; its output lines.
    """
    if not sys.platform.startswith("linux") or not os.path.exists("/proc/net/tcp"):
        raise SkipTest("the benchmarks read Linux's /proc")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"{module} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout.splitlines()


class Idle100kTests(SynchronousTestCase):
    """
    C{python -m benchmarks.idle100k}, small.
    """

    def test_small(self) -> None:
        """
        600 connections from 2 client processes (two source addresses)
        against C{--workers 2}: all held, one record each, memory per
        connection measured, nothing refused or reset.
        """
        if shutil.which("ss") is None:
            raise SkipTest("needs ss (iproute2)")
        lines = run(
            "benchmarks.idle100k", "--conns", "600", "--workers", "2", "--clients", "2", "--servers", "linelogger"
        )
        result: Dict[str, Any] = json.loads(lines[-1])
        self.assertEqual(result["server"], "linelogger")
        self.assertEqual(result["held"], 600, lines)
        self.assertEqual(result["records"], 600, lines)
        self.assertEqual(result["processes"], 3, lines)
        self.assertEqual(result["client_processes"], 2, lines)
        clients = result["clients"]
        self.assertEqual(
            (clients["connected"], clients["failed"], clients["refused"], clients["reset"]), (600, 0, 0, 0), lines
        )
        self.assertGreater(result["rss_per_conn_bytes"], 0)
        self.assertIsNotNone(result["records_all_s"])


class WorkersBenchmarkTests(SynchronousTestCase):
    """
    C{python -m benchmarks.workers}, small.
    """

    def test_small(self) -> None:
        """
        One run of 20,000 lines with 1 and 2 workers on one core: a rate
        and each side's CPU seconds for both.
        """
        if shutil.which("taskset") is None:
            raise SkipTest("needs taskset (util-linux)")
        cpus = str(min(os.sched_getaffinity(0)))
        lines = run("benchmarks.workers", "--lines", "20000", "--repeat", "1", "--cpus", cpus)
        results = [line for line in lines if line.startswith("cores ")]
        self.assertEqual(len(results), 2, lines)
        self.assertIn("workers 1: median", results[0])
        self.assertIn("CPU: one process", results[0])
        self.assertIn("workers 2: median", results[1])
        self.assertIn("CPU: supervisor", results[1])
        self.assertIn(", workers ", results[1])
        self.assertIn("load generator", results[1])
