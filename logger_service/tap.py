"""
C{twistd linelogger}: command-line options and the service they build.
"""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING, Any, List, Optional

from twisted.application import strports
from twisted.application.service import MultiService
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage

from .framing import LongLines
from .hub import Hub, HubService
from .limits import ConnectionLimits, parseNetwork
from .protocol import LineLoggerFactory
from .recorder import Recorder
from .records import FORMATTERS
from .sinks import FileSink, IRecordSink, StreamSink
from .syslogframing import FRAMERS
from .systemd import NotifyService
from .writer import ThreadWriter

DEFAULT_PORT = "tcp:1234"

if TYPE_CHECKING:
    from .chatservice import ChatService

log = Logger()


def portDescription(value: str) -> str:
    """
    Turn a C{--port} value into an endpoint description: C{N} means C{tcp:N}.
    """
    return f"tcp:{value}" if value.isdigit() else value


BACKLOG_TYPES = frozenset({"tcp", "tcp6", "unix", "ssl"})
"""Endpoint types that take a C{backlog} argument."""


def withBacklog(description: str, backlog: int) -> str:
    """
    Add C{backlog=N} to a listening endpoint description that takes one and
    does not name its own (also inside C{haproxy:}).
    """
    kind, _, rest = description.partition(":")
    if kind == "haproxy":
        kind = rest.partition(":")[0]
    if kind in BACKLOG_TYPES and "backlog=" not in description:
        return f"{description}:backlog={backlog}"
    return description


def wholeNumber(option: str, value: object, minimum: int = 1) -> int:
    """
    Parse the value of C{--option} as a whole number of at least C{minimum}.

    @raise usage.UsageError: naming the option, if it is not one.
    """
    try:
        number = int(str(value))
    except ValueError:
        number = minimum - 1
    if number < minimum:
        raise usage.UsageError(f"--{option} takes a whole number of at least {minimum}, not {value!r}")
    return number


def fsyncSetting(value: str) -> Optional[float]:
    """
    Parse C{--fsync}: C{never} (C{None}), C{always} (0), or milliseconds
    between syncs (in seconds).
    """
    if value == "never":
        return None
    if value == "always":
        return 0.0
    return positiveNumber("fsync", value, "never, always, or a number of milliseconds") / 1000


def positiveNumber(option: str, value: object, expected: str = "a number greater than 0") -> float:
    """
    Parse the value of C{--option} as a number greater than 0.

    @raise usage.UsageError: naming the option, if it is not one.
    """
    try:
        number = float(str(value))
    except ValueError:
        number = 0.0
    if not 0 < number < float("inf"):
        raise usage.UsageError(f"--{option} takes {expected}, not {value!r}")
    return number


def nonNegativeNumber(option: str, value: object) -> float:
    """
    Parse the value of C{--option} as a number of at least 0 (0: off).
    """
    return 0.0 if str(value).strip() in ("0", "0.0") else positiveNumber(option, value, "0 or a positive number")


