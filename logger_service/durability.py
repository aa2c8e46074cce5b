"""
Durability: when written lines count as on disk, by the C{fsync} policy.

The recorder hands every batch it wrote to a L{Durability}, with the lines
per connection that batch carried.  How those lines become durable depends
on the policy (L{SyncMode}), fixed at start-up by C{--fsync}:

  - L{SyncMode.NONE}: written is durable; nothing is synced.
  - L{SyncMode.EVERY_WRITE} (C{fsync=0}): each write is followed by an
    C{fsync} in the same writer call; its lines are durable once both
    succeeded.
  - L{SyncMode.GROUP} (C{fsync=S}): written lines wait for a sync of their
    own, run at most every C{S} seconds (group commit) and covering every
    line written before it started.

The lines that wait for a sync move through explicit states (L{SyncState}):
C{IDLE} (none waits) -> C{DUE} (a sync is scheduled) -> C{SYNCING} (it runs;
C{SYNCING_MORE_DUE} once more lines were written meanwhile) -> C{IDLE}, or
back to C{DUE} with the lines of a failed sync, retried C{retryInterval}
seconds later.  A line is reported durable only once a sync that started
after it was written succeeded: a sink that rotates or reopens its file
syncs the old one first (see L{logger_service.filesink.FileSink}'s
C{durable}), so that a sync covers every file written since the last one.
"""

from __future__ import annotations

import enum
from typing import Callable, Optional

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

from .batch import Counts, merge


class SyncMode(enum.Enum):
    """
    When written records are synced.
    """

    NONE = "no fsync"
    EVERY_WRITE = "fsync after every write"
    GROUP = "group commit"

    @classmethod
    def of(cls, fsync: Optional[float]) -> SyncMode:
        """
        The mode of the C{--fsync} setting: C{None}, C{0} or seconds.
        """
        if fsync is None:
            return cls.NONE
        return cls.EVERY_WRITE if fsync == 0 else cls.GROUP


class SyncState(enum.Enum):
    """
    Where the written lines that are not yet durable stand.
    """

    IDLE = "every written line is durable"
    DUE = "written lines wait for a scheduled sync"
    SYNCING = "a sync runs, covering every line written before it"
    SYNCING_MORE_DUE = "a sync runs; lines written since wait for the next"


class Durability:
    """
    Track which written lines are durable, running the syncs the policy
    asks for, and report them.

    @ivar mode: the policy.
    @ivar interval: the least time between two syncs, in seconds (group
        commit); C{0.0} otherwise.
    @ivar state: where the lines not yet durable stand.
    """

    def __init__(
        self,
        clock: IReactorTime,
        fsync: Optional[float],
        sync: Callable[[], Deferred[float]],
        durable: Callable[[Optional[float], Counts], None],
        syncEnded: Callable[[Optional[object]], None],
        retryInterval: float = 1.0,
    ) -> None:
        """
        @param fsync: C{None} (no sync), C{0} (sync after every write) or
            the seconds between syncs (group commit).
        @param sync: start a sync of the sink (in the writer); the
            L{Deferred} fires with the seconds it took.
        @param durable: called with the seconds a sync took (C{None} when
            no sync was run) and the lines per connection that are now
            durable.
        @param syncEnded: called after a sync run on its own (or the sync
            after a write) ended: with C{None} if it succeeded, else with
            the error.
        @param retryInterval: seconds before a failed sync is tried again.
        """
        self.mode = SyncMode.of(fsync)
        self.interval = fsync or 0.0
        self.state = SyncState.IDLE
        self._clock = clock
        self._sync = sync
        self._durable = durable
        self._syncEnded = syncEnded
        self._retryInterval = retryInterval
        # Written lines that no running sync covers.
        self._waiting: Counts = {}
        self._call: Optional[IDelayedCall] = None
        self._lastSync = float("-inf")
        self._hurry = False

    @property
    def syncAfterWrite(self) -> bool:
        """
        Whether each write is to be followed by an C{fsync}.
        """
        return self.mode is SyncMode.EVERY_WRITE

    @property
    def idle(self) -> bool:
        """
        Whether every written line is durable (and reported).
        """
        return self.state is SyncState.IDLE

    def written(self, acks: Counts, syncSeconds: float = 0.0) -> None:
        """
        A write succeeded: C{acks}, its lines per connection, are durable
        now, or once a sync covers them.

        @param syncSeconds: with L{SyncMode.EVERY_WRITE}, how long the sync
            that followed the write took.
        """
        if self.mode is SyncMode.NONE:
            self._durable(None, acks)
        elif self.mode is SyncMode.EVERY_WRITE:
            self._lastSync = self._clock.seconds()
            self._durable(syncSeconds, acks)
        else:
            self._wait(acks)

    def writeSyncFailed(self, error: object, acks: Counts) -> None:
        """
        A write succeeded but the sync that followed it failed: its lines
        wait for a sync of their own, tried C{retryInterval} seconds later.
        """
        merge(self._waiting, acks)
        if self.state is SyncState.IDLE:
            self._schedule(self._retryInterval)
        elif self.state is SyncState.SYNCING:
            self.state = SyncState.SYNCING_MORE_DUE
        self._syncEnded(error)

    def hurry(self) -> None:
        """
        Closing: run the sync that is due at once, and from now on sync
        without waiting for the group commit's interval.
        """
        self._hurry = True
        if self.state is SyncState.DUE:
            self._syncNow()

    def stop(self) -> None:
        """
        Cancel the scheduled sync, if any: nothing more will be synced.
        """
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _wait(self, acks: Counts) -> None:
        """
        Written lines wait for a sync, within C{interval} seconds of the
        last one.
        """
        merge(self._waiting, acks)
        if self.state is SyncState.IDLE:
            self._schedule(0.0 if self._hurry else self._lastSync + self.interval - self._clock.seconds())
        elif self.state is SyncState.SYNCING:
            self.state = SyncState.SYNCING_MORE_DUE

    def _schedule(self, delay: float) -> None:
        self.state = SyncState.DUE
        self._call = self._clock.callLater(max(0.0, delay), self._syncNow)

    def _syncNow(self) -> None:
        self.stop()
        covered, self._waiting = self._waiting, {}
        self.state = SyncState.SYNCING
        self._sync().addCallbacks(self._syncDone, self._syncFailed, callbackArgs=(covered,), errbackArgs=(covered,))

    def _syncDone(self, seconds: float, covered: Counts) -> None:
        self._lastSync = self._clock.seconds()
        more = self.state is SyncState.SYNCING_MORE_DUE
        self.state = SyncState.IDLE
        if more:
            self._schedule(0.0 if self._hurry else self.interval)
        self._durable(seconds, covered)
        self._syncEnded(None)

    def _syncFailed(self, failure: Failure, covered: Counts) -> None:
        """
        The lines a failed sync covered wait for the next, tried in
        C{retryInterval} seconds.
        """
        merge(self._waiting, covered)
        self._schedule(self._retryInterval)
        self._syncEnded(failure.value)
