"""
Run the real C{twistd linelogger} in a subprocess, for integration tests.

How twistd is started
=====================

The command is::

    [sys.executable, "-c", TWISTD_MAIN, ...twistd options...]

where C{TWISTD_MAIN} imports C{twisted.scripts.twistd} and calls its
C{run()}: exactly what the C{twistd} console script does.  This is chosen
over the C{twistd} script next to C{sys.executable} because:

    - it runs under the very interpreter (and so the very virtualenv and
      Twisted) the tests run under, even when the console script is missing,
      is on no C{PATH}, or has a shebang that points at another Python;
    - C{python -m twisted} would start C{twist}, not C{twistd}, and
      C{twisted.scripts.twistd} has no C{__main__} block for C{-m}.

C{TWISTD_MAIN} sets C{sys.argv[0]} to C{"twistd"} first, so the messages
twistd builds from its own name read as they would for a user.

The subprocess runs in a fresh temporary directory, with the checkout that
holds this file first on C{PYTHONPATH}, so the code under test is this
checkout's even if the virtualenv's editable install points elsewhere.  Its
standard output and error (twistd's log, with C{-n}) go to a file in that
directory rather than a pipe, so a chatty server can never block on a full
pipe, and the log can be read at any time.  (A test of C{--output -} may
ask for its standard output as a pipe; twistd then logs to a C{--logfile}
in that directory instead.)

Ports are found by binding port 0 on 127.0.0.1 and closing the socket; if
another process takes the port before twistd does, the start is retried on
a new port.  twistd is ready once each endpoint accepts a probe connection,
or, for tests of connection limits that a probe would disturb, once its log
says each endpoint is listening.  Nothing here listens on, or connects to,
anything but 127.0.0.1 and UNIX sockets inside the temporary directory.

Every process, socket and directory made here is released by a cleanup
registered with the test case (C{addCleanup}), whether the test passes,
fails, or errors.
"""

from __future__ import annotations

import codecs
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

from twisted.trial.unittest import SynchronousTestCase

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
"""The checkout whose code is under test."""

TWISTD_MAIN = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
"""The program C{python -c} runs: the C{twistd} console script, inline."""

START_TIMEOUT = 20.0
"""The longest wait for twistd to start listening (slow, busy machines)."""

STOP_TIMEOUT = 20.0
"""The longest wait for twistd to exit after SIGTERM before it is killed."""

TIME_PATTERN = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
"""A record's TIME: UTC, RFC 3339, microseconds, C{Z}."""

T = TypeVar("T")


def twistdCommand(*args: str) -> List[str]:
    """
    Return the command line that runs C{twistd} with C{args}.

    See the module docstring for why it is C{python -c ...}.
    """
    return [sys.executable, "-c", TWISTD_MAIN, *args]


