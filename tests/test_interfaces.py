"""
Tests for L{logger_service.interfaces}: each part provides the interfaces
the others know it by.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.interfaces import IConnection, IHub, IRecorder, IRecordListener, NoListener
from logger_service.recorder import Recorder
from logger_service.worker import ForwardingRecorder
from logger_service.workers import WorkerPool

from .memory import MemorySink


class ProvidedTests(SynchronousTestCase):
    """
    The parts provide their interfaces, with every method and attribute.
    """

    def test_recorders(self) -> None:
        """
        The recorder and the worker's forwarding recorder are both
        L{IRecorder}s.
        """
        self.assertTrue(verifyObject(IRecorder, Recorder(MemorySink(), Clock())))
        self.assertTrue(verifyObject(IRecorder, ForwardingRecorder(Clock())))

    def test_listeners(self) -> None:
        """
        The hub, the supervisor's pool and L{NoListener} are
        L{IRecordListener}s; a recorder starts with a L{NoListener} and
        tells the one it is given with C{listen}.
        """
        recorder = Recorder(MemorySink(), Clock())
        self.assertIsInstance(recorder.listener, NoListener)
        self.assertTrue(verifyObject(IRecordListener, NoListener()))
        hub = Hub(recorder)
        self.assertTrue(verifyObject(IRecordListener, hub))
        self.assertIs(recorder.listener, hub)
        pool = WorkerPool(Recorder(MemorySink(), Clock()), MemoryReactorClock(), [], 1, [])
        self.assertTrue(verifyObject(IRecordListener, pool))
        self.assertIs(pool.recorder.listener, pool)

    def test_hubAndConnection(self) -> None:
        """
        The hub is an L{IHub}, and a started connection an L{IConnection}.
        """
        hub = Hub(Recorder(MemorySink(), Clock()))
        self.assertTrue(verifyObject(IHub, hub))
        protocol = LineLoggerFactory(hub).buildProtocol(None)
        with capturedLogs():
            protocol.makeConnection(StringTransport())
        self.assertTrue(verifyObject(IConnection, protocol))
        self.assertEqual(protocol.lineCounts(), (0, 0))
