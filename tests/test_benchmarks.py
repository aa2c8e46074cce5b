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

import io
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

SMOKE_SERVERS = ["linelogger", "linelogger-quiet", "linelogger-json", "asyncio", "select-relay"]
WORKLOADS = ["ingest-small", "ingest-many", "idle-10k", "chat-100"]
UTF8_WORKLOADS = ["ingest-200", "ingest-200-zh", "ingest-200-latin", "ingest-200-bom"]


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
        for workload in UTF8_WORKLOADS:
            for server in ("discard", "linelogger", "linelogger-json"):
                self.assertIn((workload, server), ran, output)
        self.assertIn(("chat-100-zh", "linelogger"), ran, output)

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
            elif r["server"] == "linelogger" and not r["workload"].startswith("chat-100"):
                self.assertGreater(r["connection_log_events"], 0, where)
            if "file" in r:
                self.assertEqual((r["file"]["missing"], r["file"]["duplicates"], r["file"]["corrupt"]), (0, 0, 0))
            if r["workload"].startswith("ingest"):
                self.assertGreater(r["lines_per_s"], 0, where)
            if r["workload"] in UTF8_WORKLOADS:
                self.assertIsNotNone(r["server_cpu_measured_s"], where)
            self.assertGreater(r["peak_rss_kib"], 0, where)

        markdown = (out / "benchmarks.md").read_text()
        self.assertIn("# linelogger benchmarks", markdown)
        self.assertIn("python -m benchmarks.run --quick", markdown)
        for workload in [*WORKLOADS, *UTF8_WORKLOADS, "chat-100-zh"]:
            self.assertIn(f"## {workload}:", markdown)
        self.assertIn("## UTF-8 beside ASCII", markdown)
        self.assertIn("| Chinese | linelogger --format json |", markdown)
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


class UTF8LinesTests(SynchronousTestCase):
    """
    The UTF-8 workloads' lines: their size, their text, and the checks that
    read them back.
    """

    def test_lines(self) -> None:
        """
        A line has exactly its size, in whole UTF-8 characters, made of its
        text; the BOM lines are RFC 5424 lines whose message starts with a
        byte-order mark.
        """
        from benchmarks.loadgen import TEXTS, lineFor

        for text in TEXTS:
            for size, terminator in ((200, b"\n"), (80, b"\r\n"), (75, b"\n")):
                line = lineFor(3, 7, size, terminator, text)
                self.assertEqual(len(line), size, (text, size))
                self.assertTrue(line.endswith(terminator))
                self.assertIn(b"c00003-000007 ", line)
                line.decode("utf-8")
        self.assertIn("聊天室".encode(), lineFor(0, 0, 200, b"\n", "zh"))
        self.assertIn("café".encode(), lineFor(0, 0, 200, b"\n", "latin"))
        self.assertTrue(lineFor(0, 0, 200, b"\n", "bom").startswith(b"<13>1 "))
        self.assertIn(b" - - - \xef\xbb\xbfc00000-000000 ", lineFor(0, 0, 200, b"\n", "bom"))

    def test_verify(self) -> None:
        """
        The exactly-once check reads Chinese lines back from text and JSON
        records, and a line whose text was changed is corrupt.
        """
        _needLinux()
        from benchmarks.loadgen import lineFor
        from benchmarks.run import verifyFile

        path = Path(tempfile.mkdtemp(prefix="benchmarks-verify-")) / "out.log"
        self.addCleanup(shutil.rmtree, path.parent, True)
        lines = [lineFor(c, s, 200, b"\n", "zh") for c in range(2) for s in range(2)]
        records = [b"2026-11-27T13:19:11.123456Z 127.0.0.1:5 " + line for line in lines[:2]]
        records += [b'{"time":"x","peer":"y","conn":1,"line":"' + line[:-1] + b'"}\n' for line in lines[2:]]
        records[1] = records[1].replace("聊".encode(), b"\\xe8\\x81\\x8a", 1)
        path.write_bytes(b"".join(records))
        self.assertEqual(
            verifyFile(path, 2, 2, 200, b"\n", "zh"),
            {"missing": 1, "duplicates": 0, "corrupt": 1, "other": 0, "records": 4},
        )

    def test_chatReceiver(self) -> None:
        """
        The chat clients' check takes Chinese lines on its fast path, and
        finds one whose text was changed.
        """
        from benchmarks.loadgen import ChatReceiver, lineFor

        def received(damage: bool) -> Any:
            receiver = ChatReceiver(2, 2, 80, "zh")
            for sender in range(2):
                for seq in range(2):
                    receiver.sent(sender, seq, 0.0)
            receiver.startMeasuring(0.0)
            for recipient in range(2):
                data = b"".join(
                    b"<guest%d> " % (1 - recipient) + lineFor(1 - recipient, s, 80, b"\r\n", "zh") for s in range(2)
                )
                if damage and recipient == 0:
                    data = data.replace("對".encode(), "对".encode(), 1)
                receiver.feed(recipient, data, 0.01)
            receiver.analyze()
            return receiver

        clean = received(False)
        self.assertEqual((clean.distinct, clean.malformed, clean.exactChecks), (4, 0, 0))
        damaged = received(True)
        self.assertEqual((damaged.distinct, damaged.malformed, damaged.exactChecks), (3, 1, 1))


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


