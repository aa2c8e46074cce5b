"""
The factory of line-logging connections: building their protocols, which
share its L{ConnectionSettings}.
"""

from __future__ import annotations

from twisted.internet.protocol import Factory

from .protocol import LineLoggerProtocol
from .settings import ConnectionSettings


class LineLoggerFactory(ConnectionSettings, Factory):
    """
    Builds L{LineLoggerProtocol}s that share one hub and one set of settings
    (see L{ConnectionSettings} for each).
    """

    noisy = False

    def stopFactory(self) -> None:
        """
        The last listener has stopped: log the summary of connections not
        logged one by one now, rather than after the reactor has stopped.
        """
        if self.connectionLogger is not None:
            self.connectionLogger.stop()

    def buildProtocol(self, addr: object) -> LineLoggerProtocol:  # type: ignore[override]
        """
        Build a protocol for a new connection.
        """
        protocol = LineLoggerProtocol()
        protocol.factory = self
        return protocol
