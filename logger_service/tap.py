"""
C{twistd linelogger}: command-line options and the service they build.
"""

from __future__ import annotations

import sys
from typing import Any, List, Optional

from twisted.application import strports
from twisted.application.service import MultiService
from twisted.internet.error import CannotListenError
from twisted.logger import Logger
from twisted.python import usage

from .framing import LongLines
from .hub import Hub, HubService
from .protocol import LineLoggerFactory
from .recorder import Recorder
from .records import FORMATTERS
from .sinks import FileSink, IRecordSink, StreamSink

DEFAULT_PORT = "tcp:1234"

log = Logger()


def portDescription(value: str) -> str:
    """
    Turn a C{--port} value into an endpoint description: C{N} means C{tcp:N}.
    """
    return f"tcp:{value}" if value.isdigit() else value


def positiveInt(option: str, value: object) -> int:
    """
    Parse the value of C{--option} as a whole number of at least 1.

    @raise usage.UsageError: naming the option, if it is not one.
    """
    try:
        number = int(str(value))
    except ValueError:
        number = 0
    if number < 1:
        raise usage.UsageError(f"--{option} takes a whole number of at least 1, not {value!r}")
    return number


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
        ["long-lines", None, "split", "What to do with a longer line: split, truncate or close."],
    ]

    compData = usage.Completions(
        optActions={
            "output": usage.CompleteFiles(),
            "format": usage.CompleteList(sorted(FORMATTERS)),
            "long-lines": usage.CompleteList([p.value for p in LongLines]),
        }
    )

    def __init__(self) -> None:
        usage.Options.__init__(self)
        self["port"] = []

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
        self["max-line-length"] = positiveInt("max-line-length", self["max-line-length"])
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


def openSink(output: str) -> IRecordSink:
    """
    Open the sink that C{--output} names.
    """
    if output == "-":
        return StreamSink(sys.stdout.buffer)
    return FileSink(output)


class LineLoggerService(MultiService):
    """
    The whole service: the hub, then one listener per C{--port}.

    A listener that cannot listen stops twistd with a non-zero exit status
    and a one-line message instead of a traceback.  (A daemonizing twistd
    reports the error itself, through its start-up pipe, so there the
    error is passed on unchanged.)

    @ivar daemon: whether twistd is daemonizing.
    """

    def __init__(self, daemon: bool = False) -> None:
        MultiService.__init__(self)
        self.daemon = daemon

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
    try:
        sink = openSink(options["output"])
    except OSError as e:
        raise SystemExit(f"linelogger: cannot open --output {options['output']}: {e.strerror}") from None
    recorder = Recorder(sink, reactor, format=options["format"])
    hub = Hub(recorder)
    greeting = options["greeting"]
    factory = LineLoggerFactory(
        hub,
        maxLineLength=options["max-line-length"],
        longLines=options["long-lines"],
        greeting=greeting.encode("utf-8") if greeting is not None else None,
    )
    top = LineLoggerService(daemon=options.get("daemon", False))
    HubService(hub, reactor).setServiceParent(top)
    ports: List[str] = options["port"]
    for description in ports:
        strports.service(description, factory, reactor=reactor).setServiceParent(top)
    return top
