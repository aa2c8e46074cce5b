"""
Tests for L{logger_service.sendnow}: writes that go out on the socket at
once, in order, with the transport's buffer taking what the kernel does
not.
"""

from __future__ import annotations

import socket
from typing import List, Tuple

from twisted.internet import tcp
from twisted.internet.protocol import Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.trial.unittest import SynchronousTestCase

from logger_service.sendnow import canSendNow, sendNow


def connectedServer(testCase: SynchronousTestCase) -> Tuple[tcp.Server, socket.socket, MemoryReactorClock]:
    """
    A Twisted TCP server transport over a real loopback connection, driven
    by a memory reactor (nothing is sent unless a test asks), and the
    client's end of the connection.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    testCase.addCleanup(listener.close)
    client = socket.create_connection(listener.getsockname())
    testCase.addCleanup(client.close)
    server, address = listener.accept()
    server.setblocking(False)
    reactor = MemoryReactorClock()
    transport = tcp.Server(server, Protocol(), address, None, 1, reactor)  # type: ignore[arg-type]
    testCase.addCleanup(server.close)
    return transport, client, reactor


def receiveAll(client: socket.socket, size: int) -> bytes:
    """
    Read exactly C{size} bytes that are already on their way.
    """
    client.settimeout(5)
    chunks: List[bytes] = []
    got = 0
    while got < size:
        chunk = client.recv(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


class SendNowTests(SynchronousTestCase):
    """
    L{sendNow} sends directly while the transport holds nothing.
    """

    def test_sendsWithoutAReactorTurn(self) -> None:
        """
        A write reaches the client without the transport ever being asked
        to write (no writability registration, no buffered bytes).
        """
        transport, client, reactor = connectedServer(self)
        self.assertTrue(canSendNow(transport))
        write = sendNow(transport)
        write(b"hello\r\n")
        self.assertEqual(transport._tempDataLen, 0)
        self.assertNotIn(transport, reactor.getWriters())
        self.assertEqual(receiveAll(client, 7), b"hello\r\n")

    def test_kernelFullThenTransportBuffers(self) -> None:
        """
        Once the kernel takes no more, the rest goes to the transport's
        buffer, and every later write queues behind it until that buffer
        is empty: the client receives every byte, in order.
        """
        transport, client, reactor = connectedServer(self)
        # A small send buffer fills the kernel soon; the client's receive
        # buffer keeps its default, as a tiny receive window would make the
        # drain below crawl on TCP's persist timer.
        transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        write = sendNow(transport)
        pieces = [bytes([65 + i % 26]) * 10000 + b"\n" for i in range(200)]
        for piece in pieces:
            write(piece)
        self.assertGreater(transport._tempDataLen + len(transport.dataBuffer), 0)
        self.assertIn(transport, reactor.getWriters())
        expected = b"".join(pieces)
        received: List[bytes] = []
        got = 0
        client.setblocking(False)
        while got < len(expected):
            transport.doWrite()
            while True:
                try:
                    chunk = client.recv(65536)
                except BlockingIOError:
                    break
                received.append(chunk)
                got += len(chunk)
        self.assertEqual(b"".join(received), expected)
        # Drained: direct again.
        self.assertNotIn(transport, reactor.getWriters())
        write(b"after\n")
        self.assertEqual(transport._tempDataLen, 0)
        self.assertEqual(receiveAll(client, 6), b"after\n")

    def test_afterLoseConnectionThroughTransport(self) -> None:
        """
        Once the transport is closing, writes are the transport's to handle
        (it drops them), never sent behind its back.
        """
        transport, client, reactor = connectedServer(self)
        write = sendNow(transport)
        transport.loseConnection()
        write(b"late\n")
        client.setblocking(False)
        self.assertRaises(BlockingIOError, client.recv, 100)

    def test_errorsLeftToTheTransport(self) -> None:
        """
        A send that fails (the client reset the connection) hands the data
        to the transport instead of raising: the transport finds the error
        itself and closes as usual.
        """
        transport, client, reactor = connectedServer(self)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        client.close()
        write = sendNow(transport)
        for _ in range(3):
            write(b"x" * 1000)
        self.assertGreater(transport._tempDataLen, 0)

    def test_otherTransportsWritePlainly(self) -> None:
        """
        A transport that is not a Twisted TCP connection gets its own
        C{write}.
        """
        transport = StringTransport()
        self.assertFalse(canSendNow(transport))
        write = sendNow(transport)
        write(b"abc")
        self.assertEqual(transport.value(), b"abc")
