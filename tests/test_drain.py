"""
Tests for L{logger_service.drain}: the draining shutdown.
"""

from __future__ import annotations

import json
import socket
from typing import List, Tuple

from twisted.internet import tcp
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.protocols.haproxy._wrapper import HAProxyWrappingFactory
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from logger_service.drain import HubService, acceptQueued, pendingInput
from logger_service.factory import LineLoggerFactory
from logger_service.framing import LongLines
from logger_service.hub import Hub
from logger_service.protocol import LineLoggerProtocol
from logger_service.recorder import Recorder

from .memory import MemorySink


class SocketBackedTransport(StringTransport):
    """
    A L{StringTransport} whose C{getHandle} is a real socket, so that the
    kernel can be asked how much input waits on it.
    """

    def __init__(self, sock: socket.socket, port: int) -> None:
        StringTransport.__init__(self, peerAddress=IPv4Address("TCP", "192.0.2.7", port))
        self.sock = sock

    def getHandle(self) -> socket.socket:
        return self.sock


class DrainTests(SynchronousTestCase):
    """
    Stopping reads what each client had already sent, then records and
    closes.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.hub = Hub(Recorder(self.sink, self.clock, format="json"))
        self.factory = LineLoggerFactory(self.hub)
        self.service = HubService(self.hub, self.clock, drainTimeout=5)
        self.service.startService()
        self.peers: List[socket.socket] = []

    def connect(self, port: int) -> LineLoggerProtocol:
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        self.peers.append(theirs)
        protocol = self.factory.buildProtocol(None)
        with capturedLogs():
            protocol.makeConnection(SocketBackedTransport(ours, port))
        return protocol

    def lines(self) -> List[str]:
        return [json.loads(line)["line"] for line in self.sink.data.splitlines()]

    def test_pendingInput(self) -> None:
        """
        L{pendingInput} is the number of bytes the kernel holds unread.
        """
        protocol = self.connect(1)
        self.assertEqual(pendingInput(protocol), 0)
        self.peers[0].sendall(b"12345")
        self.assertEqual(pendingInput(protocol), 5)

    def test_waitsForUnreadInput(self) -> None:
        """
        The stop waits until what the kernel held at the signal has been
        received, records it (a partial last line too), and closes.
        """
        busy = self.connect(1)
        idle = self.connect(2)
        idle.dataReceived(b"idle line\n")
        self.peers[0].sendall(b"sent before stop\nunfinished")
        with capturedLogs():
            stopped = self.service.stopService()
            self.assertNoResult(stopped)
            data = busy.transport.getHandle().recv(1000)  # type: ignore[attr-defined]
            busy.dataReceived(data)
        self.successResultOf(stopped)
        self.assertEqual(self.lines(), ["idle line", "sent before stop", "unfinished"])
        self.assertTrue(busy.transport.disconnecting)  # type: ignore[attr-defined]
        self.assertTrue(idle.transport.disconnecting)  # type: ignore[attr-defined]
        self.assertTrue(self.sink.closed)
        self.assertEqual(self.hub.connections, {})

    def test_closedConnectionCountsAsDrained(self) -> None:
        """
        A connection that closes while the stop waits for it is done.
        """
        busy = self.connect(1)
        self.peers[0].sendall(b"x\n")
        with capturedLogs():
            stopped = self.service.stopService()
            busy.connectionLost()
        self.successResultOf(stopped)

    def test_timeout(self) -> None:
        """
        Input that never arrives does not hold the stop forever: after the
        timeout what was received is recorded, with a warning.
        """
        busy = self.connect(1)
        busy.dataReceived(b"got this\n")
        self.peers[0].sendall(b"never read\n")
        with capturedLogs() as events:
            stopped = self.service.stopService()
            self.clock.advance(4.9)
            self.assertNoResult(stopped)
            self.clock.advance(0.1)
        self.successResultOf(stopped)
        self.assertEqual(self.lines(), ["got this"])
        self.assertTrue(any("still had unread input" in e["log_format"] for e in events))

    def test_nothingPending(self) -> None:
        """
        With no unread input the stop completes at once.
        """
        self.connect(1).dataReceived(b"a\n")
        with capturedLogs():
            self.successResultOf(self.service.stopService())
        self.assertEqual(self.lines(), ["a"])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_connectionLogSummary(self) -> None:
        """
        The connections closed by the stop may be over the connection log's
        rate: their summary is logged once they are closed, not a second
        later when the reactor will be gone.
        """
        self.factory = LineLoggerFactory(self.hub, connectionLogRate=1)
        self.service = HubService(self.hub, self.clock, drainTimeout=5, connectionLog=self.factory.connectionLogger)
        self.service.startService()
        for port in range(1, 4):
            self.connect(port).dataReceived(b"a\n")
        with capturedLogs() as events:
            self.successResultOf(self.service.stopService())
        formats = [e["log_format"] for e in events]
        self.assertEqual(formats.count("{peer} disconnected ({linesText}; {reason})"), 1)
        [summary] = [e for e in events if "hosts" in e]
        self.assertEqual((summary["connections"], summary["disconnections"], summary["lines"]), (2, 2, 2))
        self.assertEqual(self.clock.getDelayedCalls(), [])


class Enveloped(ProtocolWrapper):
    """
    A stand-in for TLS: each chunk on the wire is one envelope byte and
    the payload, so the bytes the kernel counts are not those the line
    protocol receives.
    """

    def dataReceived(self, data: bytes) -> None:
        ProtocolWrapper.dataReceived(self, data[1:])


class EnvelopingFactory(WrappingFactory):
    """
    Wraps protocols in L{Enveloped}.
    """

    protocol = Enveloped


class WrappedDrainTests(SynchronousTestCase):
    """
    The drain counts on the socket, below TLS- and PROXY-like wrappers.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.hub = Hub(Recorder(self.sink, self.clock, format="json"))
        self.factory = LineLoggerFactory(self.hub)
        self.service = HubService(self.hub, self.clock, drainTimeout=5)
        self.service.startService()

    def connect(self, wrappingFactory: WrappingFactory) -> Tuple[ProtocolWrapper, socket.socket, socket.socket]:
        """
        Connect a wrapped protocol over a socket pair, as a listener would:
        the socket's transport delivers to the wrapper.
        """
        ours, theirs = socket.socketpair()
        self.addCleanup(ours.close)
        self.addCleanup(theirs.close)
        wrapper = wrappingFactory.buildProtocol(IPv4Address("TCP", "198.51.100.1", 4000))
        assert wrapper is not None
        transport = SocketBackedTransport(ours, 4000)
        transport.protocol = wrapper  # type: ignore[attr-defined]
        with capturedLogs():
            wrapper.makeConnection(transport)
        return wrapper, ours, theirs

    def deliver(self, ours: socket.socket, wrapper: ProtocolWrapper) -> None:
        """
        Read what the socket holds and hand it up as the socket's transport
        does: to whatever its protocol's C{dataReceived} is now.
        """
        data = ours.recv(100000)
        wrapper.transport.protocol.dataReceived(data)  # type: ignore[union-attr]

    def lines(self) -> List[str]:
        return [json.loads(line)["line"] for line in self.sink.data.splitlines()]

    def test_envelopes(self) -> None:
        """
        Through a wrapper that takes bytes off, the drain still ends once
        all that the kernel held is received (not at the timeout).
        """
        wrapper, ours, theirs = self.connect(EnvelopingFactory(self.factory))
        theirs.sendall(b"#sent before stop\nand unfinished")
        with capturedLogs() as events:
            stopped = self.service.stopService()
            self.assertNoResult(stopped)
            self.deliver(ours, wrapper)
        self.successResultOf(stopped)
        self.assertEqual(self.lines(), ["sent before stop", "and unfinished"])
        self.assertFalse(any("still had unread input" in e["log_format"] for e in events))
        self.assertNotIn("dataReceived", vars(wrapper))

    def test_closingNotDrained(self) -> None:
        """
        A connection this side is closing (a line too long, with
        C{--long-lines close}) is not waited for: what it sent after is not
        read.
        """
        self.factory.maxLineLength = 4
        self.factory.longLines = LongLines.close
        wrapper, ours, theirs = self.connect(WrappingFactory(self.factory))
        theirs.sendall(b"much too long\n")
        with capturedLogs():
            self.deliver(ours, wrapper)
            theirs.sendall(b"after the error\n")
            stopped = self.service.stopService()
        self.successResultOf(stopped)
        self.assertEqual(self.lines(), ["much"])

    def test_proxyHeaderUnread(self) -> None:
        """
        A connection whose PROXY header is still in the kernel at the stop
        is drained too: its header is read, its lines recorded.
        """
        wrapper, ours, theirs = self.connect(HAProxyWrappingFactory(self.factory))
        theirs.sendall(b"PROXY TCP4 203.0.113.7 127.0.0.1 51234 1234\r\nbehind a balancer\n")
        self.assertEqual(len(self.hub.awaitingHeader), 1)
        with capturedLogs():
            stopped = self.service.stopService()
            self.assertNoResult(stopped)
            self.deliver(ours, wrapper)
        self.successResultOf(stopped)
        self.assertEqual(self.lines(), ["behind a balancer"])
        self.assertEqual(self.hub.awaitingHeader, {})

    def test_proxyHeaderNeverCame(self) -> None:
        """
        A connection still waiting for its PROXY header when the stop ends
        is closed, and not counted as refused.
        """
        wrapper, ours, theirs = self.connect(HAProxyWrappingFactory(self.factory))
        with capturedLogs():
            self.successResultOf(self.service.stopService())
            self.assertTrue(wrapper.transport.disconnecting)  # type: ignore[union-attr]
            wrapper.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.hub.awaitingHeader, {})
        self.assertEqual(self.hub.counters.refused, {})


