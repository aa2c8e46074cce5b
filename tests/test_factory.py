"""
Tests for L{logger_service.factory}: the settings connections share.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.protocol import LineLoggerProtocol
from logger_service.recorder import Recorder

from .memory import MemorySink


class FactoryTests(SynchronousTestCase):
    """
    L{LineLoggerFactory} builds protocols that share its hub, clock and
    counters.
    """

    def test_clockAndCounters(self) -> None:
        """
        Without a clock of its own, the factory uses the hub's; its counters
        are the hub's.
        """
        hubClock, ownClock = Clock(), Clock()
        hub = Hub(Recorder(MemorySink(), Clock()), clock=hubClock)
        self.assertIs(LineLoggerFactory(hub).clock, hubClock)
        self.assertIs(LineLoggerFactory(hub, clock=ownClock).clock, ownClock)
        self.assertIs(LineLoggerFactory(hub).counters, hub.counters)

    def test_buildProtocol(self) -> None:
        """
        Each protocol built knows its factory.
        """
        factory = LineLoggerFactory(Hub(Recorder(MemorySink(), Clock())))
        protocol = factory.buildProtocol(None)
        self.assertIsInstance(protocol, LineLoggerProtocol)
        self.assertIs(protocol.factory, factory)
