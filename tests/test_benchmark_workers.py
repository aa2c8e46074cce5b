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
import time
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


class SuiteWorkersTests(SynchronousTestCase):
    """
    How C{benchmarks.run} measures its C{linelogger-workers} server.
    """

    def test_noTlsInWorkers(self) -> None:
        """
        The workers, started by the supervisor as Python processes of their
        own, cannot import pyOpenSSL either, as twistd itself cannot: every
        process runs as where linelogger is installed without its tls extra.
        """
        from benchmarks.run import SPECS, Context, freePort

        workdir = Path(self.mktemp()).resolve()
        workdir.mkdir(parents=True)
        ctx = Context("idle-10k", freePort(), workdir / "out.log", workdir, {}, None)
        env = dict(os.environ, **SPECS["linelogger-workers"].env(ctx))
        code = "import sys\ntry:\n    import OpenSSL\nexcept ImportError:\n    sys.exit(3)\nsys.exit(0)\n"
        done = subprocess.run([sys.executable, "-c", code], env=env, cwd=workdir, timeout=60, check=False)
        self.assertEqual(done.returncode, 3)
        done = subprocess.run(
            [sys.executable, "-c", "import logger_service.worker"], env=env, cwd=workdir, timeout=60, check=False
        )
        self.assertEqual(done.returncode, 0)

    def test_serverCpuCountsWorkers(self) -> None:
        """
        The server's CPU seconds include those of its processes still
        running, not only the supervisor's own.
        """
        from benchmarks.procinfo import ownCpuSeconds
        from benchmarks.run import serverCpuSeconds

        burn = "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\ntime.sleep(60)\n"
        parent = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import subprocess, sys, time\n"
                f"child = subprocess.Popen([sys.executable, '-c', {burn!r}])\n"
                "print(child.pid, flush=True)\n"
                "child.wait()\n",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        self.addCleanup(parent.wait)
        self.addCleanup(parent.kill)
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        self.addCleanup(os.kill, child, 9)
        deadline = time.monotonic() + 60
        while ownCpuSeconds(child) < 0.3 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(ownCpuSeconds(child), 0.3)
        total = serverCpuSeconds(parent.pid)
        assert total is not None
        self.assertGreaterEqual(total, ownCpuSeconds(parent.pid) + ownCpuSeconds(child))
        self.assertGreaterEqual(total, 0.3)
