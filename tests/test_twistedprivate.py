"""
Tests for L{logger_service.twistedprivate}: each private Twisted name it
uses is still there, and means what it meant, in the installed Twisted.

These tests check the names themselves, not the fallbacks: where the
functions would quietly fall back at run time, a test here fails.
"""

from __future__ import annotations

import inspect
import os
import socket
from typing import Any, List, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor, tcp, unix
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    UNIXServerEndpoint,
    serverFromString,
)
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor, MemoryReactorClock, StringTransport
from twisted.python.logfile import LogFile
from twisted.trial.unittest import SynchronousTestCase

from logger_service.twistedprivate import (
    PROXY_WRAPPERS,
    OpenableLogFile,
    acceptedCount,
    bufferedBytes,
    hasWriteBuffers,
    isProxyWrapper,
    raiseListenErrorsAtOnce,
    tcpEndpointAddress,
    unixEndpointPath,
    webSocketTCP,
    wrappedEndpoint,
)
from tests.test_sendnow import connectedServer


class ProxyWrapperTests(SynchronousTestCase):
    """
    L{isProxyWrapper} knows the transport behind a C{haproxy:} endpoint.
    """

    def test_importable(self) -> None:
        """
        C{twisted.protocols.haproxy._wrapper.HAProxyProtocolWrapper} can be
        imported: L{PROXY_WRAPPERS} is not the empty fallback.
        """
        self.assertEqual(len(PROXY_WRAPPERS), 1)

    def test_haproxyEndpointTransport(self) -> None:
        """
        The protocol a C{haproxy:} endpoint's listening factory builds (the
        transport of the application's protocol) is a proxy wrapper; a
        plain protocol is not.
        """
        reactor = MemoryReactor()
        endpoint = serverFromString(reactor, "haproxy:tcp:0:interface=127.0.0.1")
        endpoint.listen(Factory.forProtocol(Protocol))
        listening = reactor.tcpServers[0][1]
        wrapper = listening.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        self.assertTrue(isProxyWrapper(wrapper))
        self.assertFalse(isProxyWrapper(Protocol()))
        self.assertFalse(isProxyWrapper(StringTransport()))


class EndpointTests(SynchronousTestCase):
    """
    The endpoint attributes that start-up checks read.
    """

    def test_wrappedEndpoint(self) -> None:
        """
        A C{haproxy:} endpoint's C{_wrappedEndpoint} is the endpoint it
        wraps; an endpoint that wraps nothing is its own.
        """
        reactor = MemoryReactor()
        endpoint = serverFromString(reactor, "haproxy:tcp:1234:interface=127.0.0.1")
        inner = wrappedEndpoint(endpoint)
        self.assertIsNot(inner, endpoint)
        self.assertIsInstance(inner, TCP4ServerEndpoint)
        self.assertEqual(tcpEndpointAddress(inner), (1234, "127.0.0.1"))
        plain = TCP4ServerEndpoint(reactor, 1234)
        self.assertIs(wrappedEndpoint(plain), plain)

    def test_tcpEndpointAddress(self) -> None:
        """
        TCP over IPv4 and IPv6 and TLS endpoints keep their port and
        interface in C{_port} and C{_interface}.
        """
        reactor = MemoryReactor()
        self.assertEqual(
            tcpEndpointAddress(TCP4ServerEndpoint(reactor, 1234, interface="127.0.0.1")), (1234, "127.0.0.1")
        )
        self.assertEqual(tcpEndpointAddress(TCP6ServerEndpoint(reactor, 4321, interface="::1")), (4321, "::1"))
        self.assertEqual(tcpEndpointAddress(TCP4ServerEndpoint(reactor, 1234)), (1234, ""))
        ssl = SSL4ServerEndpoint(reactor, 5678, None, interface="127.0.0.1")
        self.assertEqual(tcpEndpointAddress(ssl), (5678, "127.0.0.1"))

    def test_unixEndpointPath(self) -> None:
        """
        A UNIX endpoint keeps its path in C{_address}.
        """
        self.assertEqual(
            unixEndpointPath(UNIXServerEndpoint(MemoryReactor(), "run/linelogger.sock")), "run/linelogger.sock"
        )


class WriteBufferTests(SynchronousTestCase):
    """
    L{bufferedBytes} counts what a real TCP transport has not yet sent.
    """

    def test_tcpServerHasThem(self) -> None:
        """
        A real C{tcp.Server} has C{dataBuffer} (bytes) and C{_tempDataLen}
        (int); a test double has not.
        """
        transport, _, _ = connectedServer(self)
        self.assertTrue(hasWriteBuffers(transport))
        self.assertIsInstance(transport.dataBuffer, bytes)
        self.assertIsInstance(transport._tempDataLen, int)
        self.assertFalse(hasWriteBuffers(StringTransport()))

    def test_countsWhatWasWritten(self) -> None:
        """
        Bytes given to C{write}, not yet sent (the memory reactor never
        runs the write), are counted; so are those left after a partial
        C{doWrite} moved them into C{dataBuffer}.
        """
        transport, client, _ = connectedServer(self)
        self.assertEqual(bufferedBytes(transport), 0)
        transport.write(b"abc")
        transport.writeSequence([b"de", b"f"])
        self.assertEqual(bufferedBytes(transport), 6)
        transport.doWrite()
        self.assertEqual(bufferedBytes(transport), 0)
        self.assertEqual(client.recv(10), b"abcdef")