class AcceptQueuedTests(SynchronousTestCase):
    """
    L{acceptQueued} accepts, on a real listening socket, the connections
    the kernel has queued.
    """

    def listening(self, count: int) -> Tuple[tcp.Port, List[Protocol]]:
        """
        A Twisted TCP port on loopback, driven by a memory reactor (it
        accepts only when read), and C{count} clients connected to it.
        """
        built: List[Protocol] = []

        class Remembering(Factory):
            def buildProtocol(self, addr: object) -> Protocol:
                protocol = Protocol()
                built.append(protocol)
                return protocol

        port = tcp.Port(0, Remembering(), 50, "127.0.0.1", MemoryReactorClock())
        port.startListening()
        self.addCleanup(port.connectionLost, Failure(ConnectionDone()))
        for _ in range(count):
            client = socket.create_connection(("127.0.0.1", port.getHost().port))
            self.addCleanup(client.close)
        return port, built

    def test_acceptsTheQueue(self) -> None:
        """
        Every queued connection is accepted and handed to the factory, even
        where the port accepts one per read; then the queue is empty.
        """
        port, built = self.listening(5)
        port.numberAccepts = 1
        self.assertEqual(acceptQueued(port, 51), 5)
        self.assertEqual(len(built), 5)
        self.assertEqual(acceptQueued(port, 51), 0)

    def test_bounded(self) -> None:
        """
        It accepts no more than it is told (where the port accepts one
        connection per read), leaving the rest queued.
        """
        port, built = self.listening(5)
        port.numberAccepts = 1
        self.assertEqual(acceptQueued(port, 3), 3)
        self.assertEqual(len(built), 3)
        self.assertEqual(acceptQueued(port, 10), 2)

    def test_notAListeningSocket(self) -> None:
        """
        A port without a descriptor (as in memory) accepts nothing.
        """
        self.assertEqual(acceptQueued(object(), 10), 0)
