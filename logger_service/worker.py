"""
A worker process of C{--workers N}: serve connections, forward records.

The supervisor (L{logger_service.workers}) starts each worker as
C{python -m logger_service.worker ARGS}, ARGS being its own C{linelogger}
options, with: on descriptor 3 a UNIX stream socket to the supervisor; the
listening sockets the supervisor bound, one per C{--port}, at the
descriptors C{LINELOGGER_LISTEN} names (C{FD:FAMILY,...}); and its place in
C{LINELOGGER_WORKER} (C{SLOT:COUNT:GENERATION}).

A worker accepts connections on every listening socket, frames and formats
their lines as a single process would, and sends the records to the
supervisor in batches (L{ForwardingRecorder}); the supervisor writes them to
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
import struct
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from twisted.application.service import MultiService, Service
from twisted.internet import endpoints
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import FileLogObserver, Logger, eventAsText, globalLogBeginner
from zope.interface import implementer

from .interfaces import IRecorder, IRecordListener, NoListener
from .records import FORMATTERS, Formatter, RecordContext, TimestampCache

log = Logger()

Counts = Dict[int, int]

LINK_FD = 3
"""The descriptor of the worker's socket to the supervisor."""

MAX_MESSAGE = 1 << 30
"""The largest message between a worker and the supervisor."""

BATCH = b"B"
"""Worker to supervisor: C{B}, sequence, record count, ack count, (conn,
lines) pairs, then the formatted records."""
BATCH_HEADER = struct.Struct("!QII")
ACK_PAIR = struct.Struct("!QI")
READY = b"R"
"""Worker to supervisor: every listening socket is adopted."""
DONE = b"A"
"""Supervisor to worker: C{A} and sequence numbers of batches now written."""
SEQ = struct.Struct("!Q")

CONN_ID_GENERATION = 1_000_000_000
"""Connection numbers of a replaced worker start this many strides later,
so that they never repeat those of the worker it replaces."""


LENGTH = struct.Struct("!I")


def encodeBatch(seq: int, data: bytes, records: int, acks: Counts) -> List[bytes]:
    """
    Encode one batch of formatted records for the supervisor, as the parts
    of one message (see L{MessageProtocol.sendMessage}).
    """
    parts = [BATCH, BATCH_HEADER.pack(seq, records, len(acks))]
    parts.append(b"".join([ACK_PAIR.pack(conn, count) for conn, count in acks.items()]))
    parts.append(data)
    return parts


class MessageProtocol(Protocol):
    """
    Length-prefixed messages, as L{twisted.protocols.basic.Int32StringReceiver}
    but copying each byte a bounded number of times however large the
    message (that one joins its buffer again on every read), and sending a
    message from parts without joining them.
    """

    MAX_LENGTH = MAX_MESSAGE

    def __init__(self) -> None:
        self._chunks: List[bytes] = []
        self._have = 0
        self._need = LENGTH.size
        self._header = True

    def sendMessage(self, parts: Sequence[bytes]) -> None:
        """
        Send one message made of C{parts}.
        """
        assert self.transport is not None
        self.transport.writeSequence([LENGTH.pack(sum(len(p) for p in parts)), *parts])

    def dataReceived(self, data: bytes) -> None:
        """
        Gather messages; hand each whole one to L{messageReceived}.
        """
        self._chunks.append(data)
        self._have += len(data)
        while self._have >= self._need:
            buffer = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
            if self._header:
                length = LENGTH.unpack_from(buffer)[0]
                if length > self.MAX_LENGTH:
                    assert self.transport is not None
                    self.transport.loseConnection()
                    return
                rest = buffer[LENGTH.size :]
                self._header = False
                self._need = length
            else:
                message = buffer[: self._need] if len(buffer) > self._need else buffer
                rest = buffer[self._need :]
                self._header = True
                self._need = LENGTH.size
                self.messageReceived(message)
            self._chunks = [rest] if rest else []
            self._have = len(rest)

    def messageReceived(self, message: bytes) -> None:
        """
        A whole message arrived.
        """