def twistdEnvironment() -> Dict[str, str]:
    """
    Return the environment for a twistd subprocess: ours, with this checkout
    first on C{PYTHONPATH}.
    """
    env = dict(os.environ)
    paths = [PROJECT_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def freePort() -> int:
    """
    Return a TCP port on 127.0.0.1 that nothing listened on a moment ago.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def waitFor(what: str, predicate: Callable[[], Optional[T]], timeout: float, interval: float = 0.01) -> T:
    """
    Call C{predicate} until it returns something true, and return that.

    @param what: what is awaited, for the error message.
    @raise AssertionError: if C{timeout} seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def makeTempDir(testCase: SynchronousTestCase) -> str:
    """
    Make a short-pathed temporary directory that is removed after the test.

    Short, so a UNIX socket path inside it stays under the 108-byte limit.
    """
    path = tempfile.mkdtemp(prefix="linelogger-")
    testCase.addCleanup(shutil.rmtree, path, True)
    return path


class TwistdProcess:
    """
    One twistd subprocess, its log in a file.

    @ivar args: the twistd arguments (after the interpreter and C{-c}).
    @ivar workdir: its working directory.
    @ivar logPath: the file that gets its standard output and error.
    @ivar process: the L{subprocess.Popen}.
    """

    def __init__(
        self,
        args: Sequence[str],
        workdir: str,
        logName: str = "twistd.out",
        stdout: Optional[int] = None,
        logFiles: Sequence[str] = (),
    ) -> None:
        """
        Start twistd.

        @param stdout: where its standard output goes instead of the log
            file (e.g. C{subprocess.PIPE}, then read from
            C{self.process.stdout}); its standard error still goes to the
            log file.
        @param logFiles: more files whose content L{log} returns after the
            log file's, e.g. twistd's C{--logfile}.
        """
        self.args = list(args)
        self.workdir = workdir
        self.logPath = os.path.join(workdir, logName)
        self.logFiles = list(logFiles)
        with open(self.logPath, "wb") as logFile:
            self.process = subprocess.Popen(
                twistdCommand(*self.args),
                cwd=workdir,
                env=twistdEnvironment(),
                stdin=subprocess.DEVNULL,
                stdout=logFile if stdout is None else stdout,
                stderr=subprocess.STDOUT if stdout is None else logFile,
            )

    @property
    def pid(self) -> int:
        """
        The process id.
        """
        return self.process.pid

    def log(self) -> str:
        """
        Return everything twistd has written so far (the log file, then
        any C{logFiles}).
        """
        data = b""
        for path in [self.logPath, *self.logFiles]:
            try:
                with open(path, "rb") as f:
                    data += f.read()
            except FileNotFoundError:
                pass
        return data.decode("utf-8", "replace")

    def running(self) -> bool:
        """
        Whether the process has not exited yet.
        """
        return self.process.poll() is None

    def waitForLog(self, text: str, timeout: float = 10.0, count: int = 1) -> str:
        """
        Wait until C{text} occurs at least C{count} times in the log.

        @return: the log.
        """

        def check() -> Optional[str]:
            log = self.log()
            return log if log.count(text) >= count else None

        try:
            return waitFor(f"{count} x {text!r} in the twistd log", check, timeout)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- twistd log ---\n{self.log()}") from None

    def wait(self, timeout: float) -> int:
        """
        Wait up to C{timeout} seconds for the process to exit.

        @return: its exit status.
        @raise AssertionError: if it is still running; it is killed first.
        """
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"twistd did not exit within {timeout}s; killed it\n--- twistd log ---\n{self.log()}"
            ) from None

    def terminate(self) -> None:
        """
        Send SIGTERM, if the process still runs.
        """
        if self.running():
            os.kill(self.process.pid, signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """
        SIGTERM the process and wait for it to exit.

        @return: its exit status.
        """
        self.terminate()
        return self.wait(timeout)

    def kill(self) -> None:
        """
        SIGKILL the process, if it still runs, and reap it.
        """
        if self.running():
            self.process.kill()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def cleanup(self) -> None:
        """
        Make sure the process is gone: SIGTERM, then SIGKILL.
        """
        if self.running():
            self.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()


def runTwistd(
    testCase: SynchronousTestCase,
    args: Sequence[str],
    timeout: float = 30.0,
    workdir: Optional[str] = None,
) -> Tuple[int, str, float]:
    """
    Run twistd with C{args} until it exits.

    @param workdir: its working directory; by default a new temporary one.
    @return: its exit status, its output, and how long it ran in seconds.
    """
    if workdir is None:
        workdir = makeTempDir(testCase)
    started = time.monotonic()
    twistd = TwistdProcess(args, workdir)
    testCase.addCleanup(twistd.cleanup)
    status = twistd.wait(timeout)
    return status, twistd.log(), time.monotonic() - started


def canConnect(address: Any, family: int = socket.AF_INET) -> bool:
    """
    Whether a connection to C{address} succeeds right now.  (It is closed
    straight away: the server sees a connection with no lines.)
    """
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2.0)
    try:
        s.connect(address)
    except OSError:
        return False
    finally:
        s.close()
    return True


