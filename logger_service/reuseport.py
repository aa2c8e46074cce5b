"""
The listening sockets of C{--workers N}, bound once by the supervisor: one
C{SO_REUSEPORT} socket per worker for TCP, one shared socket otherwise.
"""

from __future__ import annotations

import socket
from typing import Any, List

from twisted.internet import endpoints
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure


class ReusePortBinder:
    """
    A reactor for endpoint parsers whose C{listenTCP} and C{listenSSL} bind
    C{count} sockets to the address with C{SO_REUSEPORT}, one per worker,
    so that the kernel spreads new connections evenly across the workers
    (a shared socket hands a burst of connects to whichever worker wakes
    first).  The supervisor keeps them all, never accepting on them: a
    replaced worker adopts the same socket, and connections queued on it
    meanwhile wait instead of being lost.  Other listens (UNIX, systemd)
    bind one socket, which all workers share.

    @ivar ports: the ports of the last C{listenTCP}/C{listenSSL}, or empty.
    """

    def __init__(self, reactor: Any, count: int) -> None:
        self._reactor = reactor
        self._count = count
        self.ports: List[Any] = []

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
                sock.listen(backlog)
                sock.setblocking(False)
                # Ephemeral (0): the others take the port the first got.
                port = sock.getsockname()[1]
                self.ports.append(self._reactor.adoptStreamPort(sock.fileno(), family, factory))
            except OSError as e:
                raise CannotListenError(interface, port, e) from None
            finally:
                sock.close()
        return self.ports[0]

    def listenSSL(self, port: int, factory: Any, contextFactory: Any, backlog: int = 50, interface: str = "") -> Any:
        return self.listenTCP(port, factory, backlog, interface)


def bindEndpoint(reactor: Any, description: str, count: int) -> List[Any]:
    """
    Bind the endpoint C{description} for C{count} workers, without
    accepting on it.

    @return: the listening ports: C{count} of them (C{SO_REUSEPORT}), or
        the one every worker shares.
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
    ports = binder.ports or [result[0]]
    for port in ports:
        port.stopReading()
    return ports
