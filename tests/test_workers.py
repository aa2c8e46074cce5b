"""
Unit tests for the pieces of C{--workers}: the messages between a worker and
the supervisor, the worker's forwarding recorder, and option parsing.
"""

from __future__ import annotations

from typing import Dict, List

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from logger_service.optionvalues import workerCount
from logger_service.records import RecordContext
from logger_service.worker import (
    DONE,
    SEQ,
    ForwardingRecorder,
    MessageProtocol,
    SupervisorLink,
    adoptable,
    decodeBatch,
    encodeBatch,
)

from .memory import RecordListener


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


class ForwardingRecorderTests(SynchronousTestCase):
    """
    The worker's recorder.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.recorder = ForwardingRecorder(self.clock, bufferBytes=1000, acks=True)
        self.link = SupervisorLink(self.recorder, lambda: None)
        self.transport = StringTransport()
        self.link.makeConnection(self.transport)
        self.recorder.link = self.link
        self.pressure: List[bool] = []
        self.durable: List[Dict[int, int]] = []
        self.recorder.listen(RecordListener(pressure=self.pressure.append, durable=self.durable.append))
        self.supervisor = Collector()
        self.supervisor.makeConnection(StringTransport())

    def sent(self) -> List[bytes]:
        self.supervisor.dataReceived(self.transport.value())
        self.transport.clear()
        messages, self.supervisor.messages = self.supervisor.messages, []
        return messages

    def test_oneBatchPerTurn(self) -> None:
        """
        Lines recorded in one reactor turn go out as one batch.
        """
        self.recorder.record(RecordContext("p:1", 1), [b"a", b"b"])
        self.recorder.record(RecordContext("p:2", 2), [b"c"])
        self.assertEqual(self.sent(), [])
        self.clock.advance(0)
        [message] = self.sent()
        seq, records, acks, data = decodeBatch(message)
        self.assertEqual((seq, records, acks), (1, 3, {1: 2, 2: 1}))
        self.assertEqual(bytes(data).count(b"\n"), 3)

    def test_durableOnlyWhenWritten(self) -> None:
        """
        Lines are acknowledged, and counted written, only once the
        supervisor says their batch is written.
        """
        self.recorder.record(RecordContext("p:1", 1), [b"a"])
        self.clock.advance(0)
        self.assertEqual(self.durable, [])
        self.assertEqual(self.recorder.recordsWritten, 0)
        self.link.dataReceived(b"\x00\x00\x00\x09" + DONE + SEQ.pack(1))
        self.assertEqual(self.durable, [{1: 1}])
        self.assertEqual(self.recorder.recordsWritten, 1)
        self.assertEqual(self.recorder.pendingBytes, 0)

    def test_noAcksWithoutAck(self) -> None:
        """
        Without C{--ack}, batches carry no per-connection counts (with a
        thousand connections they would cost more than the records) and
        nothing is acknowledged.
        """
        recorder = ForwardingRecorder(self.clock)
        recorder.link = self.link
        recorder.listen(RecordListener(durable=self.durable.append))
        recorder.record(RecordContext("p:1", 1), [b"a"])
        self.clock.advance(0)
        [message] = self.sent()
        self.assertEqual(decodeBatch(message)[2], {})
        recorder.done(1)
        self.assertEqual(self.durable, [])
        self.assertEqual(recorder.recordsWritten, 1)

    def test_pressure(self) -> None:
        """
        Input pauses past C{bufferBytes} unwritten, resumes at half.
        """
        self.recorder.record(RecordContext("p:1", 1), [b"x" * 1200])
        self.clock.advance(0)
        self.assertEqual(self.pressure, [True])
        self.recorder.done(1)
        self.assertEqual(self.pressure, [True, False])

    def test_closeWaitsForWritten(self) -> None:
        """
        C{close} fires once every batch is written.
        """
        self.recorder.record(RecordContext("p:1", 1), [b"a"])
        closed: List[bool] = []
        self.recorder.close().addCallback(closed.append)
        self.assertEqual(closed, [])
        self.recorder.done(1)
        self.assertEqual(closed, [True])


class HelperTests(SynchronousTestCase):
    """
    Small helpers.
    """

    def test_adoptable(self) -> None:
        """
        systemd descriptions become a placeholder whose listen is adopted;
        others, wrappers included, stay.
        """
        self.assertEqual(adoptable("systemd:domain=INET:index=0"), "tcp:0")
        self.assertEqual(adoptable("haproxy:systemd:domain=INET:index=0"), "haproxy:tcp:0")
        self.assertEqual(adoptable("haproxy:tcp:1234"), "haproxy:tcp:1234")

    def test_workerCount(self) -> None:
        """
        C{auto} is at least one; numbers below one are refused.
        """
        self.assertGreaterEqual(workerCount("auto"), 1)
        self.assertEqual(workerCount("3"), 3)
        self.assertRaises(ValueError, workerCount, "0")
        self.assertRaises(ValueError, workerCount, "x")
