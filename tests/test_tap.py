"""
Tests for L{logger_service.tap}: the options and the service they build.
"""

from __future__ import annotations

import io
import os
import re
import socket
import sys
from typing import Any, List

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from logger_service import __version__, fdlimit, tap
from logger_service.drain import HubService
from logger_service.factory import LineLoggerFactory
from logger_service.framing import LongLines
from logger_service.optionvalues import withBacklog
from logger_service.rootservice import LineLoggerService
from logger_service.startup import StartupError, checkEndpoint, endpointType
from logger_service.tap import Options, TwistdOptions, makeService


class Reactor(MemoryReactorClock):
    """
    A memory reactor that also takes calls from other threads (the
    recorder's writer thread), running them on its clock.
    """

    def callFromThread(self, f: Any, *args: Any) -> None:
        self.callLater(0, f, *args)


def parse(*argv: str, nodaemon: bool = True) -> Options:
    """
    Parse C{argv} as twistd would, under a parent with C{nodaemon} set.
    """
    options = Options()
    options.parent = {"nodaemon": nodaemon}  # type: ignore[assignment]
    options.parseOptions(list(argv))
    return options


class OptionsTests(SynchronousTestCase):
    """
    Each option's parsing and checks.
    """

    def test_defaults(self) -> None:
        """
        By default: port tcp:1234, records as text on standard output,
        lines up to 64 KiB, longer ones split, no greeting.
        """
        options = parse()
        self.assertEqual(options["port"], ["tcp:1234"])
        self.assertEqual(options["output"], "-")
        self.assertEqual(options["format"], "text")
        self.assertEqual(options["max-line-length"], 65536)
        self.assertIs(options["long-lines"], LongLines.split)
        self.assertIsNone(options["greeting"])

    def test_ports(self) -> None:
        """
        C{--port} repeats; a bare number means TCP.
        """
        options = parse("--port", "1234", "-p", "tcp6:5678", "--port=unix:/tmp/x.sock")
        self.assertEqual(options["port"], ["tcp:1234", "tcp6:5678", "unix:/tmp/x.sock"])

    def test_badValues(self) -> None:
        """
        Unknown formats and policies and non-positive lengths are refused
        with a message naming the option.
        """
        for argv, word in [
            (["--format", "xml"], "--format"),
            (["--long-lines", "drop"], "--long-lines"),
            (["--max-line-length", "0"], "max-line-length"),
            (["--max-line-length", "many"], "max-line-length"),
        ]:
            with self.assertRaises(usage.UsageError) as raised:
                parse(*argv)
            self.assertIn(word, str(raised.exception))

    def test_connectionLogRate(self) -> None:
        """
        C{--connection-log-rate}: 20 by default; 0 (every connection) or a
        positive number; anything else is refused, naming the option.
        """
        self.assertEqual(parse()["connection-log-rate"], 20.0)
        self.assertEqual(parse("--connection-log-rate", "0")["connection-log-rate"], 0.0)
        self.assertEqual(parse("--connection-log-rate", "2.5")["connection-log-rate"], 2.5)
        for value in ["-1", "many", "", "inf", "nan"]:
            with self.assertRaises(usage.UsageError) as raised:
                parse("--connection-log-rate", value)
            self.assertIn("--connection-log-rate takes 0 or a positive number", str(raised.exception))

    def test_daemonNeedsFile(self) -> None:
        """
        As a daemon, records on standard output would be lost: refused.
        With a file, or in the foreground, it is fine.
        """
        with self.assertRaises(usage.UsageError) as raised:
            parse(nodaemon=False)
        self.assertIn("--output", str(raised.exception))
        parse("--output", "records.log", nodaemon=False)
        parse(nodaemon=True)


class HelpAndVersionTests(SynchronousTestCase):
    """
    C{--help} and C{--version}.
    """

    def test_helpHasNoRunsOfSpaces(self) -> None:
        """
        No option's text in C{--help} has a run of spaces inside it (the
        indentation of a multi-line docstring, say): spaces repeat only
        between the option column and its text.
        """
        usageText = str(Options())
        optionLines = [line.strip() for line in usageText.splitlines() if line.startswith(" ")]
        self.assertGreater(len(optionLines), 20)
        for line in optionLines:
            # The option and its text, or a text's continuation: no more.
            self.assertLessEqual(len(re.split(r"\s{2,}", line)), 2 if line.startswith("-") else 1, line)
        self.assertIn("e.g. 10.0.0.0/8, or one address", " ".join(usageText.split()))

    def test_version(self) -> None:
        """
        C{--version} prints linelogger's name and version, and Twisted's,
        and exits with status 0.
        """
        import twisted

        out = io.StringIO()
        self.patch(sys, "stdout", out)
        with self.assertRaises(SystemExit) as raised:
            parse("--version")
        self.assertIn(raised.exception.code, (None, 0))
        self.assertEqual(out.getvalue(), f"linelogger {__version__} (Twisted {twisted.__version__})\n")