try:
    # The web extra: Twisted >= 25.5 and wsproto.
    import twisted.web.websocket  # noqa: F401
except ImportError:
    WEB_MISSING: Optional[str] = "the web extra (Twisted>=25.5 with websocket) is not installed"
else:
    WEB_MISSING = None


class WebSocketTests(SynchronousTestCase):
    """
    L{webSocketTCP} finds the transport under Twisted's WebSocket
    transport.
    """

    skip = WEB_MISSING

    def test_transportUnderWebSocket(self) -> None:
        """
        The WebSocket transport handed to C{negotiationStarted} keeps the
        connection's transport as C{transport}.
        """
        from twisted.web._websocket_impl import _WebSocketWireProtocol

        started: List[Any] = []

        class Member:
            def negotiationStarted(self, transport: Any) -> None:
                started.append(transport)

        # Built by hand: only its transport attribute matters here.
        build: Any = _WebSocketWireProtocol
        wire = build(_wsconn=None, _bootstrap=lambda connection, transport: None, _wsp=Member())
        tcp = StringTransport()
        wire.makeConnection(tcp)
        self.assertEqual(len(started), 1)
        self.assertIs(webSocketTCP(started[0]), tcp)


class LogFileTests(SynchronousTestCase):
    """
    L{OpenableLogFile} gives L{LogFile}'s private C{_openFile} and C{_file}
    public names.
    """

    def test_openFileSignature(self) -> None:
        """
        C{LogFile._openFile} takes nothing but the log file.
        """
        self.assertEqual(list(inspect.signature(LogFile._openFile).parameters), ["self"])

    def test_openFileCalled(self) -> None:
        """
        L{LogFile} opens its file through C{_openFile} when made, rotated
        and reopened: each time, L{OpenableLogFile.openFile}.
        """
        opened: List[str] = []

        class Counting(OpenableLogFile):
            def openFile(self) -> None:
                opened.append(self.path)
                OpenableLogFile.openFile(self)

        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        logFile = Counting("records.log", directory)
        self.addCleanup(logFile.close)
        self.assertEqual(opened, [os.path.join(directory, "records.log")])
        logFile.rotate()
        self.assertEqual(len(opened), 2)
        logFile.reopen()
        self.assertEqual(len(opened), 3)

    def test_fileIsWhatLogFileWrites(self) -> None:
        """
        L{OpenableLogFile.file} is the file L{LogFile.write} writes to, and
        a file set there is where the next write goes.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        logFile = OpenableLogFile("records.log", directory)
        self.addCleanup(logFile.close)
        logFile.write(b"abc")
        logFile.flush()
        self.assertEqual(logFile.file.tell(), 3)
        self.assertEqual(os.path.getsize(logFile.path), 3)
        other = os.path.join(directory, "other.log")
        logFile.file.close()
        logFile.file = open(other, "wb", 0)
        logFile.write(b"de")
        self.assertEqual(os.path.getsize(other), 2)


class AcceptedCountTests(SynchronousTestCase):
    """
    L{acceptedCount} reads how many connections a listening port accepted.
    """

    def accepts(self, port: Any, connect: Any) -> None:
        """
        C{port}'s C{sessionno} counts up by one per connection that C{doRead}
        accepts.
        """
        port.startListening()
        self.addCleanup(port.connectionLost, None)
        self.assertEqual(acceptedCount(port), 0)
        clients = [connect() for _ in range(3)]
        for client in clients:
            self.addCleanup(client.close)
        port.doRead()
        self.assertEqual(acceptedCount(port), 3)

    def test_tcp(self) -> None:
        """
        A C{tcp.Port}.
        """
        port = tcp.Port(0, Factory.forProtocol(Protocol), 50, "127.0.0.1", MemoryReactorClock())
        self.accepts(port, lambda: socket.create_connection(("127.0.0.1", port.getHost().port)))

    def test_unix(self) -> None:
        """
        A C{unix.Port}.
        """
        path = os.path.join(self.mktemp() + ".d", "s.sock")
        os.makedirs(os.path.dirname(path))
        port = unix.Port(path.encode(), Factory.forProtocol(Protocol), 50, 0o666, MemoryReactorClock())

        def connect() -> socket.socket:
            client = socket.socket(socket.AF_UNIX)
            client.connect(path)
            return client

        self.accepts(port, connect)

    def test_other(self) -> None:
        """
        Anything else has no count.
        """
        self.assertIsNone(acceptedCount(object()))


class ListenErrorTests(SynchronousTestCase):
    """
    L{raiseListenErrorsAtOnce} makes a listening error raise at start.
    """

    def test_raises(self) -> None:
        """
        A C{StreamServerEndpointService} whose endpoint cannot listen raises
        the error from C{privilegedStartService}.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        service = StreamServerEndpointService(
            TCP4ServerEndpoint(reactor, port, interface="127.0.0.1"), Factory.forProtocol(Protocol)
        )
        raiseListenErrorsAtOnce(service)
        self.assertRaises(CannotListenError, service.privilegedStartService)
