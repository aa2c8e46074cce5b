"""
A worker's recorder: formatted records sent to the supervisor in batches,
lines acknowledged once the supervisor has written them.
"""

from __future__ import annotations

import itertools
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from .interfaces import IRecorder, IRecordListener, NoListener
from .records import FORMATTERS, Formatter, RecordContext, TimestampCache
from .workerwire import COUNTED, DONE, LISTEN, SEQ, Counts, MessageProtocol, encodeBatch

# Logged under the worker process's name, as the rest of its log is.
log = Logger(namespace="logger_service.worker")


class SupervisorLink(MessageProtocol):
    """
    The worker's end of its socket to the supervisor.
    """

    def __init__(
        self,
        recorder: Optional[ForwardingRecorder],
        lost: Callable[[], None],
        counted: Callable[[], None] = lambda: None,
        accept: Callable[[], None] = lambda: None,
    ) -> None:
        MessageProtocol.__init__(self)
        self.recorder = recorder
        self.lost = lost
        self.counted = counted
        self.accept = accept

    def messageReceived(self, message: bytes) -> None:
        """
        Batches are written: tell the recorder.  The last report of the
        counters is in: call C{counted}.  The sockets listen: call
        C{accept}.
        """
        kind = message[:1]
        if kind == DONE and self.recorder is not None:
            for offset in range(1, len(message), SEQ.size):
                self.recorder.done(SEQ.unpack_from(message, offset)[0])
        elif kind == COUNTED:
            self.counted()
        elif kind == LISTEN:
            self.accept()

    def connectionLost(self, reason: object = None) -> None:
        """
        The supervisor is gone: nothing can be recorded any more.
        """
        self.lost()


@implementer(IRecorder)
class ForwardingRecorder:
    """
    What the hub records into in a worker: formats lines as
    L{logger_service.recorder.Recorder} does, and sends them to the
    supervisor in batches, one per reactor turn, instead of writing them.

    Input pauses (its listener's C{pressure}) once more than C{bufferBytes}
    of records are sent but not yet written; the listener's C{durable}
    hears of lines once the
    supervisor says the batch that held them is written (and synced).

    @ivar recordsWritten: records the supervisor has written.
    @ivar bytesWritten: bytes of records the supervisor has written.
    """

    def __init__(
        self, clock: IReactorTime, format: str = "text", bufferBytes: int = 8 * 1024 * 1024, acks: bool = False
    ) -> None:
        self.clock = clock
        self.acks = acks
        self.formatter: Formatter = FORMATTERS[format]
        self.bufferBytes = bufferBytes
        self.link: Optional[SupervisorLink] = None
        self.listener: IRecordListener = NoListener()
        self.recordsWritten = 0
        self.bytesWritten = 0
        self.writeErrors = 0
        self.syncs = 0
        self.syncSeconds = 0.0
        self._timestamp = TimestampCache()
        self._pending: List[bytes] = []
        self._pendingRecords = 0
        self._pendingAcks: Counts = {}
        self._timer: Optional[IDelayedCall] = None
        self._seq = itertools.count(1)
        self._sent: Dict[int, Tuple[int, int, Counts]] = {}
        self._sentBytes = 0
        self._paused = False
        self._closing: Optional[Deferred[bool]] = None

    def listen(self, listener: IRecordListener) -> None:
        """
        Tell C{listener} of pressure and durable lines from now on.
        """
        self.listener = listener

    @property
    def pendingBytes(self) -> int:
        """
        Bytes of records not yet written by the supervisor.
        """
        return self._sentBytes + sum(len(data) for data in self._pending)

    def record(self, context: RecordContext, lines: Sequence[bytes]) -> None:
        """
        Format C{lines}, received just now from C{context}, for the next batch.
        """
        self._pending.append(self.formatter(self._timestamp(self.clock.seconds()), context, lines))
        self._pendingRecords += len(lines)
        if self.acks:
            acks = self._pendingAcks
            acks[context.conn] = acks.get(context.conn, 0) + len(lines)
        if self._timer is None:
            self._timer = self.clock.callLater(0, self.flush)

    def flush(self) -> None:
        """
        Send what is pending to the supervisor as one batch.
        """
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        if not self._pending or self.link is None:
            return
        data = b"".join(self._pending)
        seq = next(self._seq)
        self.link.sendMessage(encodeBatch(seq, data, self._pendingRecords, self._pendingAcks))
        self._sent[seq] = (len(data), self._pendingRecords, self._pendingAcks)
        self._sentBytes += len(data)
        self._pending = []
        self._pendingRecords = 0
        self._pendingAcks = {}
        self._checkPressure()

    def done(self, seq: int) -> None:
        """
        The supervisor wrote batch C{seq}.
        """
        sent = self._sent.pop(seq, None)
        if sent is None:
            return
        size, records, acks = sent
        self._sentBytes -= size
        self.bytesWritten += size
        self.recordsWritten += records
        if acks:
            self.listener.durable(acks)
        self._checkPressure()
        self._maybeClosed()

    def _checkPressure(self) -> None:
        if not self._paused and self._sentBytes > self.bufferBytes:
            self._paused = True
            self.listener.pressure(True)
        elif self._paused and self._sentBytes <= self.bufferBytes // 2:
            self._paused = False
            self.listener.pressure(False)

    def reopen(self) -> None:
        """
        Nothing to reopen: the supervisor owns the output.
        """

    def close(self, timeout: float = 30.0) -> Deferred[bool]:
        """
        Send what is pending and wait until the supervisor wrote it all.
        """
        if self._closing is None:
            self._closing = Deferred()
            self.flush()
            self.clock.callLater(timeout, self._giveUp)
            self._maybeClosed()
        return self._closing

    def _maybeClosed(self) -> None:
        if self._closing is not None and not self._closing.called and not self._sent and not self._pending:
            self._closing.callback(True)

    def _giveUp(self) -> None:
        if self._closing is not None and not self._closing.called:
            log.error("Exiting with {pending} bytes of records unwritten", pending=self.pendingBytes)
            self._closing.callback(False)
