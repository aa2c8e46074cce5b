"""
The recorder: turns batches of received lines into records and writes them
to a sink in batches.

Records are formatted when lines arrive (with the time of their arrival) and
written together: at the latest C{flushInterval} seconds after the first of
them arrived, or as soon as C{flushBytes} are waiting.  A failed write keeps
the records and tries again later; the failure is logged once per episode.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from .records import FORMATTERS, Formatter, RecordContext, TimestampCache
from .sinks import IRecordSink

log = Logger()


class Recorder:
    """
    Format lines into records and write them to a sink in batches.

    @ivar recordsWritten: records handed to the sink so far.
    @ivar writeErrors: failed writes so far.
    """

    retryInterval = 1.0
    """Seconds between attempts after a failed write."""

    def __init__(
        self,
        sink: IRecordSink,
        clock: IReactorTime,
        format: str = "text",
        flushInterval: float = 0.05,
        flushBytes: int = 256 * 1024,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.formatter: Formatter = FORMATTERS[format]
        self.flushInterval = flushInterval
        self.flushBytes = flushBytes
        self.recordsWritten = 0
        self.writeErrors = 0
        self._timestamp = TimestampCache()
        self._pending: List[bytes] = []
        self._pendingBytes = 0
        self._pendingRecords = 0
        self._timer: Optional[IDelayedCall] = None
        self._failing = False
        self._closed = False

    @property
    def pendingBytes(self) -> int:
        """
        How many bytes of records wait to be written.
        """
        return self._pendingBytes

    def record(self, context: RecordContext, lines: Sequence[bytes]) -> None:
        """
        Record C{lines}, received just now from C{context}.
        """
        data = self.formatter(self._timestamp(self.clock.seconds()), context, lines)
        self._pending.append(data)
        self._pendingBytes += len(data)
        self._pendingRecords += len(lines)
        if self._pendingBytes >= self.flushBytes and not self._failing:
            self.flush()
        elif self._timer is None:
            self._timer = self.clock.callLater(self.flushInterval, self._timerFired)

    def _timerFired(self) -> None:
        self._timer = None
        self.flush()

    def flush(self) -> bool:
        """
        Write every pending record now.

        @return: C{True} if nothing is left pending.
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if not self._pending:
            return True
        data = b"".join(self._pending)
        try:
            written = self.sink.write(data)
        except OSError as e:
            written = 0
            error: Optional[OSError] = e
        else:
            error = None
        if written == len(data):
            self._pending = []
            self._pendingBytes = 0
            self.recordsWritten += self._pendingRecords
            self._pendingRecords = 0
            if self._failing:
                self._failing = False
                log.info("Writing records works again")
            return True
        # Keep what was not written, starting at the first unwritten byte.
        rest = data[written:]
        self._pending = [rest]
        self._pendingBytes = len(rest)
        self.recordsWritten += data.count(b"\n", 0, written)
        self._pendingRecords = rest.count(b"\n")
        self.writeErrors += 1
        if not self._failing:
            self._failing = True
            log.error(
                "Cannot write records: {error}; keeping {pending} bytes and retrying every {interval}s",
                error=error if error is not None else "short write",
                pending=len(rest),
                interval=self.retryInterval,
            )
        if not self._closed:
            self._timer = self.clock.callLater(self.retryInterval, self._timerFired)
        return False

    def close(self) -> bool:
        """
        Write what is pending and close the sink.

        @return: C{True} if every record was written.
        """
        self._closed = True
        complete = self.flush()
        if not complete:
            log.error("Exiting with {pending} bytes of records unwritten", pending=self._pendingBytes)
        self.sink.close()
        return complete
