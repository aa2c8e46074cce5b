"""
The recorder: turns batches of received lines into records and writes them
to a sink in batches, with bounded memory, retries, fsync and acks.

Records are formatted when lines arrive (with the time of their arrival) and
written together, one write at a time through an L{IWriter}: at the latest
C{flushInterval} seconds after the first of them arrived, as soon as
C{flushBytes} (or half of C{bufferBytes}, if less) wait, or as soon as the
previous write finishes, whichever is first.  So batches grow by themselves
when the output is slow, and a small buffer never waits for the timer.

A record moves one way: I{pending} (formatted, in the next L{Batch}) ->
I{in flight} (the batch handed to the writer; what a failed or short write
left of it stays in flight, to be retried) -> I{written} (counted, its lines
handed to L{Durability}) -> I{durable} (reported to the listener).  The
write pipeline is in one of the L{WriteState}s, and the recorder in one of
the L{Phase}s of its life.

Backpressure: once more than C{bufferBytes} of records wait (or while
writes fail) the recorder tells its listener (C{pressure}) to stop reading
input, and tells it to start again once half of the buffer has drained.

Failures: a failed write keeps its records, is logged once per episode with
the OS error, and is retried every C{retryInterval} seconds.  Nothing that
was formatted is dropped while the process lives.

Durability: see L{logger_service.durability}.  The listener hears
(C{durable}), for each connection, how many more of its lines are
written (and synced, when C{fsync} is set): what C{--ack} sends.
"""

from __future__ import annotations

import enum
import time
from typing import Optional, Sequence, Tuple

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .batch import Batch, Counts
from .durability import Durability
from .interfaces import IRecorder, IRecordListener, NoListener
from .records import FORMATTERS, Formatter, RecordContext, TimestampCache
from .sinks import IRecordSink
from .writer import ImmediateWriter, IWriter

log = Logger()


class WriteState(enum.Enum):
    """
    Where the write pipeline stands.
    """

    IDLE = "no batch in flight; pending records wait for the timer or a full batch"
    WRITING = "the batch in flight is with the writer"
    RETRYING = "what a failed write left of the batch in flight waits for the retry timer"


class Phase(enum.Enum):
    """
    The recorder's life.
    """

    OPEN = "recording"
    CLOSING = "writing and syncing what is left, no longer than the close timeout"
    CLOSED = "the sink is closed (or given up on)"


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
        self._pending = Batch()
        self._inflight: Optional[Batch] = None
        self._state = WriteState.IDLE
        # The next write attempt: the flush timer, or the retry timer.
        self._timer: Optional[IDelayedCall] = None
        self._durability = Durability(
            clock,
            fsync,
            lambda: self.writer.run(self._syncInThread),
            self._madeDurable,
            self._syncEnded,
            self.retryInterval,
        )
        # A write or sync failed, and none succeeded since.
        self._failing = False
        self._paused = False
        self._phase = Phase.OPEN
        self._closed: Deferred[bool] = Deferred()
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
        return self._pending.size + (self._inflight.size if self._inflight is not None else 0)

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
        pending = self._pending
        pending.add(data, records, acks if self.acks else None)
        if pending.size >= self.flushBytes:
            if self._state is WriteState.WRITING:
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
        if self._state is WriteState.WRITING or (self._failing and not retry):
            return
        self._cancelTimer()
        if self._inflight is None:
            if not self._pending:
                return
            self._inflight, self._pending = self._pending, Batch()
        self._state = WriteState.WRITING
        self.writer.run(self._writeInThread, self._inflight.data(), self._durability.syncAfterWrite).addCallbacks(
            self._written, self._writeFailed
        )

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
        try:
            return written, None, self._syncInThread()
        except OSError as e:
            return written, e, 0.0

    def _written(self, result: Tuple[int, Optional[OSError], float]) -> None:
        written, syncError, syncTime = result
        batch = self._inflight
        assert batch is not None
        self.bytesWritten += written
        if written < batch.size:
            done = batch.consume(written)
            self.recordsWritten += done
            self._failed(syncError if syncError is not None else OSError("short write"))
            return
        self._state = WriteState.IDLE
        self._inflight = None
        self.recordsWritten += batch.records
        if syncError is not None:
            self._durability.writeSyncFailed(syncError, batch.acks)
        else:
            self._recovered()
            self._durability.written(batch.acks, syncTime)
        if self._pending and not self._failing:
            self.flush()
        self._checkPressure()
        self._maybeClosed()

    def _writeFailed(self, failure: Failure) -> None:
        error = failure.value if failure.check(OSError) else failure
        if not failure.check(OSError):
            log.failure("Unexpected error writing records", failure)
        self._failed(error)
        self._checkPressure()

    def _failed(self, error: object) -> None:
        """
        A write failed: log it once per episode, retry what is left of its
        batch later.
        """
        self._state = WriteState.RETRYING
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

    def _madeDurable(self, syncSeconds: Optional[float], acks: Counts) -> None:
        """
        L{Durability} says C{acks} are durable, after a sync that took
        C{syncSeconds} (C{None}: no sync was needed).
        """
        if syncSeconds is not None:
            self._synced(syncSeconds)
        self._durable(acks)

    def _durable(self, acks: Counts) -> None:
        if acks:
            self.listener.durable(acks)

    def _syncInThread(self) -> float:
        started = time.monotonic()
        self.sink.sync()
        return time.monotonic() - started

    def _syncEnded(self, error: Optional[object]) -> None:
        """
        A sync (on its own, or after a write) ended, with C{error} if it
        failed.
        """
        if error is not None:
            self._syncFailed(error)
        else:
            self._recovered()
            self._maybeClosed()

    def _syncFailed(self, error: object) -> None:
        """
        An C{fsync} (alone, or after a write) failed: the lines it covered
        wait for the next one, tried in C{retryInterval} seconds.
        """
        self.writeErrors += 1
        if not self._failing:
            self._failing = True
            log.error(
                "Cannot fsync records: {error}; retrying every {interval}s", error=error, interval=self.retryInterval
            )
        self._checkPressure()

    def _synced(self, seconds: float) -> None:
        self.syncs += 1
        self.syncSeconds += seconds

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
        if self._phase is Phase.OPEN:
            self._phase = Phase.CLOSING
            self._closeTimeout = self.clock.callLater(timeout, self._giveUp)
            self.flush()
            self._durability.hurry()
            self._maybeClosed()
        return self._closed

    def _idle(self) -> bool:
        return not self._pending and self._inflight is None and self._durability.idle

    def _maybeClosed(self) -> None:
        if self._phase is Phase.CLOSING and self._idle():
            self._shut(True)

    def _giveUp(self) -> None:
        self._closeTimeout = None
        if self._phase is Phase.CLOSING:
            log.error("Exiting with {pending} bytes of records unwritten", pending=self.pendingBytes)
            self._shut(False)

    def _shut(self, complete: bool) -> None:
        self._phase = Phase.CLOSED
        self._cancelTimer()
        self._durability.stop()
        if self._closeTimeout is not None and self._closeTimeout.active():
            self._closeTimeout.cancel()
        self._closeTimeout = None
        if complete:
            closed = self.writer.run(self.sink.close)
        else:
            # The writer may be stuck in a write that will never return.
            closed = succeed(None)
        self.writer.stop()
        closed.addBoth(lambda _: self._closed.callback(complete))
