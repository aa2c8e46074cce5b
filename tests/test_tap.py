"""
Tests for L{logger_service.tap}: the options and the service they build.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.testing import MemoryReactorClock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from logger_service.framing import LongLines
from logger_service.hub import HubService
from logger_service.protocol import LineLoggerFactory
from logger_service.tap import Options, makeService, withBacklog


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


class MakeServiceTests(SynchronousTestCase):
    """
    The service tree: the hub first, then one listener per port.
    """

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
