"""
One worker as the supervisor of C{--workers N} sees it: its process (log
lines, exit) and its end of the worker's socket (messages in and out).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol

from twisted.internet.defer import Deferred
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from .recorder import Counts
from .workerwire import (
    BATCH,
    COUNTED,
    COUNTERS,
    DONE,
    LISTEN,
    READY,
    SEQ,
    MessageProtocol,
    decodeBatch,
    decodeCounters,
)

# Logged under the supervisor's name, as the rest of its log is.
log = Logger(namespace="logger_service.workers")


class Pool(Protocol):
    """
    What a worker's process and socket tell the pool of workers
    (L{logger_service.workers.WorkerPool}).
    """

    reactor: Any

    def recordBatch(self, link: WorkerLink, seq: int, data: memoryview, records: int, acks: Counts) -> None:
        """
        Record a worker's batch; tell it once the batch is written.
        """

    def workerCounters(self, worker: WorkerProcess, values: Dict[str, Any]) -> None:
        """
        C{worker} reported its counters.
        """

    def workerReady(self, worker: WorkerProcess) -> None:
        """
        C{worker} listens.
        """

    def linkLost(self, link: WorkerLink) -> None:
        """
        A worker's socket closed.
        """

    def workerEnded(self, worker: WorkerProcess, reason: Failure) -> None:
        """
        A worker exited.
        """


class WorkerLink(MessageProtocol):
    """
    The supervisor's end of one worker's socket: batches in, "written" out.
    """

    def __init__(self, pool: Pool, worker: WorkerProcess) -> None:
        MessageProtocol.__init__(self)
        self.pool = pool
        self.worker = worker
        self._done: List[int] = []

    def messageReceived(self, message: bytes) -> None:
        """
        Record a batch, take the worker's counters (answering its last
        report), or note that the worker listens.
        """
        kind = message[:1]
        if kind == BATCH:
            seq, records, acks, data = decodeBatch(message)
            self.pool.recordBatch(self, seq, data, records, acks)
        elif kind == COUNTERS:
            values, last = decodeCounters(message)
            self.pool.workerCounters(self.worker, values)
            if last:
                self.sendMessage([COUNTED])
        elif kind == READY:
            self.worker.ready = True
            self.pool.workerReady(self.worker)

    def accept(self) -> None:
        """
        Tell the worker to accept connections: its sockets listen.
        """
        if self.transport is not None and self.connected:
            self.sendMessage([LISTEN])

    def written(self, seq: int) -> None:
        """
        Batch C{seq} is written: tell the worker at the end of this turn.
        """
        if not self._done:
            self.pool.reactor.callLater(0, self._sendDone)
        self._done.append(seq)

    def _sendDone(self) -> None:
        done, self._done = self._done, []
        if self.transport is not None and self.connected:
            self.sendMessage([DONE, b"".join([SEQ.pack(seq) for seq in done])])

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        """
        The worker is gone (its exit is handled by its process protocol).
        """
        self.pool.linkLost(self)


class WorkerProcess(ProcessProtocol):
    """
    One worker process: its log lines become the supervisor's, its exit is
    reported to the pool.
    """

    def __init__(self, pool: Pool, slot: int, generation: int) -> None:
        self.pool = pool
        self.slot = slot
        self.generation = generation
        self.ready = False
        self.started = pool.reactor.seconds()
        self.exited: Deferred[None] = Deferred()
        self.link: Optional[WorkerLink] = None
        self._partial = b""

    def errReceived(self, data: bytes) -> None:
        """
        Log what the worker logs, line by line.
        """
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line:
                log.info("worker {slot}: {line}", slot=self.slot + 1, line=line.decode("utf-8", "replace"))

    outReceived = errReceived

    def processEnded(self, reason: Failure) -> None:
        """
        Report the exit to the pool.
        """
        if self._partial:
            self.errReceived(b"\n")
        self.pool.workerEnded(self, reason)
        self.exited.callback(None)