class Options(usage.Options):
    """
    The options of C{twistd linelogger}.
    """

    synopsis = "[options]"
    longdesc = (
        "Listen for clients that send newline-delimited text and record every "
        "line, with the time it arrived and the peer it came from."
    )

    optParameters = [
        ["output", "o", "-", "Where records go: a file (appended to, created if missing), or - for standard output."],
        ["format", "f", "text", "Record format: text or json."],
        ["greeting", None, None, "Text sent to each client when it connects, followed by CRLF."],
        ["max-line-length", None, 65536, "The longest line recorded as one record, in bytes."],
        [
            "backlog",
            None,
            1024,
            "Connections the kernel may queue before they are accepted, for endpoints that take it "
            "(tcp, tcp6, unix, ssl) and do not say backlog= themselves; Linux caps it at net.core.somaxconn.",
        ],
        ["long-lines", None, "split", "What to do with a longer line: split, truncate or close."],
        [
            "framing",
            None,
            "lf",
            "How records end: lf (a LF), nul (a NUL or a LF, as Python's SysLogHandler sends), "
            "octet (RFC 6587 octet counting: LEN SP MSG), or auto (decide per connection from its first byte).",
        ],
        ["max-connections", None, 10000, "The most connections open at once; 0 for no limit."],
        ["max-per-ip", None, 0, "The most connections open at once from one IP address; 0 for no limit."],
        ["idle-timeout", None, "0", "Close a connection that sends nothing for this many seconds; 0 for never."],
        ["max-rate", None, "0", "Lines per second one connection may send before reading from it pauses; 0: any."],
        [
            "connection-log-rate",
            None,
            "20",
            "Connections per second logged one by one; beyond that they are counted and summed up in one "
            "log event a second later.  0: log every connection.",
        ],
        ["buffer", None, 8 * 1024 * 1024, "Bytes of records that may wait for the output before input pauses."],
        ["fsync", None, "never", "fsync the output: never, always, or at most every N milliseconds."],
        ["rotate-size", None, 0, "Rotate --output FILE when it reaches this many bytes; 0 for never."],
        ["rotate-keep", None, 0, "How many rotated files (FILE.1, FILE.2...) to keep; 0 for all."],
        [
            "metrics",
            None,
            None,
            "Serve Prometheus metrics at /metrics on this endpoint, e.g. tcp:9100:interface=127.0.0.1; default: off.",
        ],
        [
            "drain-timeout",
            None,
            "30",
            "At shutdown, the longest wait for input that clients sent before the signal to be read.",
        ],
        ["history", None, 20, "Chat: how many messages a room replays to someone joining it."],
        ["flood-burst", None, 5, "Chat: lines a client may send at once before flood control delays it."],
        ["flood-rate", None, "2", "Chat: lines per second a client may send in the long run."],
        ["sendq", None, 262144, "Chat: bytes that may wait for a client that is not reading before it is dropped."],
        [
            "workers",
            None,
            "1",
            "Worker processes that accept and serve connections (auto: one per usable core); "
            "this process then binds the endpoints and writes the output.",
        ],
    ]

    optFlags = [
        ["chat", None, "Chat mode: relay each line to the others in the sender's room (and record it)."],
        ["ack", None, "Tell each client 'ok N' once N of its lines are written (and synced, with --fsync)."],
        [
            "no-connection-log",
            None,
            "Do not log connections and disconnections at all, one by one or summed up: through twistd's log "
            "they cost 50-100 us each, a large share of the time when clients connect briefly by the thousand.",
        ],
    ]

    compData = usage.Completions(
        optActions={
            "output": usage.CompleteFiles(),
            "format": usage.CompleteList(sorted(FORMATTERS)),
            "long-lines": usage.CompleteList([p.value for p in LongLines]),
            "framing": usage.CompleteList(list(FRAMERS)),
        }
    )

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self["port"] = []
        self["allow"] = []
        self.arguments: List[str] = []

    def parseOptions(self, options: Optional[List[str]] = None) -> None:
        """
        Parse, keeping the arguments for the worker processes of C{--workers}.
        """
        self.arguments = list(sys.argv[1:] if options is None else options)
        usage.Options.parseOptions(self, options)

    def opt_allow(self, value: str) -> None:
        """
        Accept connections only from this network (CIDR, e.g. 10.0.0.0/8,
        or one address).  Repeat for several.  Default: from everywhere.
        UNIX-socket clients are always accepted.
        """
        try:
            self["allow"].append(parseNetwork(value))
        except ValueError:
            raise usage.UsageError(f"--allow takes a network such as 10.0.0.0/8 or ::1, not {value!r}") from None

    def opt_port(self, value: str) -> None:
        """
        An endpoint to listen on, e.g. 1234, tcp:1234:interface=127.0.0.1,
        tcp6:1234, unix:/run/linelogger.sock.  Repeat to listen on several.
        Default: tcp:1234.
        """
        self["port"].append(portDescription(value))

    opt_p = opt_port

    def postOptions(self) -> None:
        """
        Check the options as a whole.
        """
        if not self["port"]:
            self["port"] = [DEFAULT_PORT]
        for name in ("max-line-length", "flood-burst", "sendq", "backlog", "buffer"):
            self[name] = wholeNumber(name, self[name])
        for name in ("history", "max-connections", "max-per-ip", "rotate-size", "rotate-keep"):
            self[name] = wholeNumber(name, self[name], minimum=0)
        self["flood-rate"] = positiveNumber("flood-rate", self["flood-rate"])
        self["drain-timeout"] = positiveNumber("drain-timeout", self["drain-timeout"])
        for name in ("idle-timeout", "max-rate", "connection-log-rate"):
            self[name] = nonNegativeNumber(name, self[name])
        self["fsync"] = fsyncSetting(self["fsync"])
        try:
            # Imported only for more than one worker: memory every process pays.
            self["workers"] = 1 if str(self["workers"]) == "1" else workerCount(str(self["workers"]))
        except ValueError:
            raise usage.UsageError(
                f"--workers takes auto or a whole number of at least 1, not {self['workers']!r}"
            ) from None
        if self["workers"] > 1 and self["chat"]:
            raise usage.UsageError("--chat with --workers above 1 needs a broker: a room's members would be split")
        if self["workers"] > 1 and self["metrics"]:
            raise usage.UsageError("--metrics does not work with --workers above 1 yet")
        if self["output"] == "-" and (self["rotate-size"] or self["rotate-keep"]):
            raise usage.UsageError("--rotate-size and --rotate-keep need --output FILE")
        if self["framing"] not in FRAMERS:
            raise usage.UsageError(f"--framing must be one of: {', '.join(FRAMERS)}")
        if self["format"] not in FORMATTERS:
            raise usage.UsageError(f"--format must be one of: {', '.join(sorted(FORMATTERS))}")
        try:
            self["long-lines"] = LongLines(self["long-lines"])
        except ValueError:
            raise usage.UsageError("--long-lines must be one of: split, truncate, close") from None
        parent = getattr(self, "parent", None)
        self["daemon"] = parent is not None and not parent.get("nodaemon")
        if self["output"] == "-" and self["daemon"]:
            raise usage.UsageError(
                "--output - (standard output) would throw every line away once "
                "twistd runs as a daemon: give --output FILE, or run with -n"
            )


