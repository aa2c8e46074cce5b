"""
The recorder: turns batches of received lines into records and writes them
to a sink in batches, with bounded memory, retries, fsync and acks.

Records are formatted when lines arrive (with the time of their arrival) and
written together, one write at a time through an L{IWriter}: at the latest
C{flushInterval} seconds after the first of them arrived, as soon as
C{flushBytes} (or half of C{bufferBytes}, if less) wait, or as soon as the
previous write finishes, whichever is first.  So batches grow by themselves
when the output is slow, and a small buffer never waits for the timer.

Backpressure: once more than C{bufferBytes} of records wait (or while
writes fail) the recorder tells its listener (C{pressure}) to stop reading
input, and tells it to start again once half of the buffer has drained.

Failures: a failed write keeps its records, is logged once per episode with
the OS error, and is retried every C{retryInterval} seconds.  Nothing that
was formatted is dropped while the process lives.

Durability: with C{fsync=0} every write is followed by an C{fsync}; with
C{fsync=S} written records are C{fsync}ed at most every C{S} seconds (group
commit).  The listener hears (C{durable}), for each connection, how many more of its
lines are written (and synced, when C{fsync} is set): what C{--ack} sends.
A sink that rotates or reopens its file syncs the old one first (see
L{logger_service.sinks.FileSink}'s C{durable}), so a sync covers records
written to every file since the last.
"""

from __future__ import annotations

import time
from typing import Dict, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .interfaces import IRecorder, IRecordListener, NoListener
from .records import FORMATTERS, Formatter, RecordContext, TimestampCache
from .sinks import IRecordSink
from .writer import ImmediateWriter, IWriter

log = Logger()

Counts = Dict[int, int]
"""Lines per connection id."""


def _merge(into: Counts, more: Counts) -> None:
    for conn, count in more.items():
        into[conn] = into.get(conn, 0) + count


