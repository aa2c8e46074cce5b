"""
Tests for L{logger_service.systemd} and C{contrib/systemd}: notifications
to a real datagram socket, timed by a L{Clock}; the real twistd under
C{systemd-socket-activate} and with C{NOTIFY_SOCKET}; and the unit files.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from logger_service import systemd
from logger_service.drain import HubService
from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.protocol import LineLoggerProtocol
from logger_service.recorder import Recorder
from logger_service.systemd import (
    STATUS_INTERVAL,
    NotifyService,
    nameInheritedSockets,
    notifyAddress,
    socketActivationProblem,
    watchdogInterval,
)
from logger_service.tap import Options

from .memory import MemorySink
from .twistd_helpers import (
    PROJECT_ROOT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    canConnect,
    freePort,
    makeTempDir,
    parseTextRecord,
    twistdCommand,
    twistdEnvironment,
    waitFor,
)

UNITS = os.path.join(PROJECT_ROOT, "contrib", "systemd")
"""Where the unit files are."""

INSTALLED_TWISTD = "/opt/linelogger/.venv/bin/twistd"
"""The twistd the service unit runs."""

CLEAN_EXIT = (0, -signal.SIGTERM)
"""
Exit statuses of a twistd that shut down cleanly after SIGTERM: once its
services have stopped it ends itself with the signal that stopped it (and
systemd counts an exit by SIGTERM as clean).
"""


def readFile(path: str) -> bytes:
    """
    The content of the file at C{path}, or nothing if there is none yet.
    """
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def readAll(sock: socket.socket) -> List[Dict[str, str]]:
    """
    Read the notifications that arrived on C{sock} and were not read yet.
    """
    messages: List[Dict[str, str]] = []
    sock.setblocking(False)
    while True:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return messages
        messages.append(parseMessage(data))


def parseMessage(data: bytes) -> Dict[str, str]:
    """
    Parse one notification datagram into its assignments.
    """
    assignments: Dict[str, str] = {}
    for line in data.decode("utf-8").split("\n"):
        name, equals, value = line.partition("=")
        if not equals:
            raise AssertionError(f"not NAME=VALUE: {line!r} in {data!r}")
        assignments[name] = value
    return assignments


class NotifySocket:
    """
    A datagram socket bound where a notifying process can reach it, and
    closed after the test.

    @ivar sock: the socket.
    @ivar name: what C{NOTIFY_SOCKET} says for it.
    """

    def __init__(self, testCase: SynchronousTestCase, abstract: bool = False) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        testCase.addCleanup(self.sock.close)
        if abstract:
            name = f"linelogger-test-{uuid.uuid4().hex}"
            self.sock.bind("\0" + name)
            self.name = "@" + name
        else:
            self.name = os.path.join(makeTempDir(testCase), "notify")
            self.sock.bind(self.name)

    def pending(self) -> List[Dict[str, str]]:
        """
        The notifications that arrived and were not read yet.
        """
        return readAll(self.sock)

    def receive(self, timeout: float) -> Optional[Dict[str, str]]:
        """
        Wait up to C{timeout} seconds for the next notification.

        @return: it, or C{None} if none came.
        """
        self.sock.settimeout(max(timeout, 0.001))
        try:
            return parseMessage(self.sock.recv(65536))
        except socket.timeout:
            return None

    def receiveUntil(
        self, name: str, timeout: float, alive: Optional[subprocess.Popen[bytes]] = None
    ) -> List[Dict[str, str]]:
        """
        Receive notifications until one assigns C{name}.

        @param alive: a process that must keep running meanwhile.
        @return: every notification received, the last one assigning C{name}.
        @raise AssertionError: if C{timeout} seconds pass first, or C{alive}
            exits.
        """
        deadline = time.monotonic() + timeout
        messages: List[Dict[str, str]] = []
        while not messages or name not in messages[-1]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s waiting for {name}=; got {messages!r}")
            if alive is not None and alive.poll() is not None:
                raise AssertionError(f"the process exited ({alive.returncode}) before {name}=; got {messages!r}")
            message = self.receive(min(remaining, 0.1))
            if message is not None:
                messages.append(message)
        return messages


def connect(hub: Hub) -> LineLoggerProtocol:
    """
    Connect a client to C{hub}, over a L{StringTransport}.
    """
    protocol = LineLoggerFactory(hub).buildProtocol(None)
    with capturedLogs():
        protocol.makeConnection(StringTransport())
    return protocol


class NotifyServiceTests(SynchronousTestCase):
    """
    L{NotifyService} notifies a real socket, timed by a L{Clock}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.hub = Hub(Recorder(self.sink, self.clock))
        self.notifySocket = NotifySocket(self)

    def makeService(self, **environ: str) -> NotifyService:
        """
        A L{NotifyService} for C{self.hub} whose C{NOTIFY_SOCKET} is
        C{self.notifySocket}, with more of C{environ}; stopped after the test
        if still running.
        """
        environ.setdefault("NOTIFY_SOCKET", self.notifySocket.name)
        service = NotifyService(self.hub.counters, self.clock, environ)

        def stop() -> None:
            if service.running:
                service.stopService()

        self.addCleanup(stop)
        return service

    def test_readyOnStart(self) -> None:
        """
        Nothing is sent before the service starts; on start one notification
        says C{READY=1} and gives the first status.
        """
        service = self.makeService()
        self.assertEqual(self.notifySocket.pending(), [])
        service.startService()
        self.assertEqual(
            self.notifySocket.pending(),
            [{"READY": "1", "STATUS": "0 connections open, 0 lines received, 0 records written"}],
        )

    def test_statusFollowsCounts(self) -> None:
        """
        Every C{statusInterval} seconds the status is sent again if the hub's
        counts changed, and not if they did not.
        """
        service = self.makeService()
        service.startService()
        self.notifySocket.pending()
        protocol = connect(self.hub)
        protocol.dataReceived(b"one\ntwo\n")
        self.clock.advance(STATUS_INTERVAL - 0.5)
        self.assertEqual(self.notifySocket.pending(), [], "not before the interval")
        self.clock.advance(0.5)
        self.assertEqual(
            self.notifySocket.pending(),
            [{"STATUS": "1 connection open, 2 lines received, 2 records written"}],
        )
        self.clock.advance(STATUS_INTERVAL)
        self.assertEqual(self.notifySocket.pending(), [], "nothing changed")
        protocol.dataReceived(b"three\n")
        connect(self.hub)
        self.clock.advance(STATUS_INTERVAL)
        self.assertEqual(
            self.notifySocket.pending(),
            [{"STATUS": "2 connections open, 3 lines received, 3 records written"}],
        )
        self.assertEqual(self.sink.data.count(b"\n"), 3)

    def test_statusShowsRefusalsAndPause(self) -> None:
        """
        The status adds refused connections, and says when input is paused
        because the output is behind.
        """
        service = self.makeService()
        self.hub.counters.refused.update({"max-connections": 2, "allow": 1})
        self.hub.inputPaused = True
        self.assertEqual(
            service.status(),
            "0 connections open, 0 lines received, 0 records written, 3 refused; input paused: the output is behind",
        )

    def test_statusInterval(self) -> None:
        """
        C{statusInterval} sets how often the status is checked.
        """
        service = NotifyService(
            self.hub.counters, self.clock, {"NOTIFY_SOCKET": self.notifySocket.name}, statusInterval=1
        )
        service.startService()
        self.addCleanup(service.stopService)
        self.notifySocket.pending()
        self.hub.counters.linesReceived = 7
        self.clock.advance(1)
        self.assertEqual(
            self.notifySocket.pending(), [{"STATUS": "0 connections open, 7 lines received, 0 records written"}]
        )

    def test_watchdog(self) -> None:
        """
        With C{WATCHDOG_USEC} set, C{WATCHDOG=1} goes out every half of it.
        """
        service = self.makeService(WATCHDOG_USEC="3000000")
        service.startService()
        self.assertEqual(service.watchdogInterval, 1.5)
        self.notifySocket.pending()
        self.clock.advance(1.4)
        self.assertEqual(self.notifySocket.pending(), [])
        self.clock.advance(0.1)
        self.assertEqual(self.notifySocket.pending(), [{"WATCHDOG": "1"}])
        self.clock.advance(1.5)
        self.assertEqual(self.notifySocket.pending(), [{"WATCHDOG": "1"}])

    def test_watchdogForThisProcess(self) -> None:
        """
        C{WATCHDOG_PID}, if set, must be this process for the watchdog to be
        pinged.
        """
        service = self.makeService(WATCHDOG_USEC="200000", WATCHDOG_PID=str(os.getpid()))
        service.startService()
        self.assertEqual(service.watchdogInterval, 0.1)
        self.notifySocket.pending()
        self.clock.advance(0.1)
        self.assertEqual(self.notifySocket.pending(), [{"WATCHDOG": "1"}])

    def test_watchdogForAnotherProcess(self) -> None:
        """
        A watchdog for another process (C{WATCHDOG_PID}) is not pinged.
        """
        service = self.makeService(WATCHDOG_USEC="200000", WATCHDOG_PID=str(os.getpid() + 1))
        service.startService()
        self.assertIsNone(service.watchdogInterval)
        self.notifySocket.pending()
        self.clock.advance(10)
        self.assertNotIn({"WATCHDOG": "1"}, self.notifySocket.pending())

    def test_noWatchdog(self) -> None:
        """
        Without C{WATCHDOG_USEC} nothing is pinged, and only the status
        check is scheduled.
        """
        service = self.makeService()
        service.startService()
        self.assertIsNone(service.watchdogInterval)
        self.assertEqual([call.getTime() for call in self.clock.getDelayedCalls()], [STATUS_INTERVAL])

    def test_watchdogInterval(self) -> None:
        """
        L{watchdogInterval} is half of C{WATCHDOG_USEC}, in seconds, and
        C{None} when it is missing, not positive, not a number, or meant for
        another process.
        """
        self.assertEqual(watchdogInterval({"WATCHDOG_USEC": "30000000"}, 42), 15.0)
        self.assertEqual(watchdogInterval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42"}, 42), 15.0)
        self.assertIsNone(watchdogInterval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "43"}, 42))
        self.assertIsNone(watchdogInterval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, 42))
        for usec in ("", "0", "-5", "soon"):
            self.assertIsNone(watchdogInterval({"WATCHDOG_USEC": usec}, 42), usec)
        self.assertIsNone(watchdogInterval({}, 42))

    def test_stopping(self) -> None:
        """
        Stopping sends C{STOPPING=1} with the status, and ends the status
        updates and watchdog pings.
        """
        service = self.makeService(WATCHDOG_USEC="1000000")
        service.startService()
        connect(self.hub)
        self.notifySocket.pending()
        service.stopService()
        self.assertEqual(
            self.notifySocket.pending(),
            [{"STOPPING": "1", "STATUS": "Stopping: 1 connection open, 0 lines received, 0 records written"}],
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(60)
        self.assertEqual(self.notifySocket.pending(), [])

    def test_abstractSocket(self) -> None:
        """
        C{NOTIFY_SOCKET=@NAME} names an abstract socket.
        """
        abstract = NotifySocket(self, abstract=True)
        service = self.makeService(NOTIFY_SOCKET=abstract.name, WATCHDOG_USEC="2000000")
        service.startService()
        self.clock.advance(1)
        service.stopService()
        messages = abstract.pending()
        self.assertEqual([sorted(m) for m in messages], [["READY", "STATUS"], ["WATCHDOG"], ["STATUS", "STOPPING"]])
        self.assertEqual(self.notifySocket.pending(), [])

    def test_notifyAddress(self) -> None:
        """
        L{notifyAddress} turns C{@NAME} into an abstract address, keeps a
        path, and gives C{None} for anything else.
        """
        self.assertEqual(notifyAddress({"NOTIFY_SOCKET": "/run/systemd/notify"}), "/run/systemd/notify")
        self.assertEqual(notifyAddress({"NOTIFY_SOCKET": "@/org/example"}), "\0/org/example")
        for value in ("", "relative/path", "vsock:2:1234"):
            self.assertIsNone(notifyAddress({"NOTIFY_SOCKET": value}), value)
        self.assertIsNone(notifyAddress({}))

    def test_withoutNotifySocket(self) -> None:
        """
        Without C{NOTIFY_SOCKET} the service does nothing at all: no socket,
        no timers (even with C{WATCHDOG_USEC}), no log, no error.
        """
        service = NotifyService(self.hub.counters, self.clock, {"WATCHDOG_USEC": "1000000"})
        with capturedLogs() as events:
            service.startService()
            self.assertEqual(self.clock.getDelayedCalls(), [])
            self.assertFalse(service.notify("READY=1"))
            self.clock.advance(60)
            service.stopService()
        self.assertEqual(events, [])
        self.assertIsNone(service.watchdogInterval)
        self.assertEqual(self.notifySocket.pending(), [])

    def test_unsupportedNotifySocket(self) -> None:
        """
        A C{NOTIFY_SOCKET} of an unsupported kind is logged, once, and
        otherwise ignored.
        """
        service = NotifyService(self.hub.counters, self.clock, {"NOTIFY_SOCKET": "vsock:2:1234"})
        with capturedLogs() as events:
            service.startService()
            self.clock.advance(60)
            service.stopService()
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])
        self.assertIn("vsock:2:1234", events[0]["log_format"].format(**events[0]))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_sendErrorsLoggedOnce(self) -> None:
        """
        When the socket is gone, sending fails quietly: logged once, never
        raised.  Once it is back, notifications arrive again, and a later
        failure is logged again.
        """
        service = self.makeService(WATCHDOG_USEC="1000000")
        service.startService()
        self.notifySocket.sock.close()
        os.remove(self.notifySocket.name)
        with capturedLogs() as events:
            self.clock.advance(0.5)
            self.clock.advance(0.5)
            self.hub.counters.linesReceived = 1
            self.clock.advance(STATUS_INTERVAL)
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])
        message = events[0]["log_format"].format(**events[0])
        self.assertIn(self.notifySocket.name, message)
        self.assertIn("No such file or directory", message)

        again = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(again.close)
        again.bind(self.notifySocket.name)
        self.clock.advance(0.5)
        self.assertEqual(readAll(again), [{"WATCHDOG": "1"}])
        # The status that could not be sent is sent at the next check.
        self.clock.advance(2 * STATUS_INTERVAL)
        self.assertIn({"STATUS": "0 connections open, 1 line received, 0 records written"}, readAll(again))

        again.close()
        with capturedLogs() as events:
            self.clock.advance(1)
            service.stopService()
        self.assertEqual([e["log_level"] for e in events], [LogLevel.warn])

    def test_orderInService(self) -> None:
        """
        The service works as the last child of a L{MultiService} after the
        L{HubService}: it stops first, so C{STOPPING=1} goes out before the
        drain.
        """
        from twisted.application.service import MultiService

        top = MultiService()
        HubService(self.hub, self.clock, drainTimeout=5).setServiceParent(top)
        service = self.makeService()
        service.setServiceParent(top)
        top.startService()
        connect(self.hub)
        self.notifySocket.pending()
        with capturedLogs():
            top.stopService()
        self.assertEqual(
            self.notifySocket.pending(),
            [{"STOPPING": "1", "STATUS": "Stopping: 1 connection open, 0 lines received, 0 records written"}],
        )


