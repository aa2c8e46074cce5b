"""
A worker process of C{--workers N}: serve connections, and write or forward their records.

The supervisor (L{logger_service.workers}) starts each worker as
C{python -m logger_service.worker ARGS}, ARGS being its own C{linelogger}
options, with: on descriptor 3 a UNIX stream socket to the supervisor; the
listening sockets the supervisor bound, one per C{--port}, at the
descriptors C{LINELOGGER_LISTEN} names (C{FD:FAMILY,...}); and its place in
C{LINELOGGER_WORKER} (C{SLOT:COUNT:GENERATION}).

A worker adopts every listening socket at start, says it is ready, and
accepts connections on them once the supervisor says they listen (every
worker being ready).  It frames and formats their lines as a single process
would, and with C{--output FILE} (and
C{--worker-output direct}, the default) appends the records to the file
itself (L{logger_service.sharedfile}).  Otherwise it sends the records to the
supervisor in batches (L{logger_service.forwarding}); the supervisor writes them to
the one output and answers each batch once it is written (and synced, with
C{--fsync}), which is when the worker acknowledges the lines (C{--ack}) and
frees the memory they took.  SIGTERM drains the worker as it would drain a
single process; a worker whose supervisor is gone exits at once (the kernel
kills it when the supervisor dies: C{PR_SET_PDEATHSIG}).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import signal
import socket
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import Factory
from twisted.logger import FileLogObserver, Logger, eventAsText, globalLogBeginner

from .allocator import keepLargeBuffers
from .counters import Counters
from .forwarding import ForwardingRecorder, SupervisorLink
from .interfaces import IRecorder
from .workerwire import LINK_FD, READY

if TYPE_CHECKING:
    from .workertotals import CountersReporter

log = Logger()

CONN_ID_GENERATION = 1_000_000_000
"""Connection numbers of a replaced worker start this many strides later,
so that they never repeat those of the worker it replaces."""


class AdoptingReactor:
    """
    A reactor for endpoint parsers whose C{listen*} calls adopt the next
    listening socket the supervisor passed instead of binding: so that
    C{ssl:} and C{haproxy:} wrap the adopted socket just as they would wrap
    their own.
    """

    def __init__(self, reactor: Any, fd: int, family: int) -> None:
        self._reactor = reactor
        self._fd = fd
        self._family = family

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def _adopt(self, factory: Any) -> Any:
        port = self._reactor.adoptStreamPort(self._fd, self._family, factory)
        if self._family == socket.AF_UNIX:
            # Not ours to unlink when this worker stops: the supervisor's.
            port._bindPath = b"\0"
        return port

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        return self._adopt(factory)

    def listenUNIX(self, address: Any, factory: Any, backlog: int = 50, mode: int = 0o666, wantPID: int = 0) -> Any:
        return self._adopt(factory)

    def listenSSL(self, port: int, factory: Any, contextFactory: Any, backlog: int = 50, interface: str = "") -> Any:
        from twisted.protocols.tls import TLSMemoryBIOFactory

        return self._adopt(TLSMemoryBIOFactory(contextFactory, False, factory))

    def adoptStreamPort(self, fileDescriptor: int, addressFamily: int, factory: Any) -> Any:
        return self._adopt(factory)


def adoptable(description: str) -> str:
    """
    The description to parse in a worker: C{systemd:...} (also inside
    C{haproxy:}) becomes C{tcp:0}, whose listening is adopted anyway, since
    the systemd descriptors are the supervisor's.
    """
    head, found, _ = description.partition("systemd:")
    return head + "tcp:0" if found else description


def setParentDeathSignal(signum: int = signal.SIGKILL) -> None:
    """
    Have the kernel send C{signum} to this process when its parent dies
    (Linux C{PR_SET_PDEATHSIG}); elsewhere, the lost supervisor socket
    does it.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signum, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def workerPlace(environ: Dict[str, str]) -> Tuple[int, int, int]:
    """
    C{LINELOGGER_WORKER}: this worker's slot, the number of workers, and
    how many workers took this slot before.
    """
    slot, count, generation = (int(part) for part in environ["LINELOGGER_WORKER"].split(":"))
    return slot, count, generation


def listenDescriptors(environ: Dict[str, str]) -> List[Tuple[int, int]]:
    """
    C{LINELOGGER_LISTEN}: the listening sockets, as (descriptor, family).
    """
    value = environ.get("LINELOGGER_LISTEN", "")
    return [(int(fd), int(family)) for fd, family in (item.split(":") for item in value.split(",") if item)]


class WorkerSummary(Service):
    """
    Say, when the worker stops, how many connections it served and refused.
    """

    def __init__(self, counters: Counters) -> None:
        self.counters = counters

    def stopService(self) -> None:
        """
        Log the counters (the listeners, stopped first, accept no more).
        """
        Service.stopService(self)
        refused = self.counters.refused
        log.info(
            "Stopping: {accepted} connections served, {total} refused ({reasons})",
            accepted=self.counters.connectionsTotal,
            total=sum(refused.values()),
            reasons=", ".join(f"{reason} {count}" for reason, count in sorted(refused.items())) or "none",
        )