@implementer(IRecorder)
class Recorder:
    """
    Format lines into records and write them to a sink in batches.

    @ivar listener: told C{pressure(True)} when input should pause,
        C{pressure(False)} when it may resume, and C{durable(counts)} of
        lines per connection that are now written (and synced, with
        C{fsync}), only when C{acks} is set (see L{listen}).
    @ivar recordsWritten: records written so far.
    @ivar bytesWritten: bytes written so far.
    @ivar writeErrors: failed writes (and syncs) so far.
    @ivar syncs: completed C{fsync}s so far.
    @ivar syncSeconds: total time spent in C{fsync}.
    """

    retryInterval = 1.0
    """Seconds between attempts after a failed write."""

    def __init__(
        self,
        sink: IRecordSink,
        clock: IReactorTime,
        format: str = "text",
        writer: Optional[IWriter] = None,
        flushInterval: float = 0.05,
        flushBytes: int = 256 * 1024,
        bufferBytes: int = 8 * 1024 * 1024,
        fsync: Optional[float] = None,
        acks: bool = False,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.formatter: Formatter = FORMATTERS[format]
        self.writer: IWriter = writer if writer is not None else ImmediateWriter()
        self.flushInterval = flushInterval
        # A buffer smaller than a batch would pause input before a batch is
        # full, leaving every write to the timer: write at half the buffer.
        self.flushBytes = min(flushBytes, bufferBytes // 2)
        self.bufferBytes = bufferBytes
        self.fsync = fsync
        self.acks = acks
        self.listener: IRecordListener = NoListener()
        self.recordsWritten = 0
        self.bytesWritten = 0
        self.writeErrors = 0
        self.syncs = 0
        self.syncSeconds = 0.0
        self._timestamp = TimestampCache()
        # Formatted, not yet handed to the writer.
        self._pending: List[bytes] = []
        self._pendingBytes = 0
        self._pendingRecords = 0
        self._pendingAcks: Counts = {}
        # Handed to the writer (or to be retried).
        self._inflight: Optional[bytes] = None
        self._inflightRecords = 0
        self._inflightAcks: Counts = {}
        self._writing = False
        # Written, waiting for an fsync.
        self._unsynced: Counts = {}
        self._unsyncedDirty = False
        self._syncCall: Optional[IDelayedCall] = None
        self._syncing = False
        self._lastSync = float("-inf")
        self._timer: Optional[IDelayedCall] = None
        self._failing = False
        self._paused = False
        self._closing: Optional[Deferred[bool]] = None
        self._closeTimeout: Optional[IDelayedCall] = None

    def listen(self, listener: IRecordListener) -> None:
        """
        Tell C{listener} of pressure and durable lines from now on.
        """
        self.listener = listener

    @property
    def pendingBytes(self) -> int:
        """
        How many bytes of records wait to be written, in all.
        """
        return self._pendingBytes + (len(self._inflight) if self._inflight is not None else 0)

    def record(self, context: RecordContext, lines: Sequence[bytes]) -> None:
        """
        Record C{lines}, received just now from C{context}.
        """
        data = self.formatter(self._timestamp(self.clock.seconds()), context, lines)
        self.recordFormatted(data, len(lines), {context.conn: len(lines)} if self.acks else None)

    def recordFormatted(self, data: bytes, records: int, acks: Optional[Counts] = None) -> None:
        """
        Record C{data}, C{records} whole records formatted elsewhere (by a
        worker process); C{acks}, lines per connection id, are reported to
        the listener once C{data} is written (and synced).
        """
        self._pending.append(data)
        self._pendingBytes += len(data)
        self._pendingRecords += records
        if self.acks and acks:
            _merge(self._pendingAcks, acks)
        if self._pendingBytes >= self.flushBytes:
            if self._writing:
                # The write under way may be done already, its result not yet
                # delivered (that waits for the end of this reactor turn):
                # take it now, so that the next write starts at once.
                self.writer.poll()
            self.flush()
        elif self._timer is None and self._inflight is None:
            self._timer = self.clock.callLater(self.flushInterval, self._timerFired)
        self._checkPressure()

    def _timerFired(self) -> None:
        self._timer = None
        self.flush(retry=True)

    def _cancelTimer(self) -> None:
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def flush(self, retry: bool = False) -> None:
        """
        Hand every pending record to the writer now, unless a write is
        already under way (its end starts the next one) or writes are
        failing (the retry timer starts the next one).
        """
        if self._writing or (self._failing and not retry):
            return
        self._cancelTimer()
        if self._inflight is None:
            if not self._pending:
                return
            self._inflight = b"".join(self._pending)
            self._inflightRecords = self._pendingRecords
            self._inflightAcks = self._pendingAcks
            self._pending = []
            self._pendingBytes = 0
            self._pendingRecords = 0
            self._pendingAcks = {}
        self._writing = True
        syncNow = self.fsync == 0
        self.writer.run(self._writeInThread, self._inflight, syncNow).addCallbacks(self._written, self._writeFailed)

    def _writeInThread(self, data: bytes, syncNow: bool) -> Tuple[int, Optional[OSError], float]:
        """
        In the writer: write, and C{fsync} if asked.  A sync failure, or
        the error that cut a write short, is returned rather than raised:
        the bytes were written.
        """
        written = self.sink.write(data)
        if written < len(data):
            return written, self.sink.writeError, 0.0
        if not syncNow:
            return written, None, 0.0
        started = time.monotonic()
        try:
            self.sink.sync()
        except OSError as e:
            return written, e, 0.0
        return written, None, time.monotonic() - started

    def _written(self, result: Tuple[int, Optional[OSError], float]) -> None:
        written, syncError, syncTime = result
        self._writing = False
        data = self._inflight
        assert data is not None
        self.bytesWritten += written
        if written < len(data):
            done = data.count(b"\n", 0, written)
            self.recordsWritten += done
            self._inflightRecords -= done
            self._inflight = data[written:]
            self._failed(syncError if syncError is not None else OSError("short write"))
            return
        self.recordsWritten += self._inflightRecords
        acks = self._inflightAcks
        self._inflight = None
        self._inflightRecords = 0
        self._inflightAcks = {}
        if syncError is not None:
            self._syncFailed(syncError, acks)
        else:
            self._recovered()
            if self.fsync is None:
                self._durable(acks)
            elif self.fsync == 0:
                self._synced(syncTime)
                self._durable(acks)
            else:
                self._needSync(acks)
        if self._pending and not self._failing:
            self.flush()
        self._checkPressure()
        self._maybeClosed()

    def _writeFailed(self, failure: Failure) -> None:
        self._writing = False
        error = failure.value if failure.check(OSError) else failure
        if not failure.check(OSError):
            log.failure("Unexpected error writing records", failure)
        self._failed(error)
        self._checkPressure()

    def _failed(self, error: object) -> None:
        """
        A write or sync failed: log it once per episode, retry later.
        """
        self.writeErrors += 1
        if not self._failing:
            self._failing = True
            log.error(
                "Cannot write records: {error}; keeping {pending} bytes, pausing input, retrying every {interval}s",
                error=error,
                pending=self.pendingBytes,
                interval=self.retryInterval,
            )
        self._cancelTimer()
        self._timer = self.clock.callLater(self.retryInterval, self._timerFired)

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info("Writing records works again")

    def _durable(self, acks: Counts) -> None:
        if acks:
            self.listener.durable(acks)

    def _needSync(self, acks: Counts) -> None:
        """
        Written but not yet synced: sync within C{fsync} seconds.
        """
        _merge(self._unsynced, acks)
        self._unsyncedDirty = True
        if self._syncCall is None and not self._syncing:
            delay = max(0.0, self._lastSync + (self.fsync or 0.0) - self.clock.seconds())
            self._syncCall = self.clock.callLater(delay, self._sync)

    def _sync(self) -> None:
        self._syncCall = None
        covered, self._unsynced = self._unsynced, {}
        self._unsyncedDirty = False
        self._syncing = True
        self.writer.run(self._syncInThread).addCallbacks(
            self._syncDone,
            lambda failure: self._syncFailed(failure.value, covered),
            callbackArgs=(covered,),
        )

    def _syncInThread(self) -> float:
        started = time.monotonic()
        self.sink.sync()
        return time.monotonic() - started

    def _syncDone(self, seconds: float, covered: Counts) -> None:
        self._syncing = False
        self._recovered()
        self._synced(seconds)
        self._durable(covered)
        if self._unsyncedDirty:
            self._needSync({})
        self._maybeClosed()

    def _syncFailed(self, error: object, covered: Counts) -> None:
        """
        An C{fsync} (alone, or after a write) failed: the lines it covered
        wait for the next one, tried in C{retryInterval} seconds.
        """
        self._syncing = False
        _merge(self._unsynced, covered)
        self._unsyncedDirty = True
        self.writeErrors += 1
        if not self._failing:
            self._failing = True
            log.error(
                "Cannot fsync records: {error}; retrying every {interval}s", error=error, interval=self.retryInterval
            )
        if self._syncCall is None:
            self._syncCall = self.clock.callLater(self.retryInterval, self._sync)
        self._checkPressure()

    def _synced(self, seconds: float) -> None:
        self.syncs += 1
        self.syncSeconds += seconds
        self._lastSync = self.clock.seconds()

    def _checkPressure(self) -> None:
        """
        Pause input past the buffer or while failing; resume at half.
        """
        buffered = self.pendingBytes
        if not self._paused and (buffered > self.bufferBytes or self._failing):
            self._paused = True
            self.listener.pressure(True)
        elif self._paused and buffered <= self.bufferBytes // 2 and not self._failing:
            self._paused = False
            self.listener.pressure(False)

    def reopen(self) -> None:
        """
        Reopen the output (SIGHUP): records written so far go to the old
        file, later ones to the new; none is lost or written twice.
        """
        log.info("Reopening the output")
        self.writer.run(self.sink.reopen).addErrback(
            lambda failure: log.failure("Cannot reopen the output; still writing to the old one", failure)
        )

    def close(self, timeout: float = 30.0) -> Deferred[bool]:
        """
        Write (and sync) everything pending, then close the sink.

        @param timeout: give up on records still unwritten after this long.
        @return: a L{Deferred} firing with C{True} if every record was
            written.
        """
        if self._closing is None:
            self._closing = Deferred()
            self._closeTimeout = self.clock.callLater(timeout, self._giveUp)
            self.flush()
            if self._unsyncedDirty and self._syncCall is not None:
                self._syncCall.cancel()
                self._syncCall = None
                self._sync()
            self._maybeClosed()
        return self._closing

    def _idle(self) -> bool:
        return not (
            self._pending or self._inflight is not None or self._writing or self._syncing or self._unsyncedDirty
        )

    def _maybeClosed(self) -> None:
        if self._closing is not None and not self._closing.called and self._idle():
            self._shut(True)

    def _giveUp(self) -> None:
        self._closeTimeout = None
        if self._closing is not None and not self._closing.called:
            log.error("Exiting with {pending} bytes of records unwritten", pending=self.pendingBytes)
            self._shut(False)

    def _shut(self, complete: bool) -> None:
        assert self._closing is not None
        self._cancelTimer()
        for call in (self._closeTimeout, self._syncCall):
            if call is not None and call.active():
                call.cancel()
        self._closeTimeout = self._syncCall = None
        if complete:
            closed = self.writer.run(self.sink.close)
        else:
            # The writer may be stuck in a write that will never return.
            closed = succeed(None)
        self.writer.stop()
        closing = self._closing
        closed.addBoth(lambda _: closing.callback(complete))
