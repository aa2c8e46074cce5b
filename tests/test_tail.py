"""
Tests for L{logger_service.tail}: records as written, to subscribers,
bounded.
"""

from __future__ import annotations

from typing import Any, Callable, List, Tuple

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from logger_service.sinks import IRecordSink
from logger_service.tail import KEEPALIVE, ITailSubscriber, Tail, TeeSink

from .memory import MemorySink


@implementer(ITailSubscriber)
class Watcher:
    def __init__(self) -> None:
        self.lines: List[bytes] = []
        self.pings = 0

    def records(self, lines: List[bytes]) -> None:
        self.lines.extend(lines)

    def keepalive(self) -> None:
        self.pings += 1


class Calls:
    """
    A stand-in for C{reactor.callFromThread} that runs calls when told.
    """

    def __init__(self) -> None:
        self.pending: List[Tuple[Callable[..., Any], Tuple[Any, ...]]] = []

    def __call__(self, f: Callable[..., Any], *args: Any) -> None:
        self.pending.append((f, args))

    def run(self) -> None:
        pending, self.pending = self.pending, []
        for f, args in pending:
            f(*args)


class TeeSinkTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.calls = Calls()
        self.tail = Tail(self.clock, self.calls, limit=100)
        self.inner = MemorySink()
        self.sink = TeeSink(self.inner, self.tail)
        self.watcher = Watcher()

    def test_interface(self) -> None:
        self.assertTrue(verifyObject(IRecordSink, self.sink))

    def test_sameBytes(self) -> None:
        """
        Subscribers get the very records the sink wrote, line by line,
        once the call reaches the reactor thread.
        """
        self.tail.subscribe(self.watcher)
        self.assertEqual(self.sink.write(b"a 1\nb 2\n"), 8)
        self.assertEqual(self.inner.data, b"a 1\nb 2\n")
        self.assertEqual(self.watcher.lines, [])
        self.calls.run()
        self.assertEqual(self.watcher.lines, [b"a 1", b"b 2"])

    def test_noSubscriberNoCall(self) -> None:
        """
        Without subscribers nothing crosses threads.
        """
        self.sink.write(b"a\n")
        self.assertEqual(self.calls.pending, [])

    def test_shortWrite(self) -> None:
        """
        Only what the sink took is passed on; a record cut by a short write
        is passed on whole once the rest is written.
        """
        self.tail.subscribe(self.watcher)
        self.inner.acceptOnly = 5
        self.assertEqual(self.sink.write(b"abc\ndefg\n"), 5)
        self.calls.run()
        self.assertEqual(self.watcher.lines, [b"abc"])
        self.sink.write(b"efg\n")
        self.calls.run()
        self.assertEqual(self.watcher.lines, [b"abc", b"defg"])

    def test_bounded(self) -> None:
        """
        Past C{limit} bytes waiting to cross, records are skipped and
        counted, not queued.
        """
        self.tail.subscribe(self.watcher)
        for _ in range(30):
            self.sink.write(b"0123456789\n")
        self.assertEqual(len(self.calls.pending), 9)
        self.assertEqual(self.tail.skippedBytes, 21 * 11)
        self.calls.run()
        self.sink.write(b"later\n")
        self.calls.run()
        self.assertEqual(len(self.watcher.lines), 10)
        self.assertEqual(self.watcher.lines[-1], b"later")

    def test_passThrough(self) -> None:
        self.sink.sync()
        self.sink.reopen()
        self.sink.close()
        self.assertEqual((self.inner.syncs, self.inner.reopens, self.inner.closed), (1, 1, True))

    def test_keepalive(self) -> None:
        """
        Subscribers are pinged while subscribed, and not after.
        """
        self.tail.subscribe(self.watcher)
        self.clock.advance(KEEPALIVE)
        self.assertEqual(self.watcher.pings, 1)
        self.tail.unsubscribe(self.watcher)
        self.clock.advance(KEEPALIVE * 3)
        self.assertEqual(self.watcher.pings, 1)
        self.assertEqual(self.clock.getDelayedCalls(), [])
