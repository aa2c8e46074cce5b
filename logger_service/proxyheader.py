"""
Waiting for the PROXY header: a connection behind a C{haproxy:} listener
before the header has said who the client is.

Such a connection already holds a descriptor, so it counts against the
connection limits and is known to the hub (L{IHub.awaitHeader}), so that a
shutdown drains what it sent too; it has no record context yet.  It gets
the shorter of the idle and line timeouts to send its header.  One that
sends no header, or a broken one, is counted and logged as a refusal; a
client that closes without sending a byte (a load balancer's health check)
is not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.protocols.policies import TimeoutMixin

from .interfaces import IConnection
from .twistedprivate import isProxyWrapper

if TYPE_CHECKING:
    from .interfaces import IStreamTransport
    from .settings import ConnectionSettings


class ProxyHeaderWait(TimeoutMixin):
    """
    The part of L{logger_service.protocol.LineLoggerProtocol} that waits
    for a PROXY header.  Its one attribute, C{_awaitingProxyHeader}, is set
    in the protocol's C{__init__} (so that every connection's attributes
    are set in one order).
    """

    factory: ConnectionSettings
    transport: IStreamTransport
    _awaitingProxyHeader: bool

    def _awaitProxyHeader(self) -> bool:
        """
        If the connection came in through a PROXY-protocol listener, refuse
        it if a limit says so, else wait for its header.

        @return: whether the connection is behind such a listener (then it
            is not started yet).
        """
        if not isProxyWrapper(self.transport):
            return False
        hub = self.factory.hub
        # It holds a descriptor already: it counts against the limits.
        refusal = hub.admit(self.transport.getPeer())
        if refusal is not None:
            self.transport.write(b"error: " + refusal.encode("utf-8") + b"\r\n")
            self.transport.loseConnection()
            return True
        self._awaitingProxyHeader = True
        # Known to the hub, so that a shutdown drains what it sent too.
        hub.awaitHeader(IConnection(self))
        timeout = self._headerTimeout()
        if timeout:
            self.setTimeout(timeout)
        return True

    def _headerTimeout(self) -> float:
        """
        Seconds a connection may wait for its PROXY header: the shorter of
        the idle and line timeouts that are set (a header is a line), or 0.
        """
        factory = self.factory
        return min((t for t in (factory.idleTimeout, factory.lineTimeout) if t), default=0)

    def _headerCame(self) -> None:
        """
        The connection no longer waits for its header (it came, or the
        connection is going).
        """
        if self._awaitingProxyHeader:
            self._awaitingProxyHeader = False
            self.factory.hub.headerDone(IConnection(self))

    def _headerTimedOut(self) -> None:
        """
        No PROXY header came in time: count and log a refusal, and close.
        """
        if self._awaitingProxyHeader:
            # Never started: no PROXY header came.
            self.factory.hub.refuse(
                "no-proxy-header",
                self.transport.getPeer(),
                f"no PROXY header within {self._headerTimeout():g} seconds",
            )
            self._headerCame()
        self.transport.loseConnection()

    def closeUnstarted(self) -> None:
        """
        At shutdown, close a connection still waiting for its PROXY header
        (it has sent no lines); it is not a refusal.
        """
        self._headerCame()
        self.transport.loseConnection()

    def _proxyHeaderMissing(self) -> None:
        """
        The connection ended before a PROXY header was read: if the PROXY
        layer closed it (the client sent something else, or a broken
        header), count and log it as a refusal.  A client that closed
        without sending a byte (a load balancer's health check) is not.
        """
        self._headerCame()
        if getattr(self.transport, "disconnecting", False):
            self.factory.hub.refuse("no-proxy-header", self.transport.getPeer(), "no valid PROXY header")
