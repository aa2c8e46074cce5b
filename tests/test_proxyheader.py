"""
Tests for L{logger_service.proxyheader}: connections behind C{haproxy:}
before their PROXY header.
"""

from __future__ import annotations

from typing import Tuple

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs
from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from logger_service.factory import LineLoggerFactory
from logger_service.limits import ConnectionLimits

from .memory import hubOf
from .test_protocol import buildWith, connect, records


class ProxyHeaderTests(SynchronousTestCase):
    """
    Behind C{haproxy:}, a connection closed for lacking a valid PROXY
    header is counted and logged as a refusal.
    """

    def wrapped(self, factory: LineLoggerFactory) -> Tuple[ProtocolWrapper, StringTransport]:
        wrapper = HAProxyWrappingFactory(factory).buildProtocol(IPv4Address("TCP", "198.51.100.1", 4000))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "198.51.100.1", 4000))
        wrapper.makeConnection(transport)
        return wrapper, transport

    def test_noHeader(self) -> None:
        """
        Something other than a header, or a broken one: closed by the PROXY
        layer, counted and logged (at most once per 10 s per reason).
        """
        factory, _, _ = buildWith()
        with capturedLogs() as events:
            for data in (b"plain line\n", b"PROXY TCP4 nonsense\r\n", b"GET / HTTP/1.0\r\n"):
                wrapper, transport = self.wrapped(factory)
                wrapper.dataReceived(data)
                self.assertTrue(transport.disconnecting)
                wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(factory.hub.counters.refused, {"no-proxy-header": 3})
        self.assertEqual(hubOf(factory).awaitingHeader, {})
        refusals = [e for e in events if "Refused" in e["log_format"]]
        self.assertEqual(len(refusals), 1)
        self.assertEqual(refusals[0]["host"], "198.51.100.1")
        self.assertEqual(refusals[0]["log_level"], LogLevel.warn)

    def test_healthCheck(self) -> None:
        """
        A client that closes without sending anything (a load balancer's
        health check) is not a refusal; one that sends a header is served.
        """
        factory, sink, clock = buildWith()
        with capturedLogs():
            wrapper, _ = self.wrapped(factory)
            wrapper.connectionLost(Failure(ConnectionDone()))
            wrapper, transport = self.wrapped(factory)
            wrapper.dataReceived(b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 1234\r\nhello\n")
            clock.advance(1)
        self.assertEqual(factory.hub.counters.refused, {})
        self.assertFalse(transport.disconnecting)
        self.assertEqual([(r["line"], r["peer"]) for r in records(sink)], [("hello", "203.0.113.7:51234")])

    def test_noHeaderWithinLineTimeout(self) -> None:
        """
        Without C{--idle-timeout}, a connection must send its header within
        the line timeout (a header is a line): else it is refused.
        """
        factory, _, clock = buildWith(lineTimeout=5)
        with capturedLogs():
            wrapper, transport = self.wrapped(factory)
            clock.advance(4.9)
            self.assertFalse(transport.disconnecting)
            clock.advance(0.1)
            self.assertTrue(transport.disconnecting)
            wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(factory.hub.counters.refused, {"no-proxy-header": 1})
        self.assertEqual(hubOf(factory).awaitingHeader, {})

    def test_awaitingHeaderCounted(self) -> None:
        """
        Connections waiting for their header count against
        C{--max-connections}: past it, a new one (wrapped or not) is refused.
        """
        factory, _, _ = buildWith(limits=ConnectionLimits(maxConnections=2))
        with capturedLogs():
            waiting = [self.wrapped(factory) for _ in range(2)]
            self.assertEqual([t.disconnecting for _, t in waiting], [False, False])
            _, third = self.wrapped(factory)
            self.assertTrue(third.disconnecting)
            self.assertIn(b"too many connections", third.value())
            _, direct = connect(factory, 3)
            self.assertTrue(direct.disconnecting)
            wrapper, transport = waiting[0]
            wrapper.connectionLost(Failure(ConnectionDone()))
            self.wrapped(factory)[0].dataReceived(b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 1234\r\nhello\n")
        self.assertEqual(factory.hub.counters.refused, {"max-connections": 2})
        self.assertEqual(len(hubOf(factory).connections), 1)

    def test_noHeaderInTime(self) -> None:
        """
        With C{--idle-timeout}, no header within it is a refusal too.
        """
        factory, _, clock = buildWith(idleTimeout=3)
        with capturedLogs():
            wrapper, transport = self.wrapped(factory)
            clock.advance(3)
            self.assertTrue(transport.disconnecting)
            wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(factory.hub.counters.refused, {"no-proxy-header": 1})