class UTF8WorkloadTests(SynchronousTestCase):
    """
    The UTF-8 ingest workloads are long enough to measure, each the size of
    its ASCII twin, and rsyslog reads the same input as linelogger.
    """

    def test_longEnough(self) -> None:
        """
        In the full run each UTF-8 ingest workload sends the same 2M lines
        or more as ingest-200 (seconds per server, not a quarter of one),
        with line ids that fit their six digits.
        """
        from benchmarks.run import BESIDE, UTF8_INGEST, WORKLOADS

        full = WORKLOADS["full"]
        for name in ("ingest-200", *UTF8_INGEST):
            sizes = full[name]
            self.assertEqual(sizes, full["ingest-200"], name)
            self.assertGreaterEqual(sizes["conns"] * sizes["lines"], 2000000, name)
            self.assertLess(sizes["lines"], 1000000, name)
        for name in UTF8_INGEST:
            self.assertEqual(BESIDE[name], "ingest-200")

    def test_rsyslogSameInput(self) -> None:
        """
        rsyslog listens with imtcp on the workload's port on 127.0.0.1 and
        writes each message, as received, with omfile to the file that is
        read back; and it runs on every UTF-8 ingest workload.
        """
        from benchmarks.run import UTF8_INGEST, WORKLOAD_SERVERS, Context, rsyslogCommand, rsyslogd

        for name in ("ingest-200", *UTF8_INGEST):
            self.assertIn("rsyslog", WORKLOAD_SERVERS[name])
            self.assertIn("linelogger", WORKLOAD_SERVERS[name])
        if rsyslogd() is None:
            raise SkipTest("rsyslogd is not installed")
        workdir = Path(tempfile.mkdtemp(prefix="benchmarks-rsyslog-"))
        self.addCleanup(shutil.rmtree, workdir, True)
        ctx = Context("ingest-200-zh", 4321, workdir / "output.log", workdir, {"conns": 1, "lines": 1, "size": 200})
        command = rsyslogCommand(ctx)
        self.assertIn("-n", command)
        conf = (workdir / "rsyslog.conf").read_text()
        self.assertIn('input(type="imtcp" port="4321" address="127.0.0.1"', conf)
        self.assertIn(f'action(type="omfile" file="{workdir / "output.log"}"', conf)
        self.assertIn("%rawmsg%", conf)


class TurnsTests(SynchronousTestCase):
    """
    Repeated runs of a workload take turns between its servers.
    """

    def test_turns(self) -> None:
        """
        With --repeat 3 the servers of a workload run in rounds, each once a
        round; a server whose run failed is not run again; each server's
        median is reported, in the workload's order of servers.
        """
        import argparse

        from benchmarks import run as bench

        calls: List[str] = []
        figures = {"discard": [5.0, 9.0, 7.0], "linelogger": [3.0, 1.0, 2.0], "rsyslog": [4.0]}

        def runOne(workload: str, name: str) -> Dict[str, Any]:
            calls.append(name)
            status = "fail" if name == "rsyslog" else "ok"
            figure = figures[name][calls.count(name) - 1]
            return {"workload": workload, "server": name, "status": status, "lines_per_s": figure}

        self.patch(bench.report, "oneLine", lambda result: "")
        args = argparse.Namespace(quick=False, timeout=None, repeat=3, paced_rate=None, paced_seconds=0.0)
        runner = bench.Runner(args, Path(tempfile.gettempdir()))
        runner.log = lambda text: None  # type: ignore[method-assign]
        runner.runOne = runOne  # type: ignore[method-assign, assignment]
        results = runner.runAll(["ingest-200-zh"], ["linelogger", "rsyslog"])
        self.assertEqual(calls, ["discard", "linelogger", "rsyslog", "discard", "linelogger", "discard", "linelogger"])
        self.assertEqual(
            [(r["server"], r["lines_per_s"]) for r in results],
            [("discard", 7.0), ("linelogger", 2.0), ("rsyslog", 4.0)],
        )
        self.assertEqual(results[1]["repeats"], [3.0, 1.0, 2.0])
        self.assertEqual(results[2]["status"], "fail")

    def test_lines(self) -> None:
        """
        C{--lines} sets the lines per connection of the ingest and chat
        workloads, not of idle-10k, and only as many as six-digit ids allow.
        """
        import argparse

        from benchmarks import run as bench

        args = argparse.Namespace(quick=False, timeout=None, repeat=1, paced_rate=None, paced_seconds=0.0, lines=500)
        sizes = bench.Runner(args, Path(tempfile.gettempdir())).sizes
        self.assertEqual(sizes["chat-100-zh"], {"conns": 100, "lines": 500, "size": 80})
        self.assertEqual(sizes["ingest-200"]["lines"], 500)
        self.assertEqual(sizes["idle-10k"], bench.WORKLOADS["full"]["idle-10k"])
        self.assertEqual(bench.WORKLOADS["full"]["chat-100"]["lines"], 50)
        self.assertEqual(bench.lines("999999"), 999999)
        for bad in ("0", "1000000"):
            self.assertRaises(argparse.ArgumentTypeError, bench.lines, bad)


