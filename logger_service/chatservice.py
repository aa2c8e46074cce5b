"""
Chat mode (C{--chat}): the I/O side of L{logger_service.chat}.

L{ChatProtocol} records every line exactly as the logging protocol does,
then passes it to the chat.  It keeps each client within its flood limit by
pausing that client's transport (lines are delayed, never dropped), and
bounds what waits to be sent to it: a client that stops reading and lets
more than C{sendq} bytes pile up is disconnected.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Deque, List, Optional, Sequence

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime, ITransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .broadcast import IBroadcast, LocalBroadcast
from .chat import ChatState, Disconnect, Event, Member, ToMember, ToRoom
from .counters import Counters
from .factory import LineLoggerFactory
from .interfaces import IHub
from .limits import TokenBucket
from .protocol import LineLoggerProtocol
from .sendnow import sendNow
from .telnet import TelnetFilter

log = Logger()


def encode(text: str) -> bytes:
    """
    A line as the server sends it: UTF-8, ending with CRLF.
    """
    return (text + "\r\n").encode("utf-8")


@implementer(IPushProducer)
class SendQueue:
    """
    What waits to be sent to one client, bounded.

    Registered as a streaming producer on the client's transport: while the
    transport's own buffer is full it pauses us, and data waits here.
    Otherwise data goes out at once (L{sendNow}).  Once
    more than C{limit} bytes wait, C{overflow} is called.

    @ivar size: bytes waiting here.
    """

    def __init__(self, transport: ITransport, limit: int, overflow: Callable[[], None]) -> None:
        self.transport = transport
        self.limit = limit
        self.overflow = overflow
        self.paused = False
        self.size = 0
        self._queue: List[bytes] = []
        self._write = sendNow(transport)
        transport.registerProducer(self, True)  # type: ignore[attr-defined]

    def write(self, data: bytes) -> None:
        """
        Send C{data}, or queue it while the transport is full.
        """
        if not self.paused:
            self._write(data)
            return
        self._queue.append(data)
        self.size += len(data)
        if self.size > self.limit:
            self.overflow()

    def pauseProducing(self) -> None:
        """
        The transport's buffer is full: queue from now on.
        """
        self.paused = True

    def resumeProducing(self) -> None:
        """
        The transport has room again: hand it what waits.
        """
        self.paused = False
        if self._queue:
            data = b"".join(self._queue)
            self._queue = []
            self.size = 0
            self._write(data)

    def stopProducing(self) -> None:
        """
        The connection is going: drop what waits.
        """
        self.paused = True
        self._queue = []
        self.size = 0


class ChatService:
    """
    One chat: its state, its broadcast, its limits, its counters.

    @ivar state: rooms and members.
    @ivar broadcast: delivers room messages.
    @ivar telnetCommands: Telnet commands taken out of clients' input (and
        answered where they ask for an answer).
    """

    def __init__(
        self,
        clock: IReactorTime,
        history: int = 20,
        floodRate: float = 2.0,
        floodBurst: int = 5,
        sendq: int = 262144,
        broadcast: Optional[IBroadcast] = None,
        state: Optional[ChatState] = None,
    ) -> None:
        self.clock = clock
        self.state = state if state is not None else ChatState(history)
        self.broadcast: IBroadcast = broadcast if broadcast is not None else LocalBroadcast(clock)
        self.floodRate = floodRate
        self.floodBurst = floodBurst
        self.sendq = sendq
        self.telnetCommands = 0

    def register(self, counters: Counters) -> None:
        """
        Register what C{counters} read of the chat: its members, rooms and
        deliveries, and with C{--redis} the Redis broker's own counts.
        """
        state, broadcast = self.state, self.broadcast
        counters.register("chatMembers", lambda: len(state.members))
        counters.register("chatRooms", lambda: len(state.rooms))
        counters.register("chatDeliveries", lambda: getattr(broadcast, "deliveries", None))
        if hasattr(broadcast, "redisUp"):
            counters.register("redisUp", lambda: int(broadcast.redisUp))
            counters.register("redisReconnects", lambda: broadcast.reconnects)  # type: ignore[attr-defined]
            counters.register("redisNotRelayed", lambda: broadcast.notRelayed)  # type: ignore[attr-defined]

    def connect(self, client: ChatProtocol) -> Member:
        """
        Bring a new client into the lobby.
        """
        self.broadcast.flush()
        member, events = self.state.connect(client.context.conn, client)
        self.dispatch(events)
        return member

    def say(self, member: Member, line: bytes) -> None:
        """
        C{member} sent C{line}.
        """
        if line[:1] == b"/" and line[:2] != b"//":
            # Commands may change who is in which room: deliver what was said
            # before under the membership it was said to.
            self.broadcast.flush()
        self.dispatch(self.state.say(member, line))

    def leave(self, member: Member, reason: str) -> None:
        """
        C{member}'s connection is gone.
        """
        self.broadcast.flush()
        self.dispatch(self.state.disconnect(member, reason))

    def dispatch(self, events: Sequence[Event]) -> None:
        """
        Send each event's text to whom it concerns.
        """
        for event in events:
            if type(event) is ToRoom:
                self.broadcast.publish(event.room, encode(event.text), event.exclude)
            elif type(event) is ToMember:
                event.member.client.deliver(encode(event.text))  # type: ignore[attr-defined]
            elif type(event) is Disconnect:
                event.member.client.quit(event.reason)  # type: ignore[attr-defined]


class ChatFactory(LineLoggerFactory):
    """
    Builds L{ChatProtocol}s sharing one L{ChatService}.
    """

    def __init__(self, hub: IHub, chat: ChatService, **settings: Any) -> None:
        LineLoggerFactory.__init__(self, hub, **settings)
        self.chat = chat

    def buildProtocol(self, addr: object) -> ChatProtocol:  # type: ignore[override]
        """
        Build a chat protocol for a new connection.
        """
        protocol = ChatProtocol()
        protocol.factory = self
        return protocol


class ChatProtocol(LineLoggerProtocol):
    """
    A chat client: its lines are recorded, then said to its room.

    @ivar member: the client's chat member, C{None} once it has left.
    """

    factory: ChatFactory

    def __init__(self) -> None:
        LineLoggerProtocol.__init__(self)
        # After the recorder's attributes, always in this order, so that
        # every connection's attributes share one set of keys.
        self.member: Optional[Member] = None
        self.sendQueue: Optional[SendQueue] = None
        # Made for a client once it sends a byte 0xFF (IAC), which only
        # Telnet commands and invalid UTF-8 hold: other clients never pay
        # for a filter.
        self._telnet: Optional[TelnetFilter] = None

    def connectionStarted(self) -> None:
        """
        Record as usual, then join the lobby.
        """
        LineLoggerProtocol.connectionStarted(self)
        if self._finished:
            return  # refused
        chat = self.factory.chat
        # Chat lines are small and wanted now: do not let Nagle's algorithm
        # hold them for the reader's delayed ACK (tens of milliseconds).
        setTcpNoDelay = getattr(self.transport, "setTcpNoDelay", None)
        if setTcpNoDelay is not None:
            try:
                setTcpNoDelay(True)
            except OSError:
                pass
        self._gone = False
        self._flooding = False
        self._held: Deque[bytes] = deque()
        self._release: Optional[IDelayedCall] = None
        self._bucket = TokenBucket(chat.floodRate, chat.floodBurst, chat.clock.seconds())
        self.sendQueue = SendQueue(self.transport, chat.sendq, self._slowConsumer)
        self.member = chat.connect(self)
        self._updateContext()

    def _updateContext(self) -> None:
        member = self.member
        if member is not None and member.room is not None:
            extra = self.context.extra
            if extra is None or extra["nick"] != member.nick or extra["room"] != member.room.name:
                self.context.extra = {"nick": member.nick, "room": member.room.name}

    def _frame(self, data: bytes) -> None:
        """
        Take Telnet commands out of C{data}, frame the rest into lines, and
        answer the commands: a telnet user's keys (Ctrl-C sends C{IAC IP IAC
        DO TIMING-MARK}) are neither recorded nor shown to others.  The
        answers go after whatever the lines of this chunk brought the
        client, as a timing mark asks for.
        """
        telnet = self._telnet
        if telnet is None:
            if b"\xff" not in data:
                LineLoggerProtocol._frame(self, data)
                return
            telnet = self._telnet = TelnetFilter()
        commands = telnet.commands
        data, answers = telnet.feed(data)
        self.factory.chat.telnetCommands += telnet.commands - commands
        if data:
            LineLoggerProtocol._frame(self, data)
        if answers:
            self.deliver(answers)

    def linesReceived(self, lines: Sequence[bytes]) -> None:
        """
        Record the lines and say them, as fast as the flood limit allows;
        lines beyond it are recorded now and said later.

        Records carry the sender's nick and room at the time: a run of lines
        is recorded up to each command (which may change them), then said.
        """
        if self.member is None or self._held:
            LineLoggerProtocol.linesReceived(self, lines)
            if self.member is not None:
                self._held.extend(lines)
            return
        chat = self.factory.chat
        allowed = self._bucket.take(len(lines), chat.clock.seconds())
        start = 0
        while start < allowed and self.member is not None:
            end = start
            while end < allowed and lines[end][:1] != b"/":
                end += 1
            end = min(end + 1, allowed)
            LineLoggerProtocol.linesReceived(self, lines[start:end])
            self._say(lines[start:end])
            start = end
        if start < len(lines):
            LineLoggerProtocol.linesReceived(self, lines[start:])
            if self.member is not None:
                self._held.extend(lines[start:])
                self._hold()

    def _say(self, lines: Sequence[bytes]) -> None:
        """
        Say already recorded lines to the chat.
        """
        chat = self.factory.chat
        for line in lines:
            if self.member is None:
                return
            chat.say(self.member, line)
        self._updateContext()

    def _hold(self) -> None:
        """
        Pause reading until the bucket has a token for the next held line.
        """
        chat = self.factory.chat
        if not self._flooding:
            self._flooding = True
            self.factory.counters.floodDelays += 1
            self.pauseReading("flood")
        self._release = chat.clock.callLater(self._bucket.delay(chat.clock.seconds()), self._releaseHeld)

    def _releaseHeld(self) -> None:
        self._release = None
        allowed = self._bucket.take(len(self._held), self.factory.chat.clock.seconds())
        self._say([self._held.popleft() for _ in range(allowed)])
        if self.member is None:
            return
        if self._held:
            self._hold()
        else:
            self._flooding = False
            self.resumeReading("flood")

    def _stopHolding(self) -> None:
        """
        Forget held lines (they are recorded) and read at full speed again.
        """
        if self._release is not None:
            if self._release.active():
                self._release.cancel()
            self._release = None
        self._held.clear()
        if self._flooding:
            self._flooding = False
            self.resumeReading("flood")

    def deliver(self, data: bytes) -> None:
        """
        Send C{data} to this client, through its bounded queue.
        """
        if not self._gone and self.sendQueue is not None:
            self.sendQueue.write(data)

    def quit(self, reason: str) -> None:
        """
        The client left with C{/quit}: close once what it was sent is out.
        """
        self.member = None
        self._gone = True
        self.transport.loseConnection()

    def _slowConsumer(self) -> None:
        chat = self.factory.chat
        self.factory.counters.slowConsumers += 1
        reason = f"not reading: over {chat.sendq} bytes unsent"
        log.warn("{peer} disconnected: {reason}", peer=self.context.peer, conn=self.context.conn, reason=reason)
        self._leave(reason)
        self.transport.abortConnection()

    def _leave(self, reason: str) -> None:
        self._gone = True
        member, self.member = self.member, None
        self._stopHolding()
        if member is not None:
            self.factory.chat.leave(member, reason)

    def finish(self, reason: str) -> None:
        """
        Leave the chat, then record what is left and close.
        """
        if self.member is not None:
            self._leave(reason)
        if self._telnet is not None and not self._finished:
            # The start of a command that never ended: data after all.
            rest = self._telnet.finish()
            if rest:
                LineLoggerProtocol._frame(self, rest)
        LineLoggerProtocol.finish(self, reason)

    def drain(self, done: Callable[[], None]) -> None:
        """
        At shutdown, read at full speed: stop holding this client's lines.
        """
        self._stopHolding()
        LineLoggerProtocol.drain(self, done)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """
        Leave the chat with the reason the connection ended.
        """
        if self.sendQueue is not None:
            self.sendQueue.stopProducing()
        if self.member is not None:
            self._leave("connection closed" if reason.check(ConnectionDone) else "connection lost")
        LineLoggerProtocol.connectionLost(self, reason)
