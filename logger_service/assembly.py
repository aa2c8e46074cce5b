"""
The parts of the service, built from parsed options: the output, the hub
and the protocol factory, the chat room, and the supervisor of C{--workers}.

L{logger_service.tap.makeService} puts them together; a worker process
(L{logger_service.worker}) builds its own hub and factory with the same
L{connectionParts} and L{chatParts}.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence, Tuple

from twisted.application.service import IService
from twisted.logger import Logger
from twisted.python import usage

from . import fdlimit
from .counters import Counters
from .factory import LineLoggerFactory
from .filesink import FileSink
from .hub import Hub
from .limits import ConnectionLimits
from .optionvalues import withBacklog
from .recorder import Recorder
from .rootservice import LineLoggerService
from .sinks import IRecordSink, StreamSink
from .writer import ThreadWriter

if TYPE_CHECKING:
    from .chatsession import Chat
    from .tail import Tail

# Logged under the name of the plugin's module, as all start-up messages are.
log = Logger(namespace="logger_service.tap")

Options = usage.Options
"""The parsed options (L{logger_service.tap.Options})."""


def openSink(options: Options) -> IRecordSink:
    """
    Open the sink that C{--output} names.
    """
    output = options["output"]
    if output == "-":
        return StreamSink(sys.stdout.buffer)
    if options.get("workers", 1) > 1 and options.get("worker-output") == "direct":
        from .sharedfile import WorkersWriteSink

        return WorkersWriteSink(output)
    return FileSink(output, **fileSettings(options))


def fileSettings(options: Options) -> Dict[str, Any]:
    """
    How the output file is rotated and synced (C{--rotate-size},
    C{--rotate-keep}, C{--fsync}), as a file sink takes it.
    """
    return {
        "rotateSize": options["rotate-size"] or None,
        "rotateKeep": options["rotate-keep"] or None,
        "durable": options["fsync"] is not None,
    }


def recorderFor(sink: IRecordSink, options: Options, reactor: Any) -> Recorder:
    """
    A recorder writing records to C{sink} as the options say (C{--format},
    C{--buffer}, C{--fsync}, C{--ack}), in a thread.
    """
    return Recorder(
        sink,
        reactor,
        format=options["format"],
        writer=ThreadWriter(reactor),
        bufferBytes=options["buffer"],
        fsync=options["fsync"],
        acks=options["ack"],
    )


def workerRecorder(options: Options, reactor: Any) -> Optional[Recorder]:
    """
    A worker's recorder, writing to C{--output FILE} itself, if the workers
    write the output (C{--worker-output direct}); else C{None}.
    """
    if options["output"] == "-" or options.get("worker-output", "direct") != "direct":
        return None
    from .sharedfile import SharedFileSink

    return recorderFor(SharedFileSink(options["output"], **fileSettings(options)), options, reactor)


def openOutput(options: Options, reactor: Any) -> Tuple[Recorder, Optional[Tail], IRecordSink]:
    """
    The recorder writing the output C{--output} names, with
    C{--web-token-file} the live tail that sees what it writes, and the
    output's own sink.
    """
    try:
        output = sink = openSink(options)
    except OSError as e:
        raise SystemExit(f"linelogger: cannot open --output {options['output']}: {e.strerror}") from None
    tail = None
    if options.get("web-token") is not None:
        # The tail sees the very bytes the output gets.
        from .tail import Tail, TeeSink

        tail = Tail(reactor, reactor.callFromThread)
        sink = TeeSink(sink, tail)
    return recorderFor(sink, options, reactor), tail, output


def connectionParts(options: Options, recorder: Any, reactor: Any, listeners: int) -> Tuple[Hub, Dict[str, Any], Any]:
    """
    What serving connections takes, from the options: the hub (with the
    connection limits fitted to this process's open-file limit, see
    L{logger_service.fdlimit}) and the settings of the protocol factory.

    @param listeners: how many listening sockets this process holds.
    @return: the hub, the factory settings and the descriptor plan.
    """
    try:
        descriptors = fdlimit.fit(options["max-connections"], options["backlog"], listeners)
    except ValueError as e:
        raise SystemExit(f"linelogger: {e}") from None
    if descriptors.message is not None:
        log.warn("{message}", message=descriptors.message)
    limits = ConnectionLimits(descriptors.maxConnections, options["max-per-ip"], options["allow"])
    hub = Hub(recorder, limits, clock=reactor)
    greeting = options["greeting"]
    settings: Dict[str, Any] = dict(
        maxLineLength=options["max-line-length"],
        longLines=options["long-lines"],
        greeting=greeting.encode("utf-8") if greeting is not None else None,
        idleTimeout=options["idle-timeout"],
        lineTimeout=options["line-timeout"],
        acceptsPerTurn=descriptors.acceptsPerTurn,
        maxRate=options["max-rate"],
        acks=options["ack"],
        clock=reactor,
        framing=options["framing"],
        logConnections=not options["no-connection-log"],
        connectionLogRate=options["connection-log-rate"],
    )
    return hub, settings, descriptors


def chatParts(
    options: Options, hub: Hub, settings: Dict[str, Any], reactor: Any
) -> Tuple[LineLoggerFactory, Optional[Chat], Optional[IService]]:
    """
    The protocol factory for the options: the logging one, or with
    C{--chat} the chat room's (sharing its rooms through Redis with
    C{--redis}).

    @return: the factory, the chat or C{None}, and the Redis
        broker's service (to start first and stop last) or C{None}.
    """
    if not options["chat"]:
        return LineLoggerFactory(hub, **settings), None, None
    # Imported only in chat mode, like metrics: memory every process pays.
    from .chatsession import Chat

    broker = None
    if options["redis"]:
        from .redis.broker import RedisBroker

        broker = RedisBroker(reactor, options["redis"], options["redis-prefix"], options["history"])
    chat = Chat(
        reactor,
        history=options["history"],
        floodRate=options["flood-rate"],
        floodBurst=options["flood-burst"],
        sendq=options["sendq"],
        broadcast=broker,
        state=broker.state if broker is not None else None,
        counters=hub.counters,
    )
    if broker is not None:
        broker.attach(chat)
    return LineLoggerFactory(hub, sessions=chat.session, **settings), chat, broker


def workersService(
    options: Options, arguments: Sequence[str], recorder: Recorder, output: IRecordSink, reactor: Any
) -> LineLoggerService:
    """
    The service of C{--workers N} (N > 1): this process binds every
    endpoint and writes the records that N worker processes send (see
    L{logger_service.workers}); with C{--metrics}, it serves the totals of
    their counters (L{logger_service.workertotals}).
    """
    from .sharedfile import WorkersWriteSink
    from .workers import PoolNotifyService, WorkerPool

    top = LineLoggerService(recorder, reactor, daemon=options.get("daemon", False))
    descriptions = [withBacklog(d, options["backlog"]) for d in options["port"]]
    pool = WorkerPool(
        recorder,
        reactor,
        descriptions,
        options["workers"],
        # The same file as here, though twistd's --rundir changes directory before the workers start.
        list(arguments) + (["--output", os.path.abspath(options["output"])] if options["output"] != "-" else []),
        drainTimeout=options["drain-timeout"],
        daemon=options.get("daemon", False),
    )
    pool.setServiceParent(top)
    if isinstance(output, WorkersWriteSink):
        # The workers write the output (sharedfile.py): SIGHUP reopens theirs.
        output.reopenWorkers = lambda: reactor.callFromThread(pool.reopenWorkers)
        pool.workersWrite = True
    counters = Counters()
    pool.register(counters)
    if options["metrics"]:
        # Imported only when asked for, as in one process.
        from .workertotals import WorkerTotals, totalsService

        pool.totals = WorkerTotals(counters, workersWrite=pool.workersWrite)
        # It stops once the pool has: metrics stay up while the workers drain.
        metrics = totalsService(options["metrics"], pool.totals, reactor)
        metrics.setServiceParent(top)
        top.stopsLast.append(metrics)
    PoolNotifyService(pool, counters, reactor).setServiceParent(top)
    return top
