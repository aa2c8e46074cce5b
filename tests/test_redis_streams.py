"""
Tests for L{logger_service.redis.streams}: what waits for Redis, and what
does not fit.
"""

from __future__ import annotations

from typing import Any, List

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from logger_service.chatsession import Chat
from logger_service.redis.broker import RedisBroker
from logger_service.redis.streams import MAX_PENDING

from .chatclients import RecordingClient


class StalledRedis:
    """
    A Redis connection that never answers.
    """

    def eval(self, script: str, keys: List[str], args: List[Any]) -> Deferred[Any]:
        return Deferred()

    def execute_command(self, *args: Any) -> Deferred[Any]:
        return Deferred()


class PendingTests(SynchronousTestCase):
    """
    Lines wait for Redis in a bounded queue; beyond it, the sender is told.
    """

    def test_notRelayedBeyondTheQueue(self) -> None:
        """
        With Redis out of reach, L{MAX_PENDING} lines wait; the next one is
        not relayed, its sender is told so, and it is counted.  Members of
        this node still hear the lines that wait.
        """
        broker = RedisBroker(Clock(), "redis://127.0.0.1")
        broker._redis = StalledRedis()
        chat = Chat(broker.clock, broadcast=broker, state=broker.state)
        broker.attach(chat)
        sender, listener = RecordingClient(), RecordingClient()
        member, _ = broker.state.connect(1, sender)
        broker.state.connect(2, listener)
        for n in range(MAX_PENDING):
            broker.state.say(member, b"line %d" % n)
        broker.local.flush()
        self.assertEqual(len(b"".join(listener.received).splitlines()), MAX_PENDING)
        self.assertEqual((broker.notRelayed, sender.received[1:]), (0, []))
        broker.state.say(member, b"one too many")
        self.assertEqual(broker.notRelayed, 1)
        self.assertEqual(
            sender.received[-1], b"! Not relayed: the chat cluster is out of reach and too much waits for it.\r\n"
        )
