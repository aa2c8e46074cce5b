"""
systemd integration: readiness, status and watchdog notifications.

The C{sd_notify(3)} protocol, without a library: each notification is one
datagram of newline-separated C{NAME=VALUE} assignments, sent to the UNIX
datagram socket that C{NOTIFY_SOCKET} names (a path, or an abstract socket
name written with a leading C{@}).  Without C{NOTIFY_SOCKET} nothing is
sent, so the same service runs unchanged outside systemd.

Socket activation: C{--port systemd:domain=INET6:index=0} is Twisted's own
endpoint for a listening socket systemd passes in.  Twisted reads
C{LISTEN_FDS} once, when C{twisted.internet.endpoints} is first imported,
and keeps no socket at all when C{LISTEN_FDNAMES} is missing (older
systemd, C{systemd-socket-activate} without C{--fdname}, other
activators); L{nameInheritedSockets}, run when C{logger_service} is
imported, gives such sockets the name C{sd_listen_fds_with_names(3)} gives
them, C{unknown}, first.
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Callable, List, Mapping, MutableMapping, Optional

from twisted.application.service import Service
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from .text import plural

if TYPE_CHECKING:
    from .counters import Counters

log = Logger()

INHERITED_NAMES: List[str] = []
"""The names of the sockets systemd passed to this process (C{unknown} for
each when it passed none), as L{nameInheritedSockets} found them."""


def nameInheritedSockets(environ: MutableMapping[str, str], pid: int) -> List[str]:
    """
    Name the sockets systemd passed this process, if it passed no names.

    C{LISTEN_FDS} counts the sockets passed to the process C{LISTEN_PID};
    C{LISTEN_FDNAMES} names them, C{:}-separated.  Without names, every
    socket is called C{unknown} (as C{sd_listen_fds_with_names(3)} does),
    so that Twisted's C{systemd:} endpoint finds them by index.  This must
    run before C{twisted.internet.endpoints} is imported.

    @return: the names of the sockets passed to this process (also kept in
        L{INHERITED_NAMES}), or an empty list if none were.
    """
    names: List[str] = []
    if environ.get("LISTEN_PID") == str(pid):
        try:
            count = int(environ.get("LISTEN_FDS", ""))
        except ValueError:
            count = 0
        if count > 0:
            if not environ.get("LISTEN_FDNAMES"):
                environ["LISTEN_FDNAMES"] = ":".join(["unknown"] * count)
            names = environ["LISTEN_FDNAMES"].split(":")
    INHERITED_NAMES[:] = names
    return names


def socketActivationProblem(description: str) -> str:
    """
    Say why the C{systemd:} endpoint C{description} names no socket that
    systemd passed (after Twisted could not find it).
    """
    if not INHERITED_NAMES:
        return "systemd passed no sockets to this process (LISTEN_FDS and LISTEN_PID are not set for it)"
    passed = ", ".join(f"index={i} name={name}" for i, name in enumerate(INHERITED_NAMES))
    return f"no such socket among those systemd passed ({passed})"


STATUS_INTERVAL = 5.0
"""Seconds between checks whether the C{STATUS=} line changed."""


def notifyAddress(environ: Mapping[str, str]) -> Optional[str]:
    """
    The address of the notification socket C{NOTIFY_SOCKET} names.

    @return: a path, an abstract socket name (C{@NAME} becomes C{\\0NAME}),
        or C{None} if C{NOTIFY_SOCKET} is unset, empty or of a kind not
        supported here (such as C{vsock:}).
    """
    name = environ.get("NOTIFY_SOCKET", "")
    if name.startswith("@"):
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    return None


def watchdogInterval(environ: Mapping[str, str], pid: int) -> Optional[float]:
    """
    How often to send C{WATCHDOG=1}, as C{sd_watchdog_enabled(3)} decides.

    @param pid: this process's id, which C{WATCHDOG_PID} must match if set.
    @return: half of C{WATCHDOG_USEC}, in seconds, or C{None} if the
        watchdog is off or meant for another process.
    """
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        watchdogPid = environ.get("WATCHDOG_PID")
        if watchdogPid is not None and int(watchdogPid) != pid:
            return None
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


class NotifyService(Service):
    """
    Tell systemd that linelogger is ready, how it is doing, that it is
    alive, and that it is stopping.

    Add it to the service tree after the listeners: twistd starts them
    listening (in C{privilegedStartService}) before any C{startService}, so
    C{READY=1} goes out only once every endpoint accepts connections; and
    a L{MultiService} stops its last child first, so C{STOPPING=1} goes out
    before the hub begins to drain.

    Errors sending (the socket gone, its queue full) are logged once per
    episode and never raised: losing systemd must not stop the logging.

    @ivar counters: what C{STATUS=} reports.
    @ivar clock: what times the status updates and watchdog pings.
    @ivar environ: where C{NOTIFY_SOCKET}, C{WATCHDOG_USEC} and
        C{WATCHDOG_PID} are read.
    @ivar statusInterval: seconds between status updates (sent only when
        the status changed).
    @ivar address: the notification socket's address, or C{None}: then the
        service does nothing.
    @ivar watchdogInterval: seconds between C{WATCHDOG=1} pings while
        running, or C{None} if there is no watchdog.
    """

    def __init__(
        self,
        counters: Counters,
        clock: IReactorTime,
        environ: Mapping[str, str] = os.environ,
        statusInterval: float = STATUS_INTERVAL,
    ) -> None:
        self.counters = counters
        self.clock = clock
        self.environ = environ
        self.statusInterval = statusInterval
        self.address = notifyAddress(environ)
        self.watchdogInterval: Optional[float] = None
        self._socket: Optional[socket.socket] = None
        self._loops: List[LoopingCall] = []
        self._status: Optional[str] = None
        self._failing = False

    def status(self) -> str:
        """
        The live counts, as the C{STATUS=} line shows them: C{12
        connections open, 3456 lines received, 3456 records written}.
        """
        counters = self.counters
        parts = [
            plural(int(counters.read("connectionsOpen") or 0), "connection") + " open",
            plural(counters.linesReceived, "line") + " received",
            plural(int(counters.read("recordsWritten") or 0), "record") + " written",
        ]
        refused = sum(counters.refused.values())
        if refused:
            parts.append(f"{refused} refused")
        text = ", ".join(parts)
        if counters.read("inputPaused"):
            text += "; input paused: the output is behind"
        return text

    def notify(self, *assignments: str) -> bool:
        """
        Send one notification of C{assignments} (such as C{"READY=1"}),
        if the service runs and has somewhere to send it.

        @return: whether it was sent.
        """
        if self._socket is None or self.address is None:
            return False
        try:
            self._socket.sendto("\n".join(assignments).encode("utf-8"), self.address)
        except OSError as e:
            if not self._failing:
                self._failing = True
                log.warn(
                    "Cannot notify systemd at {socket}: {error}",
                    socket=self.environ.get("NOTIFY_SOCKET"),
                    error=e.strerror or e,
                )
            return False
        self._failing = False
        return True

    def startService(self) -> None:
        """
        Send C{READY=1} with the first status, then keep the status up to
        date and, if systemd asks for it, ping the watchdog.
        """
        Service.startService(self)
        if self.address is None:
            if self.environ.get("NOTIFY_SOCKET"):
                log.warn(
                    "Not notifying systemd: unsupported NOTIFY_SOCKET {socket!r}",
                    socket=self.environ["NOTIFY_SOCKET"],
                )
            return
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._status = self.status()
        self.notify("READY=1", f"STATUS={self._status}")
        self._every(self.statusInterval, self._updateStatus)
        # Decided now, not when built: twistd may have forked since.
        self.watchdogInterval = watchdogInterval(self.environ, os.getpid())
        if self.watchdogInterval is not None:
            self._every(self.watchdogInterval, lambda: self.notify("WATCHDOG=1"))

    def _every(self, interval: float, call: Callable[[], object]) -> None:
        loop = LoopingCall(call)
        loop.clock = self.clock
        self._loops.append(loop)
        loop.start(interval, now=False).addErrback(self._loopFailed)

    def _loopFailed(self, failure: Failure) -> None:
        log.failure("systemd notifications stopped", failure)

    def _updateStatus(self) -> None:
        status = self.status()
        if status != self._status and self.notify(f"STATUS={status}"):
            self._status = status

    def stopService(self) -> None:
        """
        Stop the status updates and watchdog pings, and send C{STOPPING=1}.
        """
        Service.stopService(self)
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops = []
        if self._socket is not None:
            self.notify("STOPPING=1", f"STATUS=Stopping: {self.status()}")
            self._socket.close()
            self._socket = None