def openSink(options: Options) -> IRecordSink:
    """
    Open the sink that C{--output} names.
    """
    output = options["output"]
    if output == "-":
        return StreamSink(sys.stdout.buffer)
    return FileSink(
        output,
        rotateSize=options["rotate-size"] or None,
        rotateKeep=options["rotate-keep"] or None,
        durable=options["fsync"] is not None,
    )


class LineLoggerService(MultiService):
    """
    The whole service: the hub, then one listener per C{--port}.

    A listener that cannot listen stops twistd with a non-zero exit status
    and a one-line message instead of a traceback.  (A daemonizing twistd
    reports the error itself, through its start-up pipe, so there the
    error is passed on unchanged.)

    SIGHUP makes the recorder reopen its output (after C{logrotate} moved
    it), instead of killing the process as it would by default.

    @ivar daemon: whether twistd is daemonizing.
    @ivar recorder: the recorder whose output SIGHUP reopens.
    """

    def __init__(self, recorder: Recorder, reactor: Any, daemon: bool = False) -> None:
        MultiService.__init__(self)
        self.recorder = recorder
        self.reactor = reactor
        self.daemon = daemon
        self._previousHandler: Any = None

    def startService(self) -> None:
        """
        Start, and handle SIGHUP.
        """
        MultiService.startService(self)
        self._previousHandler = signal.signal(signal.SIGHUP, self._hangup)

    def _hangup(self, signum: int, frame: object) -> None:
        self.reactor.callFromThread(self.recorder.reopen)

    def stopService(self) -> Any:
        """
        Stop, and give SIGHUP back.
        """
        if self._previousHandler is not None:
            signal.signal(signal.SIGHUP, self._previousHandler)
            self._previousHandler = None
        return MultiService.stopService(self)

    def privilegedStartService(self) -> None:
        """
        Start listening; exit if any endpoint cannot be listened on.
        """
        try:
            MultiService.privilegedStartService(self)
        except CannotListenError as e:
            if self.daemon:
                log.critical("linelogger: {error}", error=e)
                raise
            raise SystemExit(f"linelogger: {e}") from None


