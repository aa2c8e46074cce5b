"""
Tests for L{logger_service.redis.broker}: the broker a node's chat holds.
"""

from __future__ import annotations

from prometheus_client import generate_latest
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from logger_service.broker import IBroker
from logger_service.chatsession import Chat
from logger_service.hub import Hub
from logger_service.metrics import makeRegistry
from logger_service.recorder import Recorder
from logger_service.redis.broker import RedisBroker

from .memory import MemorySink
from .test_metrics import documentedNames


class BrokerTests(SynchronousTestCase):
    """
    L{RedisBroker} is a broker.
    """

    def test_provides(self) -> None:
        """
        L{RedisBroker} provides L{IBroker}, and its nodes are told apart.
        """
        first, second = RedisBroker(Clock(), "redis://127.0.0.1"), RedisBroker(Clock(), "redis://127.0.0.1")
        self.assertTrue(verifyObject(IBroker, first))
        self.assertNotEqual(first.node, second.node)


class MetricsTests(SynchronousTestCase):
    """
    With a L{RedisBroker}, C{/metrics} has the documented C{linelogger_redis_*}.
    """

    def test_exposed(self) -> None:
        """
        Every documented C{linelogger_redis_*} metric is exposed, with the
        broker's values; before Redis answers, C{linelogger_redis_up} is 0.
        """
        clock = Clock()
        broker = RedisBroker(clock, "redis://127.0.0.1")
        chat = Chat(clock, broadcast=broker, state=broker.state)
        broker.attach(chat)
        broker.reconnects = 3
        text = generate_latest(makeRegistry(Hub(Recorder(MemorySink(), clock)), chat)).decode("utf-8")
        samples = dict(line.split() for line in text.splitlines() if line.startswith("linelogger_redis_"))
        documented = [name for name in documentedNames() if name.startswith("linelogger_redis_")]
        self.assertEqual(sorted(samples), sorted(documented))
        self.assertEqual(float(samples["linelogger_redis_up"]), 0.0)
        self.assertEqual(float(samples["linelogger_redis_reconnects_total"]), 3.0)
