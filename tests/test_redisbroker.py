"""
Tests for L{logger_service.redisbroker}'s options: URLs and their checks.
"""

from __future__ import annotations

from typing import Any, List

from prometheus_client import generate_latest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from logger_service.broker import IBroker
from logger_service.chat import ToMember
from logger_service.chatservice import ChatService
from logger_service.hub import Hub
from logger_service.metrics import makeRegistry
from logger_service.recorder import Recorder
from logger_service.redisbroker import MAX_PENDING, RedisBroker, checkRedisURL
from logger_service.tap import Options

from .memory import MemorySink
from .test_metrics import documentedNames


class URLTests(SynchronousTestCase):
    """
    C{--redis} takes redis://, rediss:// and unix:// URLs, and nothing else.
    """

    def test_good(self) -> None:
        """
        The documented forms are accepted.
        """
        for url in (
            "redis://127.0.0.1",
            "redis://:secret@127.0.0.1:6380/2",
            "rediss://redis.example:6390",
            "unix:///run/redis/redis.sock",
            "unix:///run/redis/redis.sock?db=3",
        ):
            checkRedisURL(url)

    def test_bad(self) -> None:
        """
        Other schemes, bad ports and bad database numbers are refused with a
        message naming the option.
        """
        for url in ("http://127.0.0.1", "127.0.0.1:6379", "redis://127.0.0.1:99999", "redis://127.0.0.1/x"):
            with self.assertRaises(ValueError) as caught:
                checkRedisURL(url)
            self.assertIn("--redis", str(caught.exception))

    def test_options(self) -> None:
        """
        C{--redis} needs C{--chat}, and a good URL; C{--redis-prefix}
        defaults to C{linelogger}.
        """
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--redis", "redis://127.0.0.1"])
        self.assertIn("needs --chat", str(caught.exception))
        with self.assertRaises(usage.UsageError):
            Options().parseOptions(["--chat", "--redis", "http://x"])
        options = Options()
        options.parseOptions(["--chat", "--redis", "redis://127.0.0.1:6380"])
        self.assertEqual((options["redis"], options["redis-prefix"]), ("redis://127.0.0.1:6380", "linelogger"))

    def test_withoutTheExtra(self) -> None:
        """
        Without txredisapi, C{--redis} is one clear usage error.
        """
        import sys

        saved = {name: sys.modules.get(name) for name in ("txredisapi", "logger_service.redisbroker")}

        def restore() -> None:
            for name, module in saved.items():
                if module is None:
                    sys.modules.pop(name, None)
                else:
                    sys.modules[name] = module

        self.addCleanup(restore)
        sys.modules["txredisapi"] = None  # type: ignore[assignment]
        sys.modules.pop("logger_service.redisbroker", None)
        with self.assertRaises(usage.UsageError) as caught:
            Options().parseOptions(["--chat", "--redis", "redis://127.0.0.1"])
        self.assertIn("pip install 'linelogger[redis]'", str(caught.exception))

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
        chat = ChatService(clock, broadcast=broker, state=broker.state)
        broker.attach(chat)
        broker.reconnects = 3
        text = generate_latest(makeRegistry(Hub(Recorder(MemorySink(), clock)), chat)).decode("utf-8")
        samples = dict(line.split() for line in text.splitlines() if line.startswith("linelogger_redis_"))
        documented = [name for name in documentedNames() if name.startswith("linelogger_redis_")]
        self.assertEqual(sorted(samples), sorted(documented))
        self.assertEqual(float(samples["linelogger_redis_up"]), 0.0)
        self.assertEqual(float(samples["linelogger_redis_reconnects_total"]), 3.0)


class Client:
    """
    A chat member's client that keeps what it is sent.
    """

    encoder = None

    def __init__(self) -> None:
        self.received: List[bytes] = []

    def deliver(self, data: bytes) -> None:
        self.received.append(data)


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
        chat = ChatService(broker.clock, broadcast=broker, state=broker.state)
        broker.attach(chat)
        sender, listener = Client(), Client()
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
        chat = ChatService(broker.clock, broadcast=broker, state=broker.state)
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