class UTF8ReportTests(SynchronousTestCase):
    """
    The UTF-8 table of the report sets linelogger beside rsyslog by median
    CPU and round by round.
    """

    def test_rounds(self) -> None:
        """
        Each round's lines/s is divided by rsyslog's of the same round; the
        CPU figures are the medians over the runs.
        """
        from benchmarks import report

        def result(server: str, label: str, rates: List[float], cpus: List[float]) -> Dict[str, Any]:
            return {
                "workload": "ingest-200-zh",
                "server": server,
                "label": label,
                "status": "ok",
                "lines_per_s": sorted(rates)[len(rates) // 2],
                "repeats": rates,
                "cpu_repeats": cpus,
                "server_cpu_measured_s": cpus[0],
            }

        results = [
            result("linelogger", "linelogger", [100.0, 300.0, 200.0], [2.0, 9.0, 1.0]),
            result("rsyslog", "rsyslog", [50.0, 400.0, 100.0], [4.0, 3.0, 5.0]),
        ]
        lines = report.utf8Lines(results)
        row = next(line for line in lines if line.startswith("| Chinese | linelogger |"))
        self.assertEqual(row, "| Chinese | linelogger | 200 | 2.00 | - | 2.00 | 2.00 (2.00 / 0.75 / 2.00) | 2.00 |")
        rsyslogRow = next(line for line in lines if line.startswith("| Chinese | rsyslog |"))
        self.assertTrue(rsyslogRow.endswith("| - | - | - |"), rsyslogRow)
        self.assertIn("round by round, median 2.00×", "\n".join(lines))


class FramingBenchmarkTests(SynchronousTestCase):
    """
    C{python -m benchmarks.framing} measures every framing on every text.
    """

    def test_measure(self) -> None:
        """
        Each framing gets all the records of each text (the run checks the
        count) and a time per record.
        """
        from benchmarks import framing

        for text in ("zh", "bom"):
            ns = framing.measure(text, 2000, 4096, 1)
            self.assertEqual(sorted(ns), ["auto", "lf", "nul", "octet"])
            for name, figure in ns.items():
                self.assertGreater(figure, 0, name)

    def test_streams(self) -> None:
        """
        The streams are framed as each framing's senders frame them, and
        each framer gives back the lines.
        """
        from benchmarks import framing
        from logger_service.framing import FRAMERS

        lines = ["日志 a".encode(), b"b c"]
        for name, kind in framing.KINDS.items():
            data = framing.stream(kind, lines)
            self.assertEqual(FRAMERS[name](100, framing.LongLines.split).feed(data), lines, name)
        self.assertEqual(framing.stream("octet", lines), b"8 \xe6\x97\xa5\xe5\xbf\x97 a3 b c")


class EscapingBenchmarkTests(SynchronousTestCase):
    """
    C{python -m benchmarks.escaping} times clean and bad lines of each text.
    """

    def test_lines(self) -> None:
        """
        Lines have the size asked for, are valid UTF-8, and start with the
        text's header.
        """
        from benchmarks import escaping

        for text in ("ascii", "zh", "latin", "bom"):
            made = escaping.line(text, 199)
            self.assertEqual(len(made), 199, text)
            made.decode("utf-8")
        self.assertTrue(escaping.line("bom", 200).startswith(b"<13>1 "))

    def test_measure(self) -> None:
        """
        Every format gets a time for the clean lines and for each bad case.
        """
        from benchmarks import escaping

        result = escaping.measure("zh", 1000, 1)
        self.assertEqual(sorted(result), ["json", "text"])
        for times in result.values():
            self.assertEqual(sorted(times), sorted(["clean", *escaping.BAD]))
            self.assertTrue(all(t > 0 for t in times.values()))

    def test_main(self) -> None:
        """
        The table has a row for each text, size and format, and the worst
        ratio last.
        """
        from benchmarks import escaping

        out = io.StringIO()
        self.patch(sys, "stdout", out)
        self.assertEqual(escaping.main(["--texts", "latin", "--sizes", "200", "--repeat", "1"]), 0)
        lines = out.getvalue().splitlines()
        self.assertEqual(len([row for row in lines if row.startswith("| latin | 200 |")]), 2)
        self.assertTrue(lines[-1].startswith("worst: "), lines[-1])