class InheritedSocketTests(SynchronousTestCase):
    """
    L{nameInheritedSockets} and L{socketActivationProblem}.
    """

    def setUp(self) -> None:
        self.patch(systemd, "INHERITED_NAMES", [])

    def test_unnamed(self) -> None:
        """
        Sockets passed without names are named C{unknown}, as
        C{sd_listen_fds_with_names(3)} does, so Twisted keeps them.
        """
        from twisted.python.systemd import ListenFDs

        pid = os.getpid()  # Twisted checks LISTEN_PID against it.
        environ = {"LISTEN_PID": str(pid), "LISTEN_FDS": "2"}
        self.assertEqual(nameInheritedSockets(environ, pid), ["unknown", "unknown"])
        self.assertEqual(environ["LISTEN_FDNAMES"], "unknown:unknown")
        self.assertEqual(systemd.INHERITED_NAMES, ["unknown", "unknown"])
        fds = ListenFDs.fromEnvironment(environ, start=3)
        self.assertEqual(fds.inheritedDescriptors(), [3, 4])

    def test_named(self) -> None:
        """
        Names systemd gave are kept.
        """
        environ = {"LISTEN_PID": "42", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"}
        self.assertEqual(nameInheritedSockets(environ, 42), ["web", "admin"])
        self.assertEqual(environ["LISTEN_FDNAMES"], "web:admin")

    def test_otherProcess(self) -> None:
        """
        Sockets meant for another process (C{LISTEN_PID}), or none at all:
        nothing changes.
        """
        for environ in [{"LISTEN_PID": "41", "LISTEN_FDS": "1"}, {}, {"LISTEN_PID": "42", "LISTEN_FDS": "x"}]:
            before = dict(environ)
            self.assertEqual(nameInheritedSockets(environ, 42), [])
            self.assertEqual(environ, before)

    def test_problem(self) -> None:
        """
        The message for a C{systemd:} endpoint that names no socket passed
        says which there are.
        """
        self.assertIn("systemd passed no sockets", socketActivationProblem("systemd:domain=INET:index=0"))
        nameInheritedSockets({"LISTEN_PID": "7", "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}, 7)
        self.assertEqual(
            socketActivationProblem("systemd:domain=INET:index=5"),
            "no such socket among those systemd passed (index=0 name=a, index=1 name=b)",
        )


class WiringTests(SynchronousTestCase):
    """
    C{twistd linelogger} notifies systemd.  (Passes once C{tap.makeService}
    adds a L{NotifyService}.)
    """

    def test_lastChild(self) -> None:
        """
        L{makeService} adds a L{NotifyService} for its hub as the last child,
        after the listeners, so that it starts once they listen and stops
        before the hub drains.
        """
        from twisted.internet.testing import MemoryReactorClock

        from logger_service.tap import makeService

        options = Options()
        options.parseOptions(["--output", os.path.abspath(self.mktemp())])
        top = makeService(options, MemoryReactorClock())
        self.addCleanup(lambda: top.recorder.sink.close())
        services = list(top)
        notify = services[-1]
        self.assertIsInstance(notify, NotifyService)
        assert isinstance(notify, NotifyService)
        hubService = services[0]
        assert isinstance(hubService, HubService)
        self.assertIs(notify.counters, hubService.hub.counters)
        self.assertEqual([s for s in services if isinstance(s, NotifyService)], [notify])


class Process:
    """
    A subprocess whose output goes to a file, stopped after the test.

    @ivar process: the L{subprocess.Popen}.
    @ivar logPath: where its standard output and error go.
    """

    def __init__(
        self, testCase: SynchronousTestCase, command: Sequence[str], env: Dict[str, str], workdir: str
    ) -> None:
        self.logPath = os.path.join(workdir, f"process-{uuid.uuid4().hex[:8]}.out")
        with open(self.logPath, "wb") as logFile:
            self.process: subprocess.Popen[bytes] = subprocess.Popen(
                list(command), cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=logFile, stderr=subprocess.STDOUT
            )
        testCase.addCleanup(self.cleanup)

    def log(self) -> str:
        """
        Everything it wrote so far.
        """
        with open(self.logPath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """
        SIGTERM it and wait until it exits.

        @return: its exit status.
        @raise AssertionError: if it does not exit in time (it is killed).
        """
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"did not exit within {timeout}s of SIGTERM\n--- log ---\n{self.log()}") from None

    def cleanup(self) -> None:
        """
        Make sure it is gone.
        """
        if self.process.poll() is None:
            try:
                self.stop()
            except AssertionError:
                pass


def startUntil(
    testCase: SynchronousTestCase,
    start: Callable[[int], Process],
    ready: Callable[[Process], bool],
    attempts: int = 5,
) -> Tuple[Process, int]:
    """
    Start a process listening on a free port, retrying on a new port when
    another process took it first.

    @param start: called with a port, starts the process.
    @param ready: called with the process, returns once it is ready, or
        C{False} if it exited.
    @return: the process, and its port.
    """
    for _ in range(attempts):
        port = freePort()
        process = start(port)
        if ready(process):
            return process, port
        if "Address already in use" not in process.log():
            raise AssertionError(f"did not start\n--- log ---\n{process.log()}")
    raise AssertionError(f"no free port in {attempts} attempts")


class SocketActivationTests(SynchronousTestCase):
    """
    The real twistd takes its listening socket from
    C{systemd-socket-activate}, as it would from C{linelogger.socket}.
    """

    def setUp(self) -> None:
        self.socketActivate = shutil.which("systemd-socket-activate")
        if self.socketActivate is None:
            self.skipTest("systemd-socket-activate (package systemd) is not on PATH")

    def activate(self, *assignments: str, fdname: bool = True, index: int = 0) -> Tuple[Process, int, str]:
        """
        Start C{systemd-socket-activate -l 127.0.0.1:PORT} set to run twistd
        with C{--port systemd:domain=INET:index=INDEX} when a client connects.

        @param assignments: more C{NAME=VALUE} for twistd's environment.
        @param fdname: whether to name the socket (C{--fdname}: systemd
            always names them, in C{LISTEN_FDNAMES}); without, as older
            systemd and other activators do, C{LISTEN_FDNAMES} is unset.
        @param index: the C{index=} in the C{--port} description.
        @return: the process (C{systemd-socket-activate}, then twistd), the
            port, and the C{--output} file.
        """
        workdir = makeTempDir(self)
        output = os.path.join(workdir, "records.out")
        env = twistdEnvironment()
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(name, None)
        # systemd-socket-activate passes on only the environment it is told to.
        passed = [
            f"{name}={value}"
            for name, value in env.items()
            if name.startswith(("PYTHON", "COVERAGE", "LC_")) or name in ("LANG", "VIRTUAL_ENV", "TMPDIR")
        ]
        passed += assignments

        def start(port: int) -> Process:
            assert self.socketActivate is not None
            command = [self.socketActivate, "-l", f"127.0.0.1:{port}"]
            if fdname:
                command.append("--fdname=linelogger")
            for assignment in passed:
                command += ["-E", assignment]
            command += twistdCommand(
                "-n", "--pidfile=", "linelogger", "--port", f"systemd:domain=INET:index={index}", "--output", output
            )
            return Process(self, command, env, workdir)

        def listening(process: Process) -> bool:
            def check() -> Optional[bool]:
                if process.process.poll() is not None:
                    return True
                return "Listening on " in process.log() or None

            waitFor("systemd-socket-activate to listen", check, START_TIMEOUT)
            return process.process.poll() is None

        activator, port = startUntil(self, start, listening)
        self.assertNotIn("Execing", activator.log(), "twistd does not start before a client connects")
        return activator, port, output

    def test_activated(self) -> None:
        """
        twistd starts when the first client connects, takes the listening
        socket, and records that client's line.
        """
        self.recordsFirstLine(fdname=True)

    def test_activatedWithoutNames(self) -> None:
        """
        The same without C{LISTEN_FDNAMES} (C{systemd-socket-activate}
        without C{--fdname}, systemd before 227, other activators), where
        Twisted alone finds no socket.
        """
        self.recordsFirstLine(fdname=False)

    def test_wrongIndex(self) -> None:
        """
        An index beyond the sockets passed: twistd exits non-zero with one
        line naming the sockets there are, and no traceback.
        """
        for fdname in (True, False):
            activator, port, output = self.activate(fdname=fdname, index=1)
            client = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.addCleanup(client.close)
            # systemd-socket-activate execs twistd: its status is twistd's.
            self.assertEqual(activator.process.wait(START_TIMEOUT), 1, activator.log())
            log = activator.log()
            self.assertNotIn("Traceback", log)
            [line] = [line for line in log.splitlines() if line.startswith("linelogger: ")]
            name = "linelogger" if fdname else "unknown"
            self.assertEqual(
                line,
                "linelogger: --port systemd:domain=INET:index=1: no such socket among those systemd "
                f"passed (index=0 name={name})",
            )

    def recordsFirstLine(self, fdname: bool) -> None:
        """
        Start twistd socket-activated, connect, check the line is recorded.
        """
        activator, port, output = self.activate(fdname=fdname)
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"activated\n")

        def recorded() -> Optional[List[str]]:
            lines = readFile(output).decode("utf-8").splitlines()
            return lines or None

        try:
            records = waitFor("the record", recorded, START_TIMEOUT)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- log ---\n{activator.log()}") from None
        self.assertEqual(len(records), 1)
        _, peer, payload = parseTextRecord(records[0])
        self.assertEqual((peer, payload), (f"127.0.0.1:{client.getsockname()[1]}", "activated"))
        self.assertIn("Execing", activator.log())
        self.assertIn(activator.stop(), CLEAN_EXIT, activator.log())
        self.assertIn("Server Shut Down.", activator.log())

    def test_activatedNotifies(self) -> None:
        """
        Socket-activated, as under C{linelogger.socket}, twistd says
        C{READY=1} once it has taken the socket, and its first client, which
        connected before twistd ran, is counted.  (Passes once
        C{tap.makeService} adds a L{NotifyService}.)
        """
        notifySocket = NotifySocket(self)
        activator, port, output = self.activate(f"NOTIFY_SOCKET={notifySocket.name}")
        self.assertEqual(notifySocket.pending(), [])
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"early\n")
        try:
            ready = notifySocket.receiveUntil("READY", START_TIMEOUT, alive=activator.process)[-1]
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- log ---\n{activator.log()}") from None
        self.assertEqual(ready["READY"], "1")
        waitFor("the record", lambda: b" early\n" in readFile(output), 10)
        os.kill(activator.process.pid, signal.SIGTERM)
        stopping = notifySocket.receiveUntil("STOPPING", STOP_TIMEOUT)[-1]
        self.assertTrue(stopping["STATUS"].startswith("Stopping: 1 connection open, 1 line received, "), stopping)
        self.assertIn(activator.stop(), CLEAN_EXIT, activator.log())


class NotifyTwistdTests(SynchronousTestCase):
    """
    The real twistd notifies C{NOTIFY_SOCKET}.  (Passes once
    C{tap.makeService} adds a L{NotifyService}.)
    """

    def test_notifies(self) -> None:
        """
        twistd sends C{READY=1} with a status once it listens, C{WATCHDOG=1}
        every C{WATCHDOG_USEC / 2}, and C{STOPPING=1} on SIGTERM, after
        which it exits cleanly and pings no more.
        """
        workdir = makeTempDir(self)
        output = os.path.join(workdir, "records.out")
        notifySocket = NotifySocket(self)
        env = twistdEnvironment()
        for name in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_PID"):
            env.pop(name, None)
        env.update(NOTIFY_SOCKET=notifySocket.name, WATCHDOG_USEC="200000")
        messages: List[Dict[str, str]] = []

        def start(port: int) -> Process:
            command = twistdCommand(
                "-n", "--pidfile=", "linelogger", "--port", f"tcp:{port}:interface=127.0.0.1", "--output", output
            )
            return Process(self, command, env, workdir)

        def ready(process: Process) -> bool:
            try:
                messages.extend(notifySocket.receiveUntil("READY", START_TIMEOUT, alive=process.process))
            except AssertionError:
                if process.process.poll() is None:
                    raise AssertionError(f"no READY=1\n--- log ---\n{process.log()}") from None
                return False
            return True

        twistd, port = startUntil(self, start, ready)
        self.assertTrue(canConnect(("127.0.0.1", port)), "listening by the time it says READY=1")
        self.assertEqual(
            messages[-1], {"READY": "1", "STATUS": "0 connections open, 0 lines received, 0 records written"}
        )
        self.assertEqual([m for m in messages[:-1] if "WATCHDOG" not in m], [], "nothing else before READY=1")

        pings = 0
        deadline = time.monotonic() + 10
        while pings < 3:
            message = notifySocket.receive(deadline - time.monotonic())
            self.assertIsNotNone(message, f"3 WATCHDOG=1 within 10s, got {pings}")
            pings += message == {"WATCHDOG": "1"}

        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)
        client.sendall(b"counted\n")
        waitFor("the record", lambda: b" counted\n" in readFile(output), 10)

        os.kill(twistd.process.pid, signal.SIGTERM)
        stopping = notifySocket.receiveUntil("STOPPING", STOP_TIMEOUT)[-1]
        self.assertEqual(stopping["STOPPING"], "1")
        self.assertTrue(stopping["STATUS"].startswith("Stopping: 1 connection open, 1 line received, "), stopping)
        self.assertIn(twistd.stop(), CLEAN_EXIT, twistd.log())
        self.assertIn("Server Shut Down.", twistd.log())
        self.assertEqual(notifySocket.pending(), [], "nothing after STOPPING=1")
        self.assertNotIn("Cannot notify systemd", twistd.log())


