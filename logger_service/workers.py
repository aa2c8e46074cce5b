"""
The supervisor of C{--workers N}: bind once, run N worker processes, and keep them running.

The supervisor binds every C{--port} endpoint itself (so privileged ports,
UNIX sockets, systemd sockets, C{ssl:} and C{haproxy:} work as with one
process) but never accepts: each worker adopts the listening sockets
(L{logger_service.worker}) and the kernel hands each new connection to one
of them.  TCP sockets listen only once every worker is ready to accept
(L{logger_service.reuseport.BoundSocket}): until then clients are refused,
as by one process that is still starting.  With C{--output FILE} each
worker writes the file itself, under a
lock (C{--worker-output direct}, the default: L{logger_service.sharedfile});
SIGHUP is passed on to every worker.  Otherwise (C{--worker-output
supervisor}, or stdout) workers send formatted records over a UNIX socket;
the supervisor writes them with its one L{Recorder} (so C{--format},
C{--rotate-size}, SIGHUP reopen and C{--fsync} work as with one process),
and tells each worker when a batch is written (and synced), which is when
the worker acknowledges its lines.

A worker that exits unasked is logged and replaced.  SIGTERM stops every
worker (each drains its connections), waits for their last records, then
closes the output.  Workers die with the supervisor (C{PR_SET_PDEATHSIG},
and a lost socket).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, cast

from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.protocol import Factory
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .counters import Counters
from .interfaces import IRecordListener
from .recorder import Counts, Recorder
from .reuseport import bindEndpoint
from .systemd import NotifyService
from .workerprocess import WorkerLink, WorkerProcess
from .workerwire import (
    LINK_FD,
)

if TYPE_CHECKING:
    from .workertotals import WorkerTotals

log = Logger()

FIRST_LISTEN_FD = 10
"""Workers find the listening sockets from this descriptor on."""

LINK_BUFFER = 1 << 20
"""Socket buffer and read size between a worker and the supervisor."""

RESTART_DELAY = 1.0
"""Seconds before replacing a worker that lived less than this."""


@implementer(IRecordListener)
class WorkerPool(Service):
    """
    Bind the endpoints, run the workers, write what they send.

    @ivar recorder: the one output.
    @ivar descriptions: the endpoint descriptions to bind.
    @ivar count: how many workers to run.
    @ivar argv: the C{linelogger} options each worker gets.
    @ivar onReady: called once every worker of the first set listens.
    @ivar workersWrite: whether the workers write the output themselves
        (C{--worker-output direct}), so that this process writes nothing.
    """

    def __init__(
        self,
        recorder: Recorder,
        reactor: Any,
        descriptions: List[str],
        count: int,
        argv: List[str],
        drainTimeout: float = 30.0,
        daemon: bool = False,
    ) -> None:
        self.recorder = recorder
        self.reactor = reactor
        self.descriptions = descriptions
        self.count = count
        self.argv = argv
        self.drainTimeout = drainTimeout
        self.daemon = daemon
        self.onReady: Callable[[], None] = lambda: None
        self.ports: List[List[Any]] = []
        self.workers: Dict[int, WorkerProcess] = {}
        self.replaced = 0
        self._generations: Dict[int, int] = {}
        self._batches: Dict[int, Tuple[WorkerLink, int]] = {}
        self._keys = itertools.count(1)
        self._stopping = False
        self._readyCalled = False
        recorder.acks = True
        recorder.listen(self)
        self._links: List[WorkerLink] = []
        self._paused = False
        self.totals: Optional[WorkerTotals] = None
        self.workersWrite = False
        # Stop as SIGTERM does, so that twistd exits with that signal.
        self.stopSelf: Callable[[], None] = lambda: os.kill(os.getpid(), signal.SIGTERM)

    def privilegedStartService(self) -> None:
        """
        Bind every endpoint, without accepting on it.
        """
        Service.privilegedStartService(self)
        for description in self.descriptions:
            self.ports.append(bindEndpoint(self.reactor, description, self.count))

    def _listening(self, slot: int) -> List[Tuple[int, int]]:
        """
        The listening socket of each endpoint for worker C{slot}: its own
        C{SO_REUSEPORT} socket, or the one all share.
        """
        listening = []
        for ports in self.ports:
            sock = ports[slot % len(ports)].socket
            listening.append((sock.fileno(), int(sock.family)))
        return listening

    def startService(self) -> None:
        """
        Start the workers.
        """
        Service.startService(self)
        for slot in range(self.count):
            self._spawn(slot)

    def _spawn(self, slot: int) -> None:
        generation = self._generations.get(slot, -1) + 1
        self._generations[slot] = generation
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        for end in (ours, theirs):
            # Fewer, larger reads and writes (the kernel caps these at
            # net.core.wmem_max and rmem_max).
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, LINK_BUFFER)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, LINK_BUFFER)
        childFDs: Dict[int, Any] = {0: "w", 1: "r", 2: "r", LINK_FD: theirs.fileno()}
        listen = []
        for index, (fd, family) in enumerate(self._listening(slot)):
            childFDs[FIRST_LISTEN_FD + index] = fd
            listen.append(f"{FIRST_LISTEN_FD + index}:{int(family)}")
        env = dict(os.environ)
        env["LINELOGGER_WORKER"] = f"{slot}:{self.count}:{generation}"
        env["LINELOGGER_LISTEN"] = ",".join(listen)
        env.pop("LISTEN_FDS", None)
        env.pop("LISTEN_PID", None)
        env.pop("NOTIFY_SOCKET", None)
        worker = WorkerProcess(self, slot, generation)
        try:
            self.reactor.spawnProcess(
                worker,
                sys.executable,
                [sys.executable, "-m", "logger_service.worker", *self.argv],
                env=env,
                childFDs=childFDs,
            )
        finally:
            theirs.close()
        self.workers[slot] = worker
        link = WorkerLink(self, worker)
        worker.link = link
        self.reactor.adoptStreamConnection(ours.fileno(), socket.AF_UNIX, Factory.forProtocol(lambda: link))
        ours.close()
        if link.transport is not None:
            link.transport.bufferSize = LINK_BUFFER  # type: ignore[attr-defined]
        self._links.append(link)
        if self._paused:
            link.transport.pauseProducing()  # type: ignore[union-attr]
        log.info("Started worker {slot} (pid {pid})", slot=slot + 1, pid=getattr(worker.transport, "pid", None))

    def workerReady(self, worker: WorkerProcess) -> None:
        """
        A worker has adopted the sockets and waits to accept on them.  Once
        every worker of the first set is ready, the sockets listen and each
        worker is told to accept; a worker that replaces another is told at
        once (its sockets listen already, connections queue on them).
        """
        if self._readyCalled:
            if worker.link is not None:
                worker.link.accept()
            return
        if len(self.workers) < self.count or not all(w.ready for w in self.workers.values()):
            return
        self._readyCalled = True
        log.info("All {count} workers listen", count=self.count)
        for ports in self.ports:
            for port in ports:
                try:
                    port.listen()
                except OSError as e:
                    # Another socket took the address since it was bound
                    # (one with SO_REUSEADDR may, until this one listens).
                    address = port.socket.getsockname()
                    log.critical("linelogger: cannot listen on {address}: {error}", address=address, error=e)
                    self.stopSelf()
                    return
        for each in self.workers.values():
            if each.link is not None:
                each.link.accept()
        self.onReady()

    def workerEnded(self, worker: WorkerProcess, reason: Failure) -> None:
        """
        A worker exited: replace it, unless stopping.
        """
        if self.workers.get(worker.slot) is worker:
            del self.workers[worker.slot]
        if self._stopping:
            return
        self.replaced += 1
        log.error(
            "Worker {slot} (pid {pid}) ended: {reason}; starting another",
            slot=worker.slot + 1,
            pid=getattr(worker.transport, "pid", None),
            reason=reason.getErrorMessage(),
        )
        lived = self.reactor.seconds() - worker.started
        delay = 0 if lived >= RESTART_DELAY else RESTART_DELAY
        self.reactor.callLater(delay, self._replace, worker.slot)

    def _replace(self, slot: int) -> None:
        if not self._stopping and slot not in self.workers:
            self._spawn(slot)

    def recordBatch(self, link: WorkerLink, seq: int, data: memoryview, records: int, acks: Counts) -> None:
        """
        Record a worker's batch; tell it once the batch is written.
        """
        key = next(self._keys)
        self._batches[key] = (link, seq)
        # A view, not a copy: the recorder only joins and measures it.
        self.recorder.recordFormatted(cast(bytes, data), records, {key: 1})

    def durable(self, counts: Counts) -> None:
        """
        These batches are written: tell each worker that sent one.
        """
        for key in counts:
            batch = self._batches.pop(key, None)
            if batch is not None:
                batch[0].written(batch[1])

    def pressure(self, paused: bool) -> None:
        """
        The output is behind: stop reading from the workers (whose own
        buffers then fill and pause their input), or start again.
        """
        self._paused = paused
        for link in self._links:
            if link.transport is not None:
                if paused:
                    link.transport.pauseProducing()  # type: ignore[attr-defined]
                else:
                    link.transport.resumeProducing()  # type: ignore[attr-defined]

    def reopenWorkers(self) -> None:
        """
        Have every worker reopen its output (SIGHUP), when they write it.
        """
        for worker in list(self.workers.values()):
            try:
                worker.transport.signalProcess("HUP")  # type: ignore[union-attr]
            except Exception:
                pass

    def linkLost(self, link: WorkerLink) -> None:
        """
        Forget a worker's socket: it sends no more, its last counts stay in
        the totals.
        """
        if link in self._links:
            self._links.remove(link)
        if self.totals is not None:
            self.totals.workerEnded((link.worker.slot, link.worker.generation))

    def workerCounters(self, worker: WorkerProcess, values: Dict[str, Any]) -> None:
        """
        C{worker} reported its counters: keep them for the totals of
        C{--metrics}.
        """
        if self.totals is not None:
            self.totals.update((worker.slot, worker.generation), values)

    def register(self, counters: Counters) -> None:
        """
        Register what C{counters} read of the one output this process writes.
        """
        counters.registerOutput(self.recorder)

    def stopService(self) -> Deferred[None]:
        """
        SIGTERM every worker, wait until each has drained and exited, then
        write the last records and close the output.
        """
        Service.stopService(self)
        self._stopping = True
        if self._paused:
            self.pressure(False)
        waits = []
        for worker in list(self.workers.values()):
            waits.append(worker.exited)
            try:
                worker.transport.signalProcess("TERM")  # type: ignore[union-attr]
            except Exception:
                pass
        stopped: Deferred[None] = Deferred()

        def killLate() -> None:
            for worker in list(self.workers.values()):
                log.warn("Worker {slot} did not stop: killing it", slot=worker.slot + 1)
                try:
                    worker.transport.signalProcess("KILL")  # type: ignore[union-attr]
                except Exception:
                    pass

        late = self.reactor.callLater(self.drainTimeout * 2 + 5, killLate)

        def allExited(_: object) -> Deferred[None]:
            if late.active():
                late.cancel()
            for ports in self.ports:
                for port in ports:
                    port.stopListening()
            self.ports = []
            return self.recorder.close(self.drainTimeout).addCallback(lambda _: None)

        DeferredList(waits).addCallback(allExited).addBoth(lambda _: stopped.callback(None))
        return stopped


class PoolNotifyService(NotifyService):
    """
    systemd notification for C{--workers}: C{READY=1} once every worker
    listens (not when the supervisor has bound the endpoints), then the
    status and watchdog pings as with one process.
    """

    def __init__(self, pool: WorkerPool, counters: Counters, clock: Any) -> None:
        NotifyService.__init__(self, counters, clock)
        self.pool = pool

    def startService(self) -> None:
        """
        Wait for the workers; then notify.
        """
        self.pool.onReady = lambda: NotifyService.startService(self)

    def status(self) -> str:
        """
        The supervisor's counts: C{2 workers, 3456 records written}.
        """
        if self.pool.workersWrite:
            # The workers write the output themselves (sharedfile.py).
            return f"{len(self.pool.workers)} workers, each writing the output"
        written = int(self.counters.read("recordsWritten") or 0)
        return f"{len(self.pool.workers)} workers, {written} records written"
