"""
Tests for L{logger_service.hub}: the registry, admission, and the fan-out of
pressure and acknowledgements.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.recorder import Recorder

from .memory import MemorySink


class PressureTests(SynchronousTestCase):
    """
    When the output falls behind, the hub pauses every client.
    """

    def test_pauseAllThenResume(self) -> None:
        """
        Pressure pauses open connections and ones that connect meanwhile;
        relief resumes them all.
        """
        clock = Clock()
        hub = Hub(Recorder(MemorySink(), clock))
        factory = LineLoggerFactory(hub)

        def connect(port: int) -> StringTransport:
            transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.7", port))
            factory.buildProtocol(None).makeConnection(transport)
            return transport

        with capturedLogs() as events:
            first = connect(1)
            hub.pressure(True)
            second = connect(2)
            self.assertEqual([first.producerState, second.producerState], ["paused", "paused"])
            hub.pressure(False)
        self.assertEqual([first.producerState, second.producerState], ["producing", "producing"])
        self.assertTrue(any("pausing input" in e["log_format"] for e in events))


class ClockTests(SynchronousTestCase):
    """
    The hub's warnings are timed by the clock it is given, not the wall.
    """

    def test_pressureLogClock(self) -> None:
        """
        Pressure is logged at most once a minute of the hub's clock, with
        the count of those left out.
        """
        clock = Clock()
        hub = Hub(Recorder(MemorySink(), Clock()), clock=clock)
        with capturedLogs() as events:
            hub.pressure(True)
            hub.pressure(False)
            hub.pressure(True)
            clock.advance(60)
            hub.pressure(True)
        pausing = [e for e in events if "pausing input" in e["log_format"]]
        self.assertEqual([e["suppressed"] for e in pausing], [0, 1])
        self.assertEqual(hub.counters.inputPauses, 3)
