"""
The line-logging protocol: a thin adapter from a transport to the hub.

L{LineLoggerProtocol} is a L{LineReceiver} whose C{dataReceived} frames a
whole received chunk at once with a L{LineFramer} and records the lines in
one batch, or hands chunks and lines to the connection's session (an
L{ISession} the factory's C{sessions} made: a chat member's), which records
them through L{LineLoggerProtocol.record}.  C{setRawMode} and
C{rawDataReceived} work as in L{LineReceiver}, from the next chunk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Sequence, Tuple

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from zope.interface import implementer

from .framing import Framer
from .interfaces import ISession, ISessionConnection, IStreamTransport
from .limits import TokenBucket
from .longlines import LongLinePolicy
from .proxyheader import ProxyHeaderWait
from .records import RecordContext

if TYPE_CHECKING:
    from .settings import ConnectionSettings

log = Logger()


@implementer(ISessionConnection)
class LineLoggerProtocol(LineReceiver, ProxyHeaderWait, LongLinePolicy):
    """
    Record every line a client sends.

    @ivar context: the connection's record context (peer and id).
    @ivar lineCount: lines received on this connection.
    @ivar bytesReceived: bytes received on this connection.
    @ivar acknowledged: lines reported to the client as written (C{--ack}).
    @ivar closing: C{None}, or why this side is closing the connection
        (C{--long-lines close}): C{"after acks"} while the lines before
        are still to be acknowledged, then C{"now"} once the client was told
        why.  Nothing it sends from then on is read.
    @ivar session: what the connection hands its input to (L{ISession}), or
        C{None}: its lines are recorded at once.
    """

    delimiter = b"\n"
    factory: ConnectionSettings
    context: RecordContext
    transport: IStreamTransport

    def __init__(self) -> None:
        self.lineCount = 0
        self.bytesReceived = 0
        self.acknowledged = 0
        self._finished = True
        self._warnedLong = False
        # The line timeout's call while an unfinished line is held.
        self._lineCall: Optional[IDelayedCall] = None
        self._drained: Optional[Callable[[], None]] = None
        # Reasons reading is paused; a tuple, as a set would cost 216 bytes
        # on every one of ten thousand idle connections.
        self._pausedFor: Tuple[str, ...] = ()
        self._rate: Optional[TokenBucket] = None
        self._awaitingProxyHeader = False
        self._rateCall: Optional[IDelayedCall] = None
        # Whether this connection was logged one by one (see ConnectionLog).
        self._connectionLogged = False
        self.closing: Optional[str] = None
        self.session: Optional[ISession] = None

    def callLater(self, period: float, func: Callable[[], Any]) -> IDelayedCall:
        """
        Schedule C{func} on the factory's clock (for L{TimeoutMixin}).
        """
        return self.factory.clock.callLater(period, func)

    def connectionMade(self) -> None:
        """
        Start the connection; behind a PROXY-protocol listener
        (C{haproxy:}), wait until the header has said who the client is.
        """
        if self.factory.acceptPacer is not None:
            self.factory.acceptPacer.watch(self.transport)
        if not self._awaitProxyHeader():
            self.connectionStarted()

    def connectionStarted(self) -> None:
        """
        The client is known: refuse it if a limit says so; else register
        with the hub, greet the client, log the connection.
        """
        factory = self.factory
        self._headerCame()
        refusal = factory.hub.admit(self.transport.getPeer())
        if refusal is not None:
            self.transport.write(b"error: " + refusal.encode("utf-8") + b"\r\n")
            self.transport.loseConnection()
            return
        self._finished = False
        # Made when data comes, and dropped again while it holds nothing:
        # ten thousand idle connections need no framer each.
        self.framer: Optional[Framer] = None
        self._framingChecked = factory.framing not in ("octet", "auto")
        self.context = factory.hub.connected(self)
        if factory.greeting is not None:
            self.transport.write(factory.greeting + b"\r\n")
        if factory.idleTimeout:
            self.setTimeout(factory.idleTimeout)
        if factory.maxRate:
            self._rate = TokenBucket(factory.maxRate, max(1.0, factory.maxRate), factory.clock.seconds())
        connectionLogger = factory.connectionLogger
        if connectionLogger is not None:
            self._connectionLogged = connectionLogger.connected(self.context)
        if factory.sessions is not None:
            self.session = factory.sessions(self)

    @property
    def finished(self) -> bool:
        """
        Whether the connection takes no lines: not (yet) started, or done.
        """
        return self._finished

    def label(self, fields: Dict[str, str]) -> None:
        """
        This connection's records carry C{fields} from now on.
        """
        self.context.extra = fields

    def pauseReading(self, reason: str) -> None:
        """
        Stop reading from this client for C{reason} (flood control, rate
        limit, a full output, shutdown...).  Reading resumes once every
        reason is gone.
        """
        if not self._pausedFor:
            self.transport.pauseProducing()
            # Input waiting unread is not idleness: no idle timeout while
            # we are the ones not reading, nor a line timeout.
            self.setTimeout(None)
            self._stopLineTimer()
        if reason not in self._pausedFor:
            self._pausedFor += (reason,)

    def resumeReading(self, reason: str) -> None:
        """
        C{reason} to stop reading is gone.
        """
        if reason in self._pausedFor:
            self._pausedFor = tuple(r for r in self._pausedFor if r != reason)
            if not self._pausedFor and not self._finished:
                self.transport.resumeProducing()
                if self.factory.idleTimeout:
                    self.setTimeout(self.factory.idleTimeout)
                if self.framer is not None and self.factory.lineTimeout:
                    # The unfinished line gets the whole time again.
                    self._lineCall = self.factory.clock.callLater(self.factory.lineTimeout, self._lineTimedOut)

    def timeoutConnection(self) -> None:
        """
        Silent for C{--idle-timeout} seconds: say so, and close.
        """
        factory = self.factory
        if self._finished:
            self._headerTimedOut()
            return
        factory.counters.idleTimeouts += 1
        log.info("{peer} sent nothing for {timeout}s: closing", peer=self.context.peer, timeout=factory.idleTimeout)
        self.transport.write(b"error: idle for %d seconds; closing connection\r\n" % factory.idleTimeout)
        self.finish("idle timeout")

    def _stopLineTimer(self) -> None:
        call = self._lineCall
        if call is not None:
            if call.active():
                call.cancel()
            self._lineCall = None

    def _lineTimedOut(self) -> None:
        """
        An unfinished line was held for C{--line-timeout} seconds: say so,
        record what came of it, and close.
        """
        self._lineCall = None
        if self._finished or self.framer is None:
            # The line ended in time (the timer is left armed then).
            return
        factory = self.factory
        factory.counters.lineTimeouts += 1
        log.info(
            "{peer} held an unfinished line for {timeout}s: closing",
            peer=self.context.peer,
            timeout=factory.lineTimeout,
        )
        self.transport.write(b"error: no end of line in %d seconds; closing connection\r\n" % factory.lineTimeout)
        self.finish("line timeout")

    def acknowledge(self, count: int) -> None:
        """
        C{count} more of this client's lines are written (and synced, with
        C{--fsync}): with C{--ack}, tell the client the total.
        """
        self.acknowledged += count
        if self.factory.acks and not self._finished:
            self.transport.write(b"ok %d\r\n" % self.acknowledged)
            if self.closing is not None:
                self._acknowledged()

    def lineCounts(self) -> Tuple[int, int]:
        """
        The long lines this open connection's framer counted, not yet in
        the counters: C{(oversizeLines, droppedBytes)}.
        """
        framer = self.framer
        if framer is None:
            return (0, 0)
        return (framer.oversizeLines, framer.droppedBytes)

    def dataReceived(self, data: bytes) -> None:
        """
        Frame a received chunk and pass its lines on in one batch.
        """
        if self._finished:
            if not self._awaitingProxyHeader:
                return
            self.connectionStarted()
            if self._finished:
                return
        self.bytesReceived += len(data)
        self.factory.counters.bytesReceived += len(data)
        if self.timeOut:
            self.resetTimeout()
        if self.line_mode:
            session = self.session
            if session is None:
                self.frame(data)
            else:
                session.dataReceived(data)
        else:
            self.rawDataReceived(data)

    def frame(self, data: bytes) -> None:
        """
        Frame C{data}; record the lines, or hand them to the session.
        """
        framer = self.framer
        # No framer: nothing was held, so a line this chunk leaves
        # unfinished is a new one.
        fresh = framer is None
        if framer is None:
            factory = self.factory
            framer = self.framer = factory.makeFramer(factory.maxLineLength, factory.longLines)
        lines = framer.feed(data)
        if lines:
            session = self.session
            if session is None:
                self.record(lines)
            else:
                session.lines(lines)
        if framer.oversizeLines and not self._warnedLong:
            self._longLine()
        if not self._framingChecked and framer.framingErrors:
            self._framingChecked = True
            self._framingBroke()
        if framer.idle:
            if self.framer is framer:
                self.framer = None
            # A line timer still armed is left so: it finds no unfinished
            # line when it fires, and a client whose chunks end alternately
            # mid-line and on LF pays a reset, not a cancel and a new call.
        elif self.factory.lineTimeout and not self._pausedFor and self.framer is framer:
            # An unfinished line is held: it must end within the line
            # timeout.  A new one starts the time afresh.
            if self._lineCall is None:
                self._lineCall = self.factory.clock.callLater(self.factory.lineTimeout, self._lineTimedOut)
            elif lines or fresh:
                self._lineCall.reset(self.factory.lineTimeout)

    def setLineMode(self, extra: bytes = b"") -> None:
        """
        Go back to line mode; C{extra}, already counted as received, is
        framed as lines.
        """
        self.line_mode = 1
        if extra:
            if self.session is None:
                self.frame(extra)
            else:
                self.session.dataReceived(extra)

    def linesReceived(self, lines: Sequence[bytes]) -> None:
        """
        Lines received together: record them, or hand them to the session.
        """
        if self.session is None:
            self.record(lines)
        else:
            self.session.lines(lines)

    def record(self, lines: Sequence[bytes]) -> None:
        """
        Record a batch of lines received now, within C{--max-rate}.

        @param lines: lines without their terminators, in order.
        """
        self.lineCount += len(lines)
        self.factory.hub.received(self.context, lines)
        if self._rate is not None:
            self._limitRate(len(lines))

    def _limitRate(self, count: int) -> None:
        """
        C{--max-rate}: past the rate, stop reading until the debt is paid.
        """
        assert self._rate is not None
        delay = self._rate.charge(count, self.factory.clock.seconds())
        if delay > 0 and self._rateCall is None:
            self.factory.counters.rateDelays += 1
            self.pauseReading("rate")
            self._rateCall = self.factory.clock.callLater(delay, self._rateResume)

    def _rateResume(self) -> None:
        self._rateCall = None
        self.resumeReading("rate")

    def lineReceived(self, line: bytes) -> None:
        """
        Record one line.
        """
        self.linesReceived([line])

    def lineLengthExceeded(self, line: bytes) -> None:
        """
        Never called by this protocol's own framing; kept so that code using
        L{LineReceiver}'s machinery does not drop the connection silently.
        """
        self.linesReceived([line])

    def drain(self, done: Callable[[], None]) -> None:
        """
        A shutdown is reading what this client sent before it: call
        C{done()} once, when this connection is finished or lost.
        """
        if self.session is not None:
            self.session.drain()
        self._drained = done

    def _drainDone(self) -> None:
        done, self._drained = self._drained, None
        if done is not None:
            done()

    def finish(self, reason: str) -> None:
        """
        Record what is left, leave the hub, and close the connection.

        Input that arrives later is ignored.
        """
        if self._finished:
            return
        if self.session is not None:
            self.session.finishing(reason)
        self._finished = True
        self.setTimeout(None)
        self._stopLineTimer()
        if self._rateCall is not None:
            if self._rateCall.active():
                self._rateCall.cancel()
            self._rateCall = None
        framer = self.framer
        factory = self.factory
        if framer is not None:
            rest = framer.finish()
            if rest:
                self.linesReceived(rest)
            counters = factory.counters
            counters.oversizeLines += framer.oversizeLines
            counters.droppedBytes += framer.droppedBytes
        factory.hub.disconnected(self.context)
        self._drainDone()
        connectionLogger = factory.connectionLogger
        if connectionLogger is not None:
            connectionLogger.disconnected(self.context, self.lineCount, reason, self._connectionLogged)
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Record a last unterminated line, and log the disconnection.
        """
        if self.session is not None:
            self.session.lost(reason)
        if self._awaitingProxyHeader:
            self._proxyHeaderMissing()
        if not self._finished:
            self.finish(reason.getErrorMessage())
        else:
            self._drainDone()