def makeService(options: Options, reactor: Optional[Any] = None) -> LineLoggerService:
    """
    Build the linelogger service from parsed options.

    The hub service comes first, so that at shutdown the listeners stop
    before the hub drains the open connections.

    @param reactor: the reactor to listen with and time records by; the
        global reactor if C{None}.
    """
    if reactor is None:
        from twisted.internet import reactor as _reactor

        reactor = _reactor
    assert reactor is not None
    try:
        sink = openSink(options)
    except OSError as e:
        raise SystemExit(f"linelogger: cannot open --output {options['output']}: {e.strerror}") from None
    recorder = Recorder(
        sink,
        reactor,
        format=options["format"],
        writer=ThreadWriter(reactor),  # type: ignore[arg-type]
        bufferBytes=options["buffer"],
        fsync=options["fsync"],
        acks=options["ack"],
    )
    limits = ConnectionLimits(options["max-connections"], options["max-per-ip"], options["allow"])
    hub = Hub(recorder, limits)
    greeting = options["greeting"]
    settings = dict(
        maxLineLength=options["max-line-length"],
        longLines=options["long-lines"],
        greeting=greeting.encode("utf-8") if greeting is not None else None,
        idleTimeout=options["idle-timeout"],
        maxRate=options["max-rate"],
        acks=options["ack"],
        clock=reactor,
        framing=options["framing"],
        connectionLog=not options["no-connection-log"],
        connectionLogRate=options["connection-log-rate"],
    )
    if options.get("workers", 1) > 1:
        return workersService(options, recorder, reactor)
    factory: LineLoggerFactory
    chat: Optional[ChatService] = None
    if options["chat"]:
        # Imported only in chat mode, like metrics: memory every process pays.
        from .chatservice import ChatFactory, ChatService

        chat = ChatService(
            reactor,
            history=options["history"],
            floodRate=options["flood-rate"],
            floodBurst=options["flood-burst"],
            sendq=options["sendq"],
        )
        factory = ChatFactory(hub, chat, **settings)
    else:
        factory = LineLoggerFactory(hub, **settings)
    top = LineLoggerService(recorder, reactor, daemon=options.get("daemon", False))
    HubService(
        hub, reactor, drainTimeout=options["drain-timeout"], connectionLog=factory.connectionLogger
    ).setServiceParent(top)
    if options["metrics"]:
        # Imported only when asked for: prometheus_client and twisted.web
        # cost memory every process would pay.
        from .metrics import metricsService

        # Before the listeners: it stops after them, so metrics stay up while
        # a shutdown drains.
        metricsService(options["metrics"], hub, chat, reactor).setServiceParent(top)
    ports: List[str] = options["port"]
    for description in ports:
        description = withBacklog(description, options["backlog"])
        strports.service(description, factory, reactor=reactor).setServiceParent(top)
    # Last: it starts once every listener is up (READY=1), and stops first
    # (STOPPING=1).
    NotifyService(hub, reactor).setServiceParent(top)
    return top


def workerCount(value: str) -> int:
    """
    Parse C{--workers} (see L{logger_service.workers.workerCount}).
    """
    from . import workers

    return workers.workerCount(value)


def workersService(options: Options, recorder: Recorder, reactor: Any) -> LineLoggerService:
    """
    The service of C{--workers N} (N > 1): this process binds every
    endpoint and writes the records that N worker processes send (see
    L{logger_service.workers}).
    """
    from .workers import PoolNotifyService, WorkerPool

    top = LineLoggerService(recorder, reactor, daemon=options.get("daemon", False))
    descriptions = [withBacklog(d, options["backlog"]) for d in options["port"]]
    pool = WorkerPool(
        recorder,
        reactor,
        descriptions,
        options["workers"],
        options.arguments,
        drainTimeout=options["drain-timeout"],
        daemon=options.get("daemon", False),
    )
    pool.setServiceParent(top)
    PoolNotifyService(pool, reactor).setServiceParent(top)
    return top