def decodeBatch(message: bytes) -> Tuple[int, int, Counts, memoryview]:
    """
    Decode a message made by L{encodeBatch} (its C{B} included).

    @return: sequence number, record count, acks, and the records (a view
        into C{message}, not a copy).
    """
    seq, records, count = BATCH_HEADER.unpack_from(message, 1)
    offset = 1 + BATCH_HEADER.size
    acks: Counts = {}
    for _ in range(count):
        conn, lines = ACK_PAIR.unpack_from(message, offset)
        acks[conn] = lines
        offset += ACK_PAIR.size
    return seq, records, acks, memoryview(message)[offset:]


class SupervisorLink(MessageProtocol):
    """
    The worker's end of its socket to the supervisor.
    """

    def __init__(self, recorder: ForwardingRecorder, lost: Callable[[], None]) -> None:
        MessageProtocol.__init__(self)
        self.recorder = recorder
        self.lost = lost

    def messageReceived(self, message: bytes) -> None:
        """
        Batches are written: tell the recorder.
        """
        if message[:1] == DONE:
            for offset in range(1, len(message), SEQ.size):
                self.recorder.done(SEQ.unpack_from(message, offset)[0])

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
    Say, when the worker stops, how many connections it served and refused
    (its counters: C{--metrics} does not see workers).
    """

    def __init__(self, hub: Any) -> None:
        self.hub = hub

    def stopService(self) -> None:
        """
        Log the counters (the listeners, stopped first, accept no more).
        """
        Service.stopService(self)
        refused = self.hub.refused
        log.info(
            "Stopping: {accepted} connections served, {total} refused ({reasons})",
            accepted=self.hub.connectionsTotal,
            total=sum(refused.values()),
            reasons=", ".join(f"{reason} {count}" for reason, count in sorted(refused.items())) or "none",
        )


def makeWorkerService(argv: Sequence[str], reactor: Any, environ: Dict[str, str]) -> Tuple[MultiService, Any]:
    """
    Build a worker's service from the supervisor's C{linelogger} options.

    @return: the service, and the deferred that fires once every listening
        socket is adopted.
    """
    from .drain import HubService
    from .tap import Options, chatParts, connectionParts, withBacklog

    options = Options()
    options.parseOptions(list(argv))
    slot, count, generation = workerPlace(environ)
    from .sharedfile import workerRecorder

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
    top = MultiService()
    # First: it stops last, once the listeners accept no more.
    WorkerSummary(hub).setServiceParent(top)
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
    from twisted.application.internet import StreamServerEndpointService

    for description, (fd, family) in zip(ports, sockets):
        adopting = AdoptingReactor(reactor, fd, family)
        endpoint = endpoints.serverFromString(adopting, withBacklog(adoptable(description), descriptors.backlog))
        service = StreamServerEndpointService(endpoint, factory)
        service._raiseSynchronously = True
        service.setServiceParent(top)
    return top, recorder


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
        service, recorder = makeWorkerService(argv, reactor, environ)
    except SystemExit:
        raise
    except Exception as e:
        raise SystemExit(f"linelogger worker: {e}") from None

    def supervisorLost() -> None:
        if reactor.running:
            log.error("The supervisor is gone: exiting")
            os._exit(1)

    link = SupervisorLink(recorder, supervisorLost)
    if isinstance(recorder, ForwardingRecorder):
        recorder.link = link
    # SIGHUP (passed on by the supervisor): reopen the output, if this worker writes it.
    signal.signal(signal.SIGHUP, lambda signum, frame: reactor.callFromThread(recorder.reopen))
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

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger(
        "before", "shutdown", lambda: succeed(None).addCallback(lambda _: service.stopService())
    )
    reactor.run()


if __name__ == "__main__":
    main(sys.argv[1:])