def makeWorkerService(
    argv: Sequence[str], reactor: Any, environ: Dict[str, str]
) -> Tuple[MultiService, IRecorder, Optional[CountersReporter]]:
    """
    Build a worker's service from the supervisor's C{linelogger} options.

    @return: the service, its recorder, and with C{--metrics} what reports
        its counters to the supervisor (else C{None}).
    """
    from .assembly import chatParts, connectionParts, workerRecorder
    from .drain import HubService
    from .optionvalues import withBacklog
    from .tap import Options

    options = Options()
    options.parseOptions(list(argv))
    slot, count, generation = workerPlace(environ)
    # The worker writes --output FILE itself (--worker-output direct), or
    # sends its records to the supervisor.
    recorder = workerRecorder(options, reactor) or ForwardingRecorder(
        reactor, format=options["format"], bufferBytes=options["buffer"], acks=options["ack"]
    )
    # Limits, descriptors included, are this worker's own (see README).
    hub, settings, descriptors = connectionParts(options, recorder, reactor, len(options["port"]))
    # Connection numbers unique across the workers: worker SLOT numbers
    # SLOT+1, SLOT+1+COUNT, ...
    hub.connectionIds(itertools.count(slot + 1 + count * CONN_ID_GENERATION * generation, count))
    # With --chat (and so --redis), each worker is a node of the Redis
    # cluster: rooms span the workers as they span machines.
    factory, chat, broker = chatParts(options, hub, settings, reactor)
    reporter = None
    if options["metrics"]:
        # The supervisor serves the metrics: this worker reports its counters.
        from .workertotals import CountersReporter

        if chat is not None:
            chat.register(hub.counters)
        reporter = CountersReporter(hub.counters, reactor)
    top = MultiService()
    # First: it stops last, once the listeners accept no more.
    WorkerSummary(hub.counters).setServiceParent(top)
    if broker is not None:
        # First: it stops last, after the listeners and the drain.
        broker.setServiceParent(top)
    HubService(
        hub, reactor, drainTimeout=options["drain-timeout"], connectionLog=factory.connectionLogger
    ).setServiceParent(top)
    sockets = listenDescriptors(environ)
    ports: List[str] = options["port"]
    if len(sockets) != len(ports):
        raise SystemExit(f"linelogger worker: {len(sockets)} listening sockets for {len(ports)} --port endpoints")
    from .rootservice import QueueAcceptingListener

    for description, (fd, family) in zip(ports, sockets):
        adopting = AdoptingReactor(reactor, fd, family)
        endpoint = endpoints.serverFromString(adopting, withBacklog(adoptable(description), descriptors.backlog))
        # Stopped first: it accepts what the kernel queued for this worker
        # before closing its copy of the socket, and the drain reads it.
        # (The supervisor keeps its copy open until every worker exited.)
        # Paused until the supervisor says the sockets listen (LISTEN).
        QueueAcceptingListener(endpoint, factory, descriptors.backlog, paused=True).setServiceParent(top)
    return top, recorder, reporter


def main(argv: Sequence[str], environ: Optional[Dict[str, str]] = None) -> None:
    """
    Run a worker until SIGTERM (drain, then exit) or until the supervisor
    is gone (exit at once).
    """
    if environ is None:
        environ = dict(os.environ)
    setParentDeathSignal()
    if os.getppid() == 1:
        raise SystemExit("linelogger worker: the supervisor is gone")
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    keepLargeBuffers()
    from twisted.internet import reactor as _reactor

    reactor: Any = _reactor
    globalLogBeginner.beginLoggingTo(
        [
            FileLogObserver(
                sys.stderr, lambda event: (eventAsText(event, includeTimestamp=False, includeSystem=False) or "") + "\n"
            )
        ],
        redirectStandardIO=False,
    )
    try:
        service, recorder, reporter = makeWorkerService(argv, reactor, environ)
    except SystemExit:
        raise
    except Exception as e:
        raise SystemExit(f"linelogger worker: {e}") from None

    def supervisorLost() -> None:
        if reactor.running:
            log.error("The supervisor is gone: exiting")
            os._exit(1)

    from .rootservice import QueueAcceptingListener

    listeners = [child for child in service if isinstance(child, QueueAcceptingListener)]

    def accept() -> None:
        # Every worker is ready and the sockets listen: accept on them.
        for listener in listeners:
            listener.resume()

    forwarding = recorder if isinstance(recorder, ForwardingRecorder) else None
    link = SupervisorLink(
        forwarding, supervisorLost, reporter.counted if reporter is not None else lambda: None, accept
    )
    if forwarding is not None:
        forwarding.link = link
    # SIGHUP (passed on by the supervisor): reopen the output, if this worker writes it.
    signal.signal(signal.SIGHUP, lambda signum, frame: reactor.callFromThread(recorder.reopen))
    if reporter is not None:
        reporter.link = link
    linkFactory = Factory.forProtocol(lambda: link)
    reactor.adoptStreamConnection(LINK_FD, socket.AF_UNIX, linkFactory)
    os.close(LINK_FD)

    def start() -> None:
        try:
            service.privilegedStartService()
            service.startService()
        except Exception as e:
            sys.stderr.write(f"linelogger worker: cannot listen: {e}\n")
            sys.stderr.flush()
            os._exit(1)
        link.sendMessage([READY])
        if reporter is not None:
            reporter.start()

    def stop() -> Deferred[None]:
        stopped = succeed(None).addCallback(lambda _: service.stopService())
        if reporter is not None:
            # The last report, once the drain has counted every line.
            stopped.addCallback(lambda _: reporter.stop())
        return stopped

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", stop)
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
