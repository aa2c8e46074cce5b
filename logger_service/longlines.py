"""
What a connection does about a line that is too long, or a broken
octet-counted frame: a warning once per connection, and with C{--long-lines
close} an error line to the client and the close (after the acknowledgements
of the lines before it, with C{--ack}).

The framer counts long lines and drops what C{--long-lines} says to drop
(see L{logger_service.framing}); the protocol checks its counts once per
received chunk and calls L{LongLinePolicy} only when they show something.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from twisted.logger import Logger

from .framing import Framer, LongLines
from .records import RecordContext

if TYPE_CHECKING:
    from .interfaces import IStreamTransport
    from .settings import ConnectionSettings

log = Logger()


class LongLinePolicy:
    """
    The part of L{logger_service.protocol.LineLoggerProtocol} that answers
    long lines and broken frames.  The attributes it uses are set in the
    protocol's C{__init__} and C{connectionStarted}.
    """

    factory: ConnectionSettings
    transport: IStreamTransport
    context: RecordContext
    framer: Optional[Framer]
    closing: Optional[str]
    acknowledged: int
    lineCount: int
    _warnedLong: bool

    def pauseReading(self, reason: str) -> None:
        """
        Stop reading for C{reason} (the protocol's).
        """
        raise NotImplementedError()

    def _longLine(self) -> None:
        """
        Tell the log, once per connection, and with C{close} the client too.
        """
        self._warnedLong = True
        framer = self.framer
        assert framer is not None
        policy = framer.policy
        log.warn(
            "{peer} sent a line longer than {limit} bytes ({policy})",
            peer=self.context.peer,
            limit=framer.maxLength,
            policy=policy.value,
        )
        if policy is LongLines.close:
            if self.factory.acks and self.acknowledged < self.lineCount:
                # The lines before it (and its first bytes) are recorded:
                # with --ack the client hears so before the connection
                # closes (see _acknowledged).
                self.closing = "after acks"
                self.pauseReading("closing")
                return
            self._closeForLongLine()

    def _acknowledged(self) -> None:
        """
        More lines were acknowledged: close, if that waited for them.
        """
        if self.closing == "after acks" and self.acknowledged >= self.lineCount:
            self._closeForLongLine()

    def _closeForLongLine(self) -> None:
        """
        C{--long-lines close}: tell the client, and close.
        """
        self.closing = "now"
        self.transport.write(b"error: line longer than %d bytes; closing connection\r\n" % self.factory.maxLineLength)
        self.transport.loseConnection()

    def _framingBroke(self) -> None:
        """
        The octet-counted framing broke (the framer reads LF/NUL-ended lines
        from here on): count it, and warn.
        """
        self.factory.counters.framingErrors += 1
        # A warning in auto mode too: the client meant one framing and
        # its records may now be cut where it did not mean them to be.
        log.warn(
            "{peer} sent bytes that are not an octet-counted frame: reading LF/NUL-ended lines from here on",
            peer=self.context.peer,
        )
