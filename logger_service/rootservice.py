"""
The root of the service tree: its children's stop order, SIGHUP, and a
listener that cannot listen reported in one line.

Its listeners (L{QueueAcceptingListener}) accept, when they stop, the
connections the kernel had already queued for them, before closing.
"""

from __future__ import annotations

import os
import signal
import socket
from typing import Any, List, Optional

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import IService, MultiService, Service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IStreamServerEndpoint
from twisted.logger import Logger
from zope.interface import implementer

from .drain import acceptQueued
from .recorder import Recorder
from .twistedprivate import raiseListenErrorsAtOnce

# Logged under the name of the plugin's module, as all start-up messages are.
log = Logger(namespace="logger_service.tap")


class LineLoggerService(MultiService):
    """
    The whole service: the hub, then one listener per C{--port}.

    A listener that cannot listen stops twistd with a non-zero exit status
    and a one-line message instead of a traceback.  (A daemon, whose
    standard error is gone, logs that line, and hands it to the twistd
    that waits for it to start, through twistd's start-up pipe.)

    SIGHUP makes the recorder reopen its output (after C{logrotate} moved
    it), instead of killing the process as it would by default.

    At shutdown the children stop as in a L{MultiService} (all at once, so
    the hub's drain begins as the listeners close), except those in
    L{stopsLast}: they stop once all the others have.

    @ivar daemon: whether twistd is daemonizing.
    @ivar recorder: the recorder whose output SIGHUP reopens.
    @ivar stopsLast: children that stop only once the others have stopped,
        such as the metrics, which stay up while the hub drains.
    @ivar twistdConfig: twistd's own options (its C{statusPipe} and
        C{pidfile}), or C{None}.
    """

    def __init__(self, recorder: Recorder, reactor: Any, daemon: bool = False) -> None:
        MultiService.__init__(self)
        self.recorder = recorder
        self.reactor = reactor
        self.daemon = daemon
        self.stopsLast: List[IService] = []
        self.twistdConfig: Any = None
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
        Service.stopService(self)
        first = [s for s in reversed(list(self)) if s not in self.stopsLast]
        stopped = DeferredList([maybeDeferred(s.stopService) for s in first])

        def stopLast(_: object) -> Deferred[Any]:
            return DeferredList([maybeDeferred(s.stopService) for s in reversed(self.stopsLast)])

        return stopped.addCallback(stopLast)

    def privilegedStartService(self) -> None:
        """
        Start listening; exit if any endpoint cannot be listened on.
        """
        try:
            MultiService.privilegedStartService(self)
        except Exception as e:
            message = f"linelogger: {listenError(e)}"
            if self.daemon:
                log.critical("{message}", message=message)
                self._daemonFailed(message)
            raise SystemExit(message) from None

    def _daemonFailed(self, message: str) -> None:
        """
        As a daemon, tell the twistd that waits for this one to start (it
        prints C{message} and exits with status 1), remove the pidfile, and
        exit, instead of leaving twistd to log a traceback.
        """
        config = self.twistdConfig
        pipe = config.get("statusPipe") if config is not None else None
        if pipe is None:
            return
        # twistd's start-up pipe: "0" for started, "1 MESSAGE" (100 bytes at
        # most) for failed.
        os.write(pipe, (b"1 " + message.encode("ascii", "backslashreplace"))[:100])
        os.close(pipe)
        config["statusPipe"] = None
        pidfile = config.get("pidfile")
        if pidfile:
            try:
                os.remove(pidfile)
            except OSError:
                pass
        raise SystemExit(1)


def listenError(error: Exception) -> str:
    """
    What went wrong when listening, in one line.
    """
    if isinstance(error, CannotListenError):
        return str(error)
    if isinstance(error, OSError) and error.filename is not None:
        return f"cannot listen: {error.filename}: {error.strerror}"
    return f"cannot listen: {error}"


@implementer(IStreamServerEndpoint)
class PortKeepingEndpoint:
    """
    An endpoint that listens as C{endpoint} does and keeps the port it
    listens on, for L{QueueAcceptingListener}.

    @ivar port: the listening port, once listening; else C{None}.
    """

    def __init__(self, endpoint: IStreamServerEndpoint) -> None:
        self.endpoint = endpoint
        self.port: Optional[IListeningPort] = None

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen, and keep the port.
        """

        def keep(port: IListeningPort) -> IListeningPort:
            self.port = port
            return port

        return self.endpoint.listen(protocolFactory).addCallback(keep)


class QueueAcceptingListener(StreamServerEndpointService):
    """
    A listener which, when it stops, first accepts the connections the
    kernel has already queued on its socket (at most C{backlog + 1}; see
    L{acceptQueued}) and only then stops listening.

    Closing a listening socket resets the connections in its queue, though
    their handshake is done and what they sent is in the kernel: sent before
    the signal, and lost.  Accepted, they are open connections like the
    others, which the shutdown drain then reads: so it must stop after the
    listeners, as it does in the order of L{LineLoggerService} and of a
    worker's service.  A listening start error is raised at once (as
    C{strports.service} has it).

    A listener made C{paused} (a worker's, whose socket listens only once
    every worker is ready) takes its socket when it starts but accepts
    nothing until L{resume}.

    @ivar backlog: the listen backlog: the most connections its queue holds,
        less one.
    @ivar paused: whether it waits for L{resume} to accept.
    """

    def __init__(
        self, endpoint: IStreamServerEndpoint, factory: IProtocolFactory, backlog: int, paused: bool = False
    ) -> None:
        self.keeper = PortKeepingEndpoint(endpoint)
        StreamServerEndpointService.__init__(self, self.keeper, factory)
        raiseListenErrorsAtOnce(self)
        self.backlog = backlog
        self.paused = paused

    def startService(self) -> None:
        """
        Take the socket; accept on it unless paused.
        """
        StreamServerEndpointService.startService(self)
        if self.paused and self.keeper.port is not None:
            # Before the reactor polls it: a socket that does not listen
            # yet would read as hung up.
            self.keeper.port.stopReading()  # type: ignore[attr-defined]

    def resume(self) -> None:
        """
        Start accepting (the socket listens now).
        """
        if self.paused:
            self.paused = False
            if self.running and self.keeper.port is not None:
                self.keeper.port.startReading()  # type: ignore[attr-defined]

    def stopService(self) -> Any:
        """
        Accept what is queued, then stop listening.  (A paused listener
        does too if its socket listens already: the connections queued
        there are this process's to read.)
        """
        if self.keeper.port is not None and (not self.paused or listens(self.keeper.port)):
            accepted = acceptQueued(self.keeper.port, self.backlog + 1)
            if accepted:
                log.info("Stopping: accepted {count} connections already queued", count=accepted)
        return StreamServerEndpointService.stopService(self)


def listens(port: Any) -> bool:
    """
    Whether the socket of C{port} listens (C{SO_ACCEPTCONN}).
    """
    try:
        return bool(port.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
    except (AttributeError, OSError):
        return False
