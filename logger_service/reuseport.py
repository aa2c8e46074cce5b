"""
The listening sockets of C{--workers N}, bound once by the supervisor: one
C{SO_REUSEPORT} socket per worker for TCP, one shared socket otherwise.

A TCP socket is bound at start but listens only once every worker is ready
to accept on it (L{BoundSocket.listen}): until then a client is refused, as
by a single process that has not started listening yet, rather than queued
for workers that are still starting (a quarter of a second and more), which
a client, a health check or a benchmark would take for a server that is up.
"""

from __future__ import annotations

import socket
from typing import Any, List

from twisted.internet import endpoints
from twisted.internet.defer import Deferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure


class BoundSocket:
    """
    One socket the supervisor holds for its workers, bound, and listening
    once L{listen} is called.

    @ivar socket: the socket the workers adopt.
    @ivar listening: whether it listens.
    """

    def __init__(self, sock: socket.socket, backlog: int, listening: bool = False) -> None:
        self.socket = sock
        self.backlog = backlog
        self.listening = listening

    def listen(self) -> None:
        """
        Start listening, if not yet: from now on the kernel queues new
        connections for the workers.
        """
        if not self.listening:
            self.socket.listen(self.backlog)
            self.listening = True

    def stopListening(self) -> Deferred[None]:
        """
        Close the socket (the workers have exited).
        """
        self.socket.close()
        return succeed(None)


class ListeningPort:
    """
    A port some other code made listen at once (a UNIX socket, a systemd
    socket), as a L{BoundSocket}: L{listen} has nothing to do.
    """

    listening = True

    def __init__(self, port: Any) -> None:
        self.port = port
        self.socket = port.socket

    def listen(self) -> None:
        """
        It listens already.
        """

    def stopListening(self) -> Any:
        """
        Stop listening and close it.
        """
        return self.port.stopListening()


class ReusePortBinder:
    """
    A reactor for endpoint parsers whose C{listenTCP} and C{listenSSL} bind
    C{count} sockets to the address with C{SO_REUSEPORT}, one per worker,
    so that the kernel spreads new connections evenly across the workers
    (a shared socket hands a burst of connects to whichever worker wakes
    first).  They do not listen yet (see L{BoundSocket}).  The supervisor
    keeps them all, never accepting on them: a replaced worker adopts the
    same socket, and connections queued on it meanwhile wait instead of
    being lost.  Other listens (UNIX, systemd) bind one socket, which all
    workers share, and which listens at once.

    @ivar ports: the sockets of the last C{listenTCP}/C{listenSSL}, or
        empty.
    """

    def __init__(self, reactor: Any, count: int) -> None:
        self._reactor = reactor
        self._count = count
        self.ports: List[BoundSocket] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._reactor, name)

    def listenTCP(self, port: int, factory: Any, backlog: int = 50, interface: str = "") -> Any:
        family = socket.AF_INET6 if ":" in interface else socket.AF_INET
        host = interface or ("::" if family == socket.AF_INET6 else "0.0.0.0")
        for _ in range(self._count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                sock.bind((host, port))
                sock.setblocking(False)
                # Ephemeral (0): the others take the port the first got.
                port = sock.getsockname()[1]
            except OSError as e:
                sock.close()
                for bound in self.ports:
                    bound.stopListening()
                raise CannotListenError(interface, port, e) from None
            self.ports.append(BoundSocket(sock, backlog))
        return self.ports[0]

    def listenSSL(self, port: int, factory: Any, contextFactory: Any, backlog: int = 50, interface: str = "") -> Any:
        return self.listenTCP(port, factory, backlog, interface)


def bindEndpoint(reactor: Any, description: str, count: int) -> List[Any]:
    """
    Bind the endpoint C{description} for C{count} workers, without
    accepting on it (and, for TCP, without listening yet).

    @return: the sockets, as L{BoundSocket}s (or L{ListeningPort}s):
        C{count} of them (C{SO_REUSEPORT}), or the one every worker shares.
    @raise CannotListenError: if it cannot be bound.
    """
    binder = ReusePortBinder(reactor, count)
    endpoint = endpoints.serverFromString(binder, description)
    result: List[Any] = []
    endpoint.listen(Factory.forProtocol(Protocol)).addBoth(result.append)
    if not result:
        raise CannotListenError(None, description, "the endpoint did not listen at once")
    if isinstance(result[0], Failure):
        result[0].raiseException()
    if binder.ports:
        return list(binder.ports)
    # Listening already, and adopted here: this process never accepts.
    result[0].stopReading()
    return [ListeningPort(result[0])]