class LineLogger:
    """
    A running C{twistd -n linelogger --port tcp:PORT:interface=127.0.0.1
    --output FILE}.

    @ivar testCase: the test it belongs to.
    @ivar workdir: its temporary directory.
    @ivar port: the first TCP port it listens on.
    @ivar ports: every TCP port it listens on.
    @ivar unixPaths: every UNIX socket path it listens on.
    @ivar outputPath: the C{--output} file.
    @ivar twistd: the L{TwistdProcess}.
    """

    def __init__(
        self,
        testCase: SynchronousTestCase,
        *options: str,
        tcpPorts: int = 1,
        unixSockets: int = 0,
        probe: bool = True,
        twistdOptions: Sequence[str] = (),
        stdout: Optional[int] = None,
    ) -> None:
        """
        Start twistd and wait until every endpoint accepts connections.

        @param options: more C{linelogger} options, e.g. C{"--format",
            "json"}.  A later C{--output} overrides the default file.
        @param tcpPorts: how many TCP ports on 127.0.0.1 to listen on.
        @param unixSockets: how many UNIX sockets to listen on.
        @param probe: whether readiness is checked by connecting to each
            endpoint (the server sees a connection with no lines).  If
            C{False}, readiness is its log's C{starting on} line for each
            endpoint instead, and the server sees no connection but the
            test's own: for connection limits and allow lists.
        @param twistdOptions: more twistd options (before C{linelogger}).
        @param stdout: where twistd's standard output goes, e.g.
            C{subprocess.PIPE} for C{--output -} (read it from
            C{self.twistd.process.stdout}).  twistd's own log then goes to
            a C{--logfile} in the temporary directory, which L{log} reads.
        """
        self.testCase = testCase
        self.workdir = makeTempDir(testCase)
        self.outputPath = os.path.join(self.workdir, "records.out")
        self.unixPaths = [os.path.join(self.workdir, f"s{i}.sock") for i in range(unixSockets)]
        self.ports: List[int] = []
        for attempt in range(5):
            self.ports = []
            while len(self.ports) < tcpPorts:
                port = freePort()
                if port not in self.ports:
                    self.ports.append(port)
            portArgs: List[str] = []
            for port in self.ports:
                portArgs += ["--port", f"tcp:{port}:interface=127.0.0.1"]
            for path in self.unixPaths:
                portArgs += ["--port", f"unix:{path}"]
            twistdArgs = ["-n", "--pidfile=", *twistdOptions]
            logFiles: List[str] = []
            if stdout is not None:
                logFiles.append(os.path.join(self.workdir, f"twistd-{attempt}.log"))
                twistdArgs.append(f"--logfile={logFiles[0]}")
            self.twistd = TwistdProcess(
                [*twistdArgs, "linelogger", *portArgs, "--output", self.outputPath, *options],
                self.workdir,
                logName=f"twistd-{attempt}.out",
                stdout=stdout,
                logFiles=logFiles,
            )
            testCase.addCleanup(self.twistd.cleanup)
            listening = self._waitUntilListening() if probe else self._waitUntilLogged()
            if listening:
                break
            log = self.twistd.log()
            if "Address already in use" not in log:
                raise AssertionError(f"twistd did not start listening\n--- twistd log ---\n{log}")
            # Someone else took a port between freePort() and twistd: retry.
        else:
            raise AssertionError("twistd could not find free ports in 5 attempts")
        self.port = self.ports[0]

    def _waitUntilListening(self) -> bool:
        """
        Wait until every endpoint accepts a connection.

        @return: C{False} if twistd exited first.
        """
        deadline = time.monotonic() + START_TIMEOUT
        pending: List[Tuple[int, Any]] = [(socket.AF_INET, ("127.0.0.1", p)) for p in self.ports]
        pending += [(socket.AF_UNIX, path) for path in self.unixPaths]
        while pending:
            if not self.twistd.running():
                return False
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"twistd did not listen within {START_TIMEOUT}s\n--- twistd log ---\n{self.twistd.log()}"
                )
            family, address = pending[0]
            if canConnect(address, family):
                pending.pop(0)
            else:
                time.sleep(0.02)
        return True

    def _waitUntilLogged(self) -> bool:
        """
        Wait until the log says every endpoint is listening (C{... starting
        on PORT}), without connecting to any.

        @return: C{False} if twistd exited first.
        """
        deadline = time.monotonic() + START_TIMEOUT
        expected = [f" starting on {port}\n" for port in self.ports]
        expected += [f" starting on {path!r}\n" for path in self.unixPaths]
        while True:
            log = self.twistd.log()
            if all(text in log for text in expected):
                return True
            if not self.twistd.running():
                return False
            if time.monotonic() > deadline:
                raise AssertionError(f"twistd did not listen within {START_TIMEOUT}s\n--- twistd log ---\n{log}")
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        """
        twistd's process id.
        """
        return self.twistd.pid

    def log(self) -> str:
        """
        The twistd log so far.
        """
        return self.twistd.log()

    def connect(self, port: Optional[int] = None, timeout: float = 10.0) -> socket.socket:
        """
        Open a TCP connection to the server; it is closed after the test.
        """
        s = socket.create_connection(("127.0.0.1", port or self.port), timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.testCase.addCleanup(s.close)
        return s

    def connectUnix(self, path: Optional[str] = None, timeout: float = 10.0) -> socket.socket:
        """
        Open a connection to one of the server's UNIX sockets.
        """
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.testCase.addCleanup(s.close)
        s.settimeout(timeout)
        s.connect(path or self.unixPaths[0])
        return s

    def output(self) -> bytes:
        """
        The C{--output} file's content so far.
        """
        try:
            with open(self.outputPath, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def records(self) -> List[str]:
        """
        The complete records written so far, without their LFs.

        The file must be valid UTF-8.
        """
        data = self.output()
        end = data.rfind(b"\n") + 1
        text = data[:end].decode("utf-8")
        return text.split("\n")[:-1] if text else []

    def waitForRecords(self, count: int, timeout: float = 10.0) -> List[str]:
        """
        Wait until at least C{count} complete records are in the file.

        @return: the records.
        """

        def check() -> Optional[List[str]]:
            records = self.records()
            return records if len(records) >= count else None

        try:
            return waitFor(f"{count} records in {self.outputPath}", check, timeout)
        except AssertionError as e:
            raise AssertionError(
                f"{e}; have {len(self.records())}\n--- records ---\n{self.output()[-2000:]!r}\n"
                f"--- twistd log ---\n{self.log()}"
            ) from None

    def stop(self) -> int:
        """
        SIGTERM twistd and wait until it exits.

        @return: its exit status.
        """
        return self.twistd.stop()


def parseTextRecord(record: str) -> Tuple[str, str, str]:
    """
    Split a text record into C{(TIME, PEER, PAYLOAD)}.

    @raise AssertionError: if it is not C{TIME SP PEER SP PAYLOAD}.
    """
    parts = record.split(" ", 2)
    if len(parts) != 3 or not TIME_PATTERN.match(parts[0]) or not parts[1]:
        raise AssertionError(f"not a text record: {record!r}")
    return parts[0], parts[1], parts[2]


def parseTime(text: str) -> float:
    """
    Parse a record's TIME into a POSIX time.
    """
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def unescape(payload: str) -> bytes:
    """
    Return the bytes a text record's payload stands for.
    """
    result: bytes = codecs.escape_decode(payload.encode("utf-8"))[0]
    return result


def parseJSONRecord(record: str) -> Dict[str, Any]:
    """
    Parse a JSON record; it must be an object.
    """
    value = json.loads(record)
    if not isinstance(value, dict):
        raise AssertionError(f"not a JSON object: {record!r}")
    return value


def recvUntil(s: socket.socket, end: bytes, timeout: float = 10.0) -> bytes:
    """
    Receive until C{end} has arrived (or the peer closed), and return all
    that arrived.
    """
    deadline = time.monotonic() + timeout
    data = b""
    while end not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for {end!r}; got {data!r}")
        s.settimeout(remaining)
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def recvAll(s: socket.socket, timeout: float = 10.0) -> bytes:
    """
    Receive until the peer closes the connection, and return all of it.
    """
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"timed out waiting for the server to close; got {data!r}")
        s.settimeout(remaining)
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


CLEAN_EXIT = (0, -signal.SIGTERM)
"""The exit statuses of a clean twistd shutdown on SIGTERM: after stopping,
twistd raises the signal again on itself, so it usually dies of it."""


def assertCleanShutdown(testCase: SynchronousTestCase, status: int, log: str) -> None:
    """
    Assert that twistd stopped cleanly: a clean status, twistd's own last
    words, and no traceback in its log.
    """
    testCase.assertIn(status, CLEAN_EXIT, log[-3000:])
    testCase.assertIn("Server Shut Down.", log)
    testCase.assertNotIn("Traceback", log)
