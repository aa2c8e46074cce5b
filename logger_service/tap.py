"""
C{twistd linelogger}: the command-line options, and L{makeService}, which
builds the service from them.

The values of single options are parsed in L{logger_service.optionvalues};
the parts of the service are built in L{logger_service.assembly}, under the
root service of L{logger_service.rootservice}.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, Optional

from twisted.internet import endpoints
from twisted.python import usage

from twisted import copyright

from . import __version__, fdlimit
from .allocator import keepLargeBuffers
from .assembly import chatParts, connectionParts, openOutput, workersService
from .drain import HubService
from .framing import FRAMERS, LongLines
from .limits import parseNetwork
from .optionvalues import (
    fsyncSetting,
    nonNegativeNumber,
    portDescription,
    positiveNumber,
    wholeNumber,
    withBacklog,
    workerCount,
)
from .records import FORMATTERS
from .rootservice import LineLoggerService, QueueAcceptingListener
from .startup import StartupError, checkEndpoint
from .systemd import NotifyService

DEFAULT_PORT = "tcp:1234"


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
            "How records end: lf (a LF; a NUL too once a record starts with '<' as syslog messages do, "
            "for Python's SysLogHandler), nul (a NUL or a LF), "
            "octet (RFC 6587 octet counting: LEN SP MSG), or auto (decide per connection from its first byte).",
        ],
        ["max-connections", None, 10000, "The most connections open at once; 0 for no limit."],
        ["max-per-ip", None, 0, "The most connections open at once from one IP address; 0 for no limit."],
        ["idle-timeout", None, "0", "Close a connection that sends nothing for this many seconds; 0 for never."],
        [
            "line-timeout",
            None,
            "60",
            "Close a connection that holds an unfinished line (one begun and not ended) for this many seconds, "
            "as a client trickling bytes does; 0 for never.",
        ],
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
            "Serve Prometheus metrics at /metrics on this endpoint, e.g. tcp:9100:interface=127.0.0.1; "
            "with --workers, the totals across the workers; default: off.",
        ],
        [
            "drain-timeout",
            None,
            "30",
            "At shutdown, the longest wait for input that clients sent before the signal to be read.",
        ],
        [
            "web",
            None,
            None,
            "Serve the chat page (/, WebSocket /ws) and the live tail (/tail) on this endpoint, "
            "e.g. tcp:8080:interface=127.0.0.1 or ssl:8443:...; default: off.",
        ],
        [
            "web-token-file",
            None,
            None,
            "A file holding the secret the live tail (/tail) asks for, as ?token=... or "
            "Authorization: Bearer ...; without it /tail is refused.",
        ],
        ["history", None, 20, "Chat: how many messages a room replays to someone joining it."],
        ["flood-burst", None, 5, "Chat: lines a client may send at once before flood control delays it."],
        ["flood-rate", None, "2", "Chat: lines per second a client may send in the long run."],
        ["sendq", None, 262144, "Chat: bytes that may wait for a client that is not reading before it is dropped."],
        [
            "redis",
            None,
            None,
            "Chat: share rooms, nicknames and history with every linelogger on this Redis: "
            "redis://[:password@]host[:port][/db], rediss://... (TLS) or unix:///path/redis.sock.",
        ],
        ["redis-prefix", None, "linelogger", "Chat: the prefix of this cluster's Redis keys."],
        [
            "workers",
            None,
            "1",
            "Worker processes that accept and serve connections (auto: one per usable core); "
            "this process then binds the endpoints (see --worker-output for who writes the output).",
        ],
        [
            "worker-output",
            None,
            "direct",
            "With --workers and --output FILE: direct (each worker appends its records to FILE itself, "
            "under a lock) or supervisor (the workers send them to this process, which writes them).",
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

        # --help wraps each text as it is: the indentation of a docstring
        # (opt_port's, say) would show as runs of spaces.
        self.docs = {name: " ".join(doc.split()) if doc else doc for name, doc in self.docs.items()}

    def opt_version(self) -> None:
        """
        Display linelogger's version (and Twisted's) and exit.
        """
        print(f"linelogger {__version__} (Twisted {copyright.version})")
        sys.exit(0)

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
        for name in ("idle-timeout", "line-timeout", "max-rate", "connection-log-rate"):
            self[name] = nonNegativeNumber(name, self[name])
        self["fsync"] = fsyncSetting(self["fsync"])
        try:
            self["workers"] = workerCount(str(self["workers"]))
        except ValueError:
            raise usage.UsageError(
                f"--workers takes auto or a whole number of at least 1, not {self['workers']!r}"
            ) from None
        if self["workers"] > 1 and self["chat"] and not self["redis"]:
            raise usage.UsageError(
                "--chat with --workers above 1 needs --redis: without it each worker would hold rooms of its own"
            )
        if self["worker-output"] not in ("direct", "supervisor"):
            raise usage.UsageError("--worker-output must be direct or supervisor")
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
        self["web-token"] = None
        if self["web-token-file"] is not None:
            if self["web"] is None:
                raise usage.UsageError("--web-token-file needs --web")
            from .web import readToken

            try:
                self["web-token"] = readToken(self["web-token-file"])
            except OSError as e:
                raise usage.UsageError(f"cannot read --web-token-file {self['web-token-file']}: {e.strerror}") from None
            except ValueError:
                raise usage.UsageError(f"--web-token-file {self['web-token-file']} is empty") from None
        parent = getattr(self, "parent", None)
        self["daemon"] = parent is not None and not parent.get("nodaemon")
        if self["output"] == "-" and self["daemon"]:
            raise usage.UsageError(
                "--output - (standard output) would throw every line away once "
                "twistd runs as a daemon: give --output FILE, or run with -n"
            )
        if self["chat"] and self["ack"]:
            raise usage.UsageError("--ack does not go with --chat: its 'ok N' lines would show in the chat")
        if self["redis"]:
            if not self["chat"]:
                raise usage.UsageError("--redis shares chat rooms: it needs --chat")
            try:
                from .redis.connection import checkRedisURL
            except ImportError as e:
                raise usage.UsageError(
                    f"--redis needs the redis extra (pip install 'linelogger[redis]'): {e}"
                ) from None
            try:
                checkRedisURL(self["redis"])
            except ValueError as e:
                raise usage.UsageError(str(e)) from None


class TwistdOptions(Options):
    """
    The options as twistd parses them (the plugin's).

    Every C{--port} and C{--metrics} endpoint is also checked against this
    machine before anything starts (parsed as Twisted will, its files read,
    its TCP address bound once; see L{logger_service.startup}), and any
    mistake stops twistd with one line saying what is wrong (and, for a
    mistake in the options, a pointer to C{--help}) instead of twistd's
    whole usage text followed by the reason, or a traceback.
    """

    def postOptions(self) -> None:
        """
        Check the options, then the endpoints.
        """
        Options.postOptions(self)
        self.checkEndpoints(getattr(self, "parent", None))

    def checkEndpoints(self, parent: Any) -> None:
        """
        Check every C{--port} and C{--metrics} endpoint, without listening.

        @param parent: twistd's own options (for C{--rundir}, C{--chroot}).
        """
        from twisted.internet import reactor

        # Where a relative UNIX socket path will be (unknown under --chroot).
        rundir: Optional[str] = os.getcwd()
        if parent is not None:
            rundir = None if parent.get("chroot") else os.path.abspath(parent.get("rundir") or ".")
        for description in self["port"]:
            checkEndpoint("--port", description, reactor, bind=True, rundir=rundir)
        if self["metrics"]:
            checkEndpoint("--metrics", self["metrics"], reactor, bind=True, rundir=rundir)

    def parseOptions(self, options: Optional[List[str]] = None) -> None:
        """
        Parse, or exit with status 1 and a short message.
        """
        try:
            Options.parseOptions(self, options)
        except StartupError as e:
            raise SystemExit(f"linelogger: {e}") from None
        except usage.UsageError as e:
            raise SystemExit(f"linelogger: {e}\nRun 'twistd linelogger --help' for the options.") from None


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
    keepLargeBuffers()
    recorder, tail, output = openOutput(options, reactor)
    listeners = len(options["port"]) + (1 if options["metrics"] else 0) + (1 if options["web"] else 0)
    if options.get("workers", 1) > 1:
        # The workers accept, each fitting its own limits to its descriptors
        # and saying so; here only whether there is room at all.
        try:
            fdlimit.fit(options["max-connections"], options["backlog"], listeners)
        except ValueError as e:
            raise SystemExit(f"linelogger: {e}") from None
        return workersService(options, options.arguments, recorder, output, reactor)
    hub, settings, descriptors = connectionParts(options, recorder, reactor, listeners)
    factory, chat, broker = chatParts(options, hub, settings, reactor)
    top = LineLoggerService(recorder, reactor, daemon=options.get("daemon", False))
    top.twistdConfig = getattr(options, "parent", None)
    if broker is not None:
        # First: it stops last, after the listeners and the drain.
        broker.setServiceParent(top)
    HubService(
        hub, reactor, drainTimeout=options["drain-timeout"], connectionLog=factory.connectionLogger
    ).setServiceParent(top)
    if options["metrics"]:
        # Imported only when asked for: prometheus_client and twisted.web
        # cost memory every process would pay.
        from .metrics import metricsService

        # It stops once the others have: metrics stay up while a shutdown
        # drains.
        metrics = metricsService(options["metrics"], hub, chat, reactor)
        metrics.setServiceParent(top)
        top.stopsLast.append(metrics)
    if options.get("web") is not None:
        try:
            from .web import webService

            chatFactory = factory if chat is not None else None
            service = webService(options["web"], chatFactory, tail, options["web-token"], reactor)
        except ImportError as e:
            raise SystemExit(f"linelogger: --web needs {e.name}: pip install 'linelogger[web]'") from None
        except ValueError as e:
            raise SystemExit(f"linelogger: --web {options['web']}: {e}") from None
        service.setServiceParent(top)
    ports: List[str] = options["port"]
    for description in ports:
        description = withBacklog(description, descriptors.backlog)
        endpoint = endpoints.serverFromString(reactor, description)
        QueueAcceptingListener(endpoint, factory, descriptors.backlog).setServiceParent(top)
    # Last: it starts once every listener is up (READY=1), and stops first
    # (STOPPING=1).
    NotifyService(hub.counters, reactor).setServiceParent(top)
    return top