def readUnit(path: str) -> Dict[str, Dict[str, List[str]]]:
    """
    Parse a systemd unit file: section, then key, then every value given.
    """
    sections: Dict[str, Dict[str, List[str]]] = {}
    section: Dict[str, List[str]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";")):
                continue
            if line.startswith("["):
                section = sections.setdefault(line.strip("[]"), {})
                continue
            key, _, value = line.partition("=")
            section.setdefault(key.strip(), []).append(value.strip())
    return sections


class UnitFileTests(SynchronousTestCase):
    """
    C{contrib/systemd/linelogger.service} and C{linelogger.socket} agree
    with linelogger and with each other, and C{systemd-analyze verify}
    accepts them.
    """

    def setUp(self) -> None:
        self.service = readUnit(os.path.join(UNITS, "linelogger.service"))
        self.socket = readUnit(os.path.join(UNITS, "linelogger.socket"))

    def test_execStart(self) -> None:
        """
        The service runs twistd in the foreground without a pidfile, with
        linelogger options that parse, listening on the socket passed in.
        """
        [execStart] = self.service["Service"]["ExecStart"]
        command = shlex.split(execStart)
        self.assertEqual(command[0], INSTALLED_TWISTD)
        plugin = command.index("linelogger")
        self.assertIn("--nodaemon", command[1:plugin])
        self.assertIn("--pidfile=", command[1:plugin])
        options = Options()
        options.parseOptions(command[plugin + 1 :])
        self.assertEqual(options["port"], ["systemd:domain=INET6:index=0"])
        self.assertEqual(options["output"], "/var/log/linelogger/records.log")

    def test_installSteps(self) -> None:
        """
        README.rst and the service unit show the install steps the unit
        expects: a virtualenv where C{ExecStart} looks, linelogger
        installed into it, its plugin cache written, both units copied.
        """
        venv = os.path.dirname(os.path.dirname(INSTALLED_TWISTD))
        with open(os.path.join(PROJECT_ROOT, "README.rst")) as f:
            readme = f.read()
        section = readme.split("Running under systemd\n", 1)[1]
        commands = [line.strip()[2:] for line in section.splitlines() if line.startswith("    # ")]
        with open(os.path.join(UNITS, "linelogger.service")) as f:
            unitComments = [line[1:].strip() for line in f if line.startswith("#     ")]
        for steps in (commands, unitComments):
            self.assertEqual(steps[0], f"python3 -m venv {venv}")
            self.assertTrue(steps[1].startswith(f"{venv}/bin/pip install ."), steps)
            self.assertTrue(steps[2].startswith(f"{INSTALLED_TWISTD} --help"), steps)
            self.assertEqual(
                steps[3], "cp contrib/systemd/linelogger.service contrib/systemd/linelogger.socket /etc/systemd/system/"
            )
            self.assertEqual(steps[4:6], ["systemctl daemon-reload", "systemctl enable --now linelogger.socket"])

    def test_serviceSettings(self) -> None:
        """
        Notify type, watchdog, reload by SIGHUP, enough descriptors for
        C{--max-connections}, time enough to drain at stop.
        """
        service = self.service["Service"]
        defaults = Options()
        defaults.parseOptions([])
        self.assertEqual(service["Type"], ["notify"])
        self.assertEqual(service["NotifyAccess"], ["main"])
        self.assertEqual(service["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(service["KillSignal"], ["SIGTERM"])
        self.assertEqual(service["Restart"], ["on-failure"])
        self.assertEqual(service["WatchdogSec"], ["30"])
        self.assertGreater(int(service["LimitNOFILE"][0]), defaults["max-connections"])
        # Input drains for up to --drain-timeout, then the output as long.
        self.assertGreater(int(service["TimeoutStopSec"][0]), 2 * defaults["drain-timeout"])
        for setting, value in [
            ("DynamicUser", "yes"),
            ("LogsDirectory", "linelogger"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("NoNewPrivileges", "yes"),
            ("PrivateTmp", "yes"),
        ]:
            self.assertEqual(service[setting], [value], setting)
        self.assertEqual(self.service["Unit"]["Requires"], ["linelogger.socket"])

    def test_socketSettings(self) -> None:
        """
        The socket unit listens on port 1234 for one service instance.
        """
        settings = self.socket["Socket"]
        self.assertEqual(settings["ListenStream"], ["1234"])
        self.assertEqual(settings["Accept"], ["no"])
        self.assertEqual(settings["Backlog"], ["1024"])
        self.assertEqual(self.socket["Install"]["WantedBy"], ["sockets.target"])

    def test_systemdAnalyzeVerify(self) -> None:
        """
        C{systemd-analyze verify} finds nothing wrong with either unit (given
        a twistd path that exists here).
        """
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze (package systemd) is not on PATH")
        workdir = makeTempDir(self)
        for name in ("linelogger.service", "linelogger.socket"):
            with open(os.path.join(UNITS, name), encoding="utf-8") as f:
                text = f.read()
            with open(os.path.join(workdir, name), "w", encoding="utf-8") as f:
                f.write(text.replace(INSTALLED_TWISTD, sys.executable))
        result = subprocess.run(
            [analyze, "verify", "--man=no", "./linelogger.service", "./linelogger.socket"],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=60,
        )
        output = result.stdout.decode("utf-8", "replace")
        if result.returncode != 0 and "linelogger" not in output:
            self.skipTest(f"systemd-analyze verify cannot run here: {output.strip()}")
        # verify warns about unknown keys and bad values yet exits with 0.
        complaints = [line for line in output.splitlines() if "linelogger" in line]
        self.assertEqual((result.returncode, complaints), (0, []), output)
