"""
Tests for L{logger_service.durability}: the fsync policy's states, on a
L{Clock}, with syncs that end when the test says.
"""

from __future__ import annotations

import errno
from typing import List, Optional, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from logger_service.batch import Counts
from logger_service.durability import Durability, SyncMode, SyncState


class DurabilityHarness:
    """
    A L{Durability} whose syncs wait until the test ends them, with what it
    reported.
    """

    def __init__(self, fsync: Optional[float], retryInterval: float = 1.0) -> None:
        self.clock = Clock()
        self.clock.advance(100)
        self.syncs: List[Deferred[float]] = []
        self.durable: List[Tuple[Optional[float], Counts]] = []
        self.ended: List[Optional[object]] = []
        self.durability = Durability(
            self.clock,
            fsync,
            self.startSync,
            lambda seconds, acks: self.durable.append((seconds, acks)),
            self.ended.append,
            retryInterval,
        )

    def startSync(self) -> Deferred[float]:
        d: Deferred[float] = Deferred()
        self.syncs.append(d)
        return d

    def endSync(self, seconds: float = 0.25) -> None:
        self.syncs.pop(0).callback(seconds)

    def failSync(self, error: Exception) -> None:
        self.syncs.pop(0).errback(error)


class SyncModeTests(SynchronousTestCase):
    """
    The C{--fsync} setting picks the policy.
    """

    def test_of(self) -> None:
        """
        C{None} is no sync, C{0} a sync after every write, seconds group
        commit.
        """
        self.assertIs(SyncMode.of(None), SyncMode.NONE)
        self.assertIs(SyncMode.of(0), SyncMode.EVERY_WRITE)
        self.assertIs(SyncMode.of(0.0), SyncMode.EVERY_WRITE)
        self.assertIs(SyncMode.of(0.5), SyncMode.GROUP)


class NoSyncTests(SynchronousTestCase):
    """
    Without fsync, written is durable.
    """

    def test_writtenIsDurable(self) -> None:
        """
        Lines are reported durable at once, with no sync and no timer.
        """
        h = DurabilityHarness(None)
        self.assertFalse(h.durability.syncAfterWrite)
        h.durability.written({1: 2})
        self.assertEqual(h.durable, [(None, {1: 2})])
        self.assertEqual(h.syncs, [])
        self.assertEqual(h.clock.getDelayedCalls(), [])
        self.assertTrue(h.durability.idle)


class EveryWriteTests(SynchronousTestCase):
    """
    With C{fsync=0} the writer syncs after every write.
    """

    def test_syncedWithWrite(self) -> None:
        """
        The lines of a write synced with it are durable at once, with the
        time that sync took.
        """
        h = DurabilityHarness(0)
        self.assertTrue(h.durability.syncAfterWrite)
        h.durability.written({1: 1}, 0.5)
        self.assertEqual(h.durable, [(0.5, {1: 1})])
        self.assertIs(h.durability.state, SyncState.IDLE)

    def test_syncAfterWriteFails(self) -> None:
        """
        When the sync after a write fails, its lines wait for a sync of
        their own, tried after the retry interval, and are durable only
        once it succeeds.
        """
        h = DurabilityHarness(0, retryInterval=2.0)
        error = OSError(errno.EIO, "injected")
        h.durability.writeSyncFailed(error, {1: 3})
        self.assertEqual(h.ended, [error])
        self.assertIs(h.durability.state, SyncState.DUE)
        h.clock.advance(1.9)
        self.assertEqual(h.syncs, [])
        h.clock.advance(0.1)
        self.assertIs(h.durability.state, SyncState.SYNCING)
        h.endSync(0.125)
        self.assertEqual(h.durable, [(0.125, {1: 3})])
        self.assertEqual(h.ended, [error, None])
        self.assertTrue(h.durability.idle)


class GroupCommitTests(SynchronousTestCase):
    """
    With C{fsync=S}, written lines wait for a sync at most every S seconds.
    """

    def test_firstSyncAtOnce(self) -> None:
        """
        The first sync is due at once; lines written while it runs wait for
        the next, C{S} seconds after it.
        """
        h = DurabilityHarness(1.0)
        h.durability.written({1: 1})
        self.assertIs(h.durability.state, SyncState.DUE)
        h.clock.advance(0)
        self.assertIs(h.durability.state, SyncState.SYNCING)
        h.durability.written({1: 2})
        h.durability.written({2: 1})
        self.assertIs(h.durability.state, SyncState.SYNCING_MORE_DUE)
        h.endSync()
        self.assertEqual(h.durable, [(0.25, {1: 1})])
        self.assertIs(h.durability.state, SyncState.DUE)
        h.clock.advance(0.99)
        self.assertEqual(h.syncs, [])
        h.clock.advance(0.01)
        h.endSync()
        self.assertEqual(h.durable, [(0.25, {1: 1}), (0.25, {1: 2, 2: 1})])
        self.assertTrue(h.durability.idle)
        self.assertEqual(h.clock.getDelayedCalls(), [])

    def test_writesGatherWhileDue(self) -> None:
        """
        Lines written while a sync is due join it: one sync covers them
        all, no earlier than C{S} seconds after the last.
        """
        h = DurabilityHarness(1.0)
        h.durability.written({1: 1})
        h.clock.advance(0)
        h.endSync()
        h.clock.advance(0.25)
        h.durability.written({1: 1})
        h.durability.written({1: 1})
        self.assertEqual(len(h.clock.getDelayedCalls()), 1)
        h.clock.advance(0.7)
        self.assertEqual(h.syncs, [])
        h.clock.advance(0.05)
        h.endSync()
        self.assertEqual(h.durable[-1], (0.25, {1: 2}))

    def test_failedSyncRetried(self) -> None:
        """
        The lines of a failed sync, and those written since, wait for the
        retry; they are durable only once a sync succeeds.
        """
        h = DurabilityHarness(5.0, retryInterval=1.0)
        h.durability.written({1: 1})
        h.clock.advance(0)
        h.durability.written({2: 1})
        error = OSError(errno.EIO, "injected")
        h.failSync(error)
        self.assertEqual(h.ended, [error])
        self.assertEqual(h.durable, [])
        self.assertIs(h.durability.state, SyncState.DUE)
        h.clock.advance(1.0)
        h.endSync()
        self.assertEqual(h.durable, [(0.25, {2: 1, 1: 1})])
        self.assertEqual(h.ended, [error, None])
        self.assertTrue(h.durability.idle)

    def test_hurry(self) -> None:
        """
        Closing runs a due sync at once, and later ones without waiting for
        the interval.
        """
        h = DurabilityHarness(10.0)
        h.durability.written({1: 1})
        h.clock.advance(0)
        h.endSync()
        h.durability.written({1: 1})
        h.durability.hurry()
        self.assertIs(h.durability.state, SyncState.SYNCING)
        h.durability.written({1: 1})
        h.endSync()
        self.assertIs(h.durability.state, SyncState.DUE)
        h.clock.advance(0)
        h.endSync()
        self.assertEqual([acks for _, acks in h.durable], [{1: 1}, {1: 1}, {1: 1}])
        self.assertTrue(h.durability.idle)

    def test_stop(self) -> None:
        """
        Stopping cancels the sync that is due.
        """
        h = DurabilityHarness(1.0)
        h.durability.written({1: 1})
        h.durability.stop()
        self.assertEqual(h.clock.getDelayedCalls(), [])
