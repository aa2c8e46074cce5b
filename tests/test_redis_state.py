"""
Tests for L{logger_service.redis.state}: the chat state of a node of a
cluster.
"""

from __future__ import annotations

from typing import List

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from logger_service.chatsession import Chat
from logger_service.chatstate import ToMember
from logger_service.redis.broker import RedisBroker

from .chatclients import RecordingClient as Client


class ClusterNickTests(SynchronousTestCase):
    """
    Nickname changes on a node of a cluster.
    """

    def test_controlRefused(self) -> None:
        """
        A nick typed with a control character (valid once shown in caret
        notation) is refused here, never claimed cluster-wide.
        """
        broker = RedisBroker(Clock(), "redis://127.0.0.1")
        chat = Chat(broker.clock, broadcast=broker, state=broker.state)
        broker.attach(chat)
        claimed: List[str] = []
        self.patch(broker, "rename", lambda member, nick: claimed.append(nick))
        self.patch(broker, "redisUp", True)
        client = Client()
        member, _ = broker.state.connect(1, client)
        for line in [b"/nick bob\x1b", b"/nick x\xc2\x9b"]:
            (event,) = broker.state.say(member, line)
            assert isinstance(event, ToMember)
            self.assertEqual(event.text, "! Nicknames cannot hold control characters.")
        broker.state.say(member, b"/nick bob")
        self.assertEqual(claimed, ["bob"])
