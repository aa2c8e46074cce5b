"""
Tests for L{logger_service.forwarding}: a worker's recorder, sending
records to the supervisor.
"""

from __future__ import annotations

from typing import Dict, List

from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from logger_service.forwarding import ForwardingRecorder, SupervisorLink
from logger_service.records import RecordContext
from logger_service.workerwire import DONE, SEQ, decodeBatch

from .memory import RecordListener
from .test_workerwire import Collector


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