class ChatAckTests(SynchronousTestCase):
    """
    C{--ack} has no place in chat mode.
    """

    def test_refused(self) -> None:
        """
        C{--chat --ack} is refused with the reason: the acknowledgements
        would show in the chat.  Each alone is fine.
        """
        with self.assertRaises(usage.UsageError) as raised:
            parse("--chat", "--ack")
        self.assertIn("--ack does not go with --chat", str(raised.exception))
        self.assertTrue(parse("--chat")["chat"])
        self.assertTrue(parse("--ack")["ack"])


def twistdParse(*argv: str) -> str:
    """
    Parse C{argv} as twistd's C{linelogger} subcommand does, expecting it
    to stop twistd.

    @return: the message it exits with.
    """
    options = TwistdOptions()
    options.parent = {"nodaemon": True}  # type: ignore[assignment]
    if "--port" not in argv:
        # Not the default, tcp:1234 on every interface, which would be bound.
        argv = ("--port", "tcp:0:interface=127.0.0.1", *argv)
    try:
        options.parseOptions(list(argv))
    except SystemExit as e:
        assert isinstance(e.code, str), e.code
        return e.code
    raise AssertionError(f"{argv} did not stop twistd")


HINT = "Run 'twistd linelogger --help' for the options."


class TwistdOptionsTests(SynchronousTestCase):
    """
    Under twistd, a mistake stops twistd with the reason, in one line,
    then (for a mistake in the options) a pointer to C{--help}; never the
    whole usage text.
    """

    def test_optionError(self) -> None:
        """
        A bad option value or an unknown option: the reason, then the hint.
        """
        for argv, reason in [
            (["--format", "xml"], "linelogger: --format must be one of: json, text"),
            (["--bogus"], "linelogger: option --bogus not recognized"),
            (["--chat", "--ack"], "linelogger: --ack does not go with --chat"),
            (["--port", "tcp:abc"], "linelogger: --port tcp:abc: not a number: 'abc'"),
            (["--port", "tcp:99999"], "linelogger: --port tcp:99999: 99999 is not a TCP port (0 to 65535)"),
            (["--port", "nosuch:1"], "linelogger: --port nosuch:1: unknown endpoint type 'nosuch'"),
            (["--port", "tcp:0:colour=red"], "linelogger: --port tcp:0:colour=red: tcp endpoints take no colour="),
            (["--metrics", "tcp:abc"], "linelogger: --metrics tcp:abc: not a number"),
        ]:
            lines = twistdParse(*argv).splitlines()
            self.assertEqual(len(lines), 2, lines)
            self.assertTrue(lines[0].startswith(reason), lines)
            self.assertEqual(lines[1], HINT)

    def test_startupError(self) -> None:
        """
        An endpoint naming something missing here: one line, no hint.
        """
        missing = os.path.abspath(self.mktemp())
        for argv, reason in [
            (["--port", f"unix:{missing}/x.sock"], f"--port unix:{missing}/x.sock: no such directory: {missing}"),
            (["--port", f"ssl:0:privateKey={missing}"], f"--port ssl:0:privateKey={missing}: cannot read {missing}"),
            (["--port", "systemd:domain=INET:index=0"], "--port systemd:domain=INET:index=0: systemd passed no"),
        ]:
            lines = twistdParse(*argv).splitlines()
            self.assertEqual(len(lines), 1, lines)
            self.assertTrue(lines[0].startswith(f"linelogger: {reason}"), lines)

    def test_portInUse(self) -> None:
        """
        A TCP address that cannot be bound is found while the options are
        checked: one line, Twisted's words for it.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for option, description in [
            ("--port", f"tcp:{port}:interface=127.0.0.1"),
            ("--port", f"haproxy:tcp:{port}:interface=127.0.0.1"),
            ("--metrics", f"tcp:{port}:interface=127.0.0.1"),
        ]:
            message = twistdParse(option, description)
            self.assertEqual(
                message.splitlines(),
                [f"linelogger: Couldn't listen on 127.0.0.1:{port}: [Errno 98] Address already in use."],
            )

    def test_plainOptionsDoNotTouchTheMachine(self) -> None:
        """
        L{Options} alone (as tests and tools use it) only parses: endpoints
        are checked by L{TwistdOptions}.
        """
        self.assertEqual(parse("--port", "systemd:domain=INET:index=0")["port"], ["systemd:domain=INET:index=0"])


class CheckEndpointTests(SynchronousTestCase):
    """
    L{checkEndpoint} without twistd.
    """

    def test_valid(self) -> None:
        """
        Good descriptions pass, without listening.
        """
        from twisted.internet import reactor

        directory = os.path.abspath(self.mktemp())
        os.mkdir(directory)
        for description in ["tcp:0", "tcp6:0:interface=\\:\\:1", "unix:s.sock", "haproxy:tcp:0", "tcp:1234"]:
            checkEndpoint("--port", description, reactor, rundir=directory)
        self.assertEqual(os.listdir(directory), [])

    def test_relativeToRundir(self) -> None:
        """
        A relative UNIX socket path is checked against twistd's C{--rundir}.
        """
        from twisted.internet import reactor

        directory = os.path.abspath(self.mktemp())
        os.makedirs(os.path.join(directory, "run"))
        checkEndpoint("--port", "unix:run/s.sock", reactor, rundir=directory)
        with self.assertRaises(StartupError):
            checkEndpoint("--port", "unix:nowhere/s.sock", reactor, rundir=directory)

    def test_endpointType(self) -> None:
        """
        The type behind C{haproxy:} is the one listened on.
        """
        self.assertEqual(endpointType("haproxy:ssl:443"), "ssl")
        self.assertEqual(endpointType("tcp6:1"), "tcp6")


class StopOrderTests(SynchronousTestCase):
    """
    L{LineLoggerService} stops L{LineLoggerService.stopsLast} once the
    others have stopped.
    """

    def test_stopsLast(self) -> None:
        """
        A service in C{stopsLast} is stopped only when every other child's
        stop has finished; the others stop at once, last child first.
        """
        stopped: List[str] = []
        draining: Deferred[None] = Deferred()

        class Recording(Service):
            def __init__(self, name: str, result: Any = None) -> None:
                self.label = name
                self.result = result

            def stopService(self) -> Any:
                Service.stopService(self)
                stopped.append(self.label)
                return self.result

        top = LineLoggerService(None, Reactor())  # type: ignore[arg-type]
        Recording("hub", draining).setServiceParent(top)
        last = Recording("metrics")
        last.setServiceParent(top)
        top.stopsLast.append(last)
        Recording("listener").setServiceParent(top)
        top.startService()
        done = top.stopService()
        self.assertEqual(stopped, ["listener", "hub"])
        self.assertNoResult(done)
        draining.callback(None)
        self.assertEqual(stopped, ["listener", "hub", "metrics"])
        self.successResultOf(done)

    def test_metricsStopLast(self) -> None:
        """
        L{makeService} puts the metrics service in C{stopsLast}.
        """
        service = makeService(parse("-o", self.mktemp(), "--metrics", "tcp:9100:interface=127.0.0.1"), Reactor())
        self.addCleanup(service.recorder.sink.close)
        self.assertEqual(len(service.stopsLast), 1)
        self.assertIn(service.stopsLast[0], list(service))


class MakeServiceTests(SynchronousTestCase):
    """
    The service tree: the hub first, then one listener per port.
    """

    def test_keepsLargeBuffers(self) -> None:
        """
        The service has malloc keep the buffers of batches on the heap
        (L{logger_service.allocator}), whatever its options.
        """
        calls = []

        def keepLargeBuffers() -> bool:
            calls.append(True)
            return True

        self.patch(tap, "keepLargeBuffers", keepLargeBuffers)
        makeService(parse("-o", self.mktemp()), Reactor())
        makeService(parse("-o", self.mktemp(), "--workers", "2"), Reactor())
        self.assertEqual(calls, [True, True])

    def test_listeners(self) -> None:
        """
        Every C{--port} is listened on with the same factory.
        """
        path = self.mktemp()
        reactor = Reactor()
        service = makeService(parse("-p", "1234", "-p", "tcp:5678:interface=127.0.0.1", "-o", path), reactor)
        services = list(service)
        self.assertIsInstance(services[0], HubService)
        service.privilegedStartService()
        service.startService()
        self.addCleanup(service.stopService)
        ports = [(port, backlog, interface) for port, _, backlog, interface in reactor.tcpServers]
        self.assertEqual(ports, [(1234, 1024, ""), (5678, 1024, "127.0.0.1")])
        factories = {factory for _, factory, _, _ in reactor.tcpServers}
        self.assertEqual(len(factories), 1)
        factory = factories.pop()
        self.assertIsInstance(factory, LineLoggerFactory)
        self.assertTrue(os.path.exists(path), "the output file is created at once")

    def test_descriptorsForEveryListener(self) -> None:
        """
        The descriptors kept for listeners count every one: each C{--port},
        C{--metrics} and C{--web}.
        """
        counted: List[int] = []
        fit = fdlimit.fit

        def recordingFit(maxConnections: int, backlog: int, listeners: int) -> fdlimit.Plan:
            counted.append(listeners)
            return fit(maxConnections, backlog, listeners)

        self.patch(fdlimit, "fit", recordingFit)
        options = parse(
            *("-p", "1234", "-p", "1235", "-o", self.mktemp(), "--chat"),
            *("--metrics", "tcp:9100:interface=127.0.0.1", "--web", "tcp:8080:interface=127.0.0.1"),
        )
        service = makeService(options, Reactor())
        self.addCleanup(service.recorder.sink.close)
        self.assertEqual(counted, [4])

    def test_backlog(self) -> None:
        """
        C{--backlog} reaches every endpoint that takes one, unless its
        description names its own.
        """
        reactor = Reactor()
        path = os.path.join(os.path.abspath(self.mktemp()) + "-s")
        service = makeService(
            parse("-o", self.mktemp(), "--backlog", "77", "-p", "1", "-p", "tcp:2:backlog=5", "-p", f"unix:{path}"),
            reactor,
        )
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        self.assertEqual([(port, backlog) for port, _, backlog, _ in reactor.tcpServers], [(1, 77), (2, 5)])
        self.assertEqual([(address, backlog) for address, _, backlog, _, _ in reactor.unixServers], [(path, 77)])

    def test_withBacklog(self) -> None:
        """
        L{withBacklog} leaves alone what does not take a backlog or has one.
        """
        self.assertEqual(withBacklog("tcp:1", 9), "tcp:1:backlog=9")
        self.assertEqual(withBacklog("haproxy:tcp:1", 9), "haproxy:tcp:1:backlog=9")
        self.assertEqual(withBacklog("tcp:1:backlog=3", 9), "tcp:1:backlog=3")
        self.assertEqual(withBacklog("systemd:domain=INET:index=0", 9), "systemd:domain=INET:index=0")

    def test_greetingAndLimits(self) -> None:
        """
        The factory carries the greeting (as UTF-8) and line limits.
        """
        reactor = Reactor()
        service = makeService(
            parse("-o", self.mktemp(), "--greeting", "Grüß dich", "--max-line-length", "10", "--long-lines", "close"),
            reactor,
        )
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        factory = reactor.tcpServers[0][1]
        assert isinstance(factory, LineLoggerFactory)
        self.assertEqual(factory.greeting, "Grüß dich".encode())
        self.assertEqual(factory.maxLineLength, 10)
        self.assertIs(factory.longLines, LongLines.close)

    def test_connectionLog(self) -> None:
        """
        The factory logs connections at C{--connection-log-rate}, and the
        hub service logs the connection log's last summary when it stops;
        C{--no-connection-log} leaves both without one.
        """
        reactor = Reactor()
        service = makeService(parse("-o", self.mktemp(), "--connection-log-rate", "7"), reactor)
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        hubService, listener = list(service)[:2]
        assert isinstance(hubService, HubService)
        factory = listener.factory
        assert isinstance(factory, LineLoggerFactory)
        self.assertIsNotNone(factory.connectionLogger)
        assert factory.connectionLogger is not None
        self.assertEqual(factory.connectionLogger.rate, 7)
        self.assertIs(hubService.connectionLog, factory.connectionLogger)

        service = makeService(parse("-o", self.mktemp(), "--no-connection-log"), reactor)
        service.privilegedStartService()
        self.addCleanup(service.stopService)
        hubService, listener = list(service)[:2]
        assert isinstance(hubService, HubService)
        self.assertIsNone(listener.factory.connectionLogger)
        self.assertIsNone(hubService.connectionLog)

    def test_unopenableOutput(self) -> None:
        """
        An output that cannot be opened stops twistd with a message naming
        it, not a traceback.
        """
        missing = os.path.join(self.mktemp(), "no", "such", "dir.log")
        with self.assertRaises(SystemExit) as raised:
            makeService(parse("-o", missing), Reactor())
        self.assertIn(missing, str(raised.exception))
