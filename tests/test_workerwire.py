"""
Tests for L{logger_service.workerwire}: the messages between a worker and
the supervisor.
"""

from __future__ import annotations

from typing import List

from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from logger_service.workerwire import MessageProtocol, decodeBatch, encodeBatch


class Collector(MessageProtocol):
    """
    Keeps every message received.
    """

    def __init__(self) -> None:
        MessageProtocol.__init__(self)
        self.messages: List[bytes] = []

    def messageReceived(self, message: bytes) -> None:
        self.messages.append(bytes(message))


class MessageProtocolTests(SynchronousTestCase):
    """
    Length-prefixed messages.
    """

    def roundTrip(self, messages: List[List[bytes]], chunk: int) -> List[bytes]:
        sender = Collector()
        transport = StringTransport()
        sender.makeConnection(transport)
        for parts in messages:
            sender.sendMessage(parts)
        wire = transport.value()
        receiver = Collector()
        receiver.makeConnection(StringTransport())
        for offset in range(0, len(wire), chunk):
            receiver.dataReceived(wire[offset : offset + chunk])
        return receiver.messages

    def test_anySplit(self) -> None:
        """
        Messages arrive whole and in order however the bytes are split.
        """
        messages = [[b"a"], [b"", b"bc"], [b"x" * 100000, b"y"], [b""]]
        expected = [b"a", b"bc", b"x" * 100000 + b"y", b""]
        for chunk in (1, 3, 4, 5, 4096, 1 << 20):
            self.assertEqual(self.roundTrip(messages, chunk), expected, chunk)

    def test_tooLong(self) -> None:
        """
        A length over C{MAX_LENGTH} closes the connection.
        """
        receiver = Collector()
        transport = StringTransport()
        receiver.makeConnection(transport)
        receiver.dataReceived(b"\xff\xff\xff\xff")
        self.assertTrue(transport.disconnecting)
        self.assertEqual(receiver.messages, [])


class BatchTests(SynchronousTestCase):
    """
    Encoding batches.
    """

    def test_roundTrip(self) -> None:
        """
        Sequence, record count, acks and records survive encoding.
        """
        message = b"".join(encodeBatch(7, b"r1\nr2\n", 2, {1: 1, 3: 1}))
        seq, records, acks, data = decodeBatch(message)
        self.assertEqual((seq, records, acks, bytes(data)), (7, 2, {1: 1, 3: 1}, b"r1\nr2\n"))
