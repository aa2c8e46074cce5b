"""
Chat mode (C{--chat}): each chat connection's session, between its socket
and the chat's state (L{logger_service.chatstate}).

L{Chat} is one chat: its state, its broadcast, its limits.  The logging
protocol of a chat connection hands its input to the connection's
L{ChatSession}, which records every line exactly as the protocol alone
would, then says it to the chat.  It keeps each client within its flood
limit by pausing that client's reading (lines are delayed, never dropped),
and bounds what waits to be sent to it: a client that stops reading and
lets more than C{sendq} bytes pile up is disconnected.
"""

from __future__ import annotations

from collections import deque
from typing import Deque, Optional, Sequence

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .broadcast import Encoder, IBroadcast, LocalBroadcast
from .chatstate import ChatState, Disconnect, Event, Member, ToMember, ToRoom
from .counters import Counters
from .interfaces import IChatMember, IMessageTransport, ISession, ISessionConnection
from .limits import TokenBucket
from .sendqueue import SendQueue
from .telnet import TelnetFilter

log = Logger()


def encode(text: str) -> bytes:
    """
    A line as the server sends it: UTF-8, ending with CRLF.
    """
    return (text + "\r\n").encode("utf-8")


class Chat:
    """
    One chat: its state, its broadcast, its limits, its counters.

    @ivar state: rooms and members.
    @ivar broadcast: delivers room messages.
    @ivar counters: where the sessions count flood delays and slow
        consumers: the hub's, or the chat's own if none are given.
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
        counters: Optional[Counters] = None,
    ) -> None:
        self.clock = clock
        self.counters = counters if counters is not None else Counters()
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

    def session(self, connection: ISessionConnection) -> ChatSession:
        """
        The session of a new chat connection (a factory's C{sessions}): it
        joins the lobby.
        """
        return ChatSession(self, connection)

    def connect(self, id: int, client: IChatMember) -> Member:
        """
        Bring a new client, on the connection C{id}, into the lobby.
        """
        self.broadcast.flush()
        member, events = self.state.connect(id, client)
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
                event.member.client.deliver(encode(event.text))
            elif type(event) is Disconnect:
                event.member.client.quit(event.reason)


@implementer(ISession, IChatMember)
class ChatSession:
    """
    A chat connection's part in the chat: its lines are recorded, then said
    to its room.

    @ivar chat: the chat.
    @ivar connection: the connection, which records the lines.
    @ivar member: the client's chat member, C{None} once it has left.
    @ivar sendQueue: what waits to be sent to the client.
    @ivar encoder: how the client's transport encodes a turn's messages
        (a WebSocket's), or C{None}.
    """

    def __init__(self, chat: Chat, connection: ISessionConnection) -> None:
        self.chat = chat
        self.connection = connection
        transport = connection.transport
        # Chat lines are small and wanted now: do not let Nagle's algorithm
        # hold them for the reader's delayed ACK (tens of milliseconds).
        try:
            transport.setTcpNoDelay(True)
        except (AttributeError, OSError):
            pass
        self._messages: Optional[IMessageTransport] = None
        self.encoder: Optional[Encoder] = None
        if IMessageTransport.providedBy(transport):
            self._messages = transport
            self.encoder = transport.encodeMessages
        self._gone = False
        self._flooding = False
        self._held: Deque[bytes] = deque()
        self._release: Optional[IDelayedCall] = None
        self._bucket = TokenBucket(chat.floodRate, chat.floodBurst, chat.clock.seconds())
        # Made once the client sends a byte 0xFF (IAC), which only Telnet
        # commands and invalid UTF-8 hold: other clients never pay for a
        # filter.
        self._telnet: Optional[TelnetFilter] = None
        self._label: Optional[tuple[str, str]] = None
        self.sendQueue = SendQueue(transport, chat.sendq, self._slowConsumer)
        self.member: Optional[Member] = None
        self.member = chat.connect(connection.context.conn, self)
        self.changed()

    def changed(self) -> None:
        """
        The member's nickname or room may have changed: the connection's
        records carry the ones it has now.
        """
        member = self.member
        if member is not None and member.room is not None:
            label = (member.nick, member.room.name)
            if label != self._label:
                self._label = label
                self.connection.label({"nick": member.nick, "room": member.room.name})

    def dataReceived(self, data: bytes) -> None:
        """
        Take Telnet commands out of C{data}, have the connection frame the
        rest into lines, and answer the commands: a telnet user's keys
        (Ctrl-C sends C{IAC IP IAC DO TIMING-MARK}) are neither recorded nor
        shown to others.  The answers go after whatever the lines of this
        chunk brought the client, as a timing mark asks for.
        """
        telnet = self._telnet
        if telnet is None:
            if b"\xff" not in data:
                self.connection.frame(data)
                return
            telnet = self._telnet = TelnetFilter()
        commands = telnet.commands
        data, answers = telnet.feed(data)
        self.chat.telnetCommands += telnet.commands - commands
        if data:
            self.connection.frame(data)
        if answers:
            self.deliver(answers)

    def lines(self, lines: Sequence[bytes]) -> None:
        """
        Record the lines and say them, as fast as the flood limit allows;
        lines beyond it are recorded now and said later.

        Records carry the sender's nick and room at the time: a run of lines
        is recorded up to each command (which may change them), then said.
        """
        record = self.connection.record
        if self.member is None or self._held:
            record(lines)
            if self.member is not None:
                self._held.extend(lines)
            return
        allowed = self._bucket.take(len(lines), self.chat.clock.seconds())
        start = 0
        while start < allowed and self.member is not None:
            end = start
            while end < allowed and lines[end][:1] != b"/":
                end += 1
            end = min(end + 1, allowed)
            record(lines[start:end])
            self._say(lines[start:end])
            start = end
        if start < len(lines):
            record(lines[start:])
            if self.member is not None:
                self._held.extend(lines[start:])
                self._hold()

    def _say(self, lines: Sequence[bytes]) -> None:
        """
        Say already recorded lines to the chat.
        """
        chat = self.chat
        for line in lines:
            if self.member is None:
                return
            chat.say(self.member, line)
        self.changed()

    def _hold(self) -> None:
        """
        Pause reading until the bucket has a token for the next held line.
        """
        clock = self.chat.clock
        if not self._flooding:
            self._flooding = True
            self.chat.counters.floodDelays += 1
            self.connection.pauseReading("flood")
        self._release = clock.callLater(self._bucket.delay(clock.seconds()), self._releaseHeld)

    def _releaseHeld(self) -> None:
        self._release = None
        allowed = self._bucket.take(len(self._held), self.chat.clock.seconds())
        self._say([self._held.popleft() for _ in range(allowed)])
        if self.member is None:
            return
        if self._held:
            self._hold()
        else:
            self._flooding = False
            self.connection.resumeReading("flood")

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
            self.connection.resumeReading("flood")

    def deliver(self, data: bytes) -> None:
        """
        Send C{data} to this client, through its bounded queue.
        """
        if not self._gone:
            self.sendQueue.write(data)

    def deliverEncoded(self, data: bytes, encoded: bytes) -> None:
        """
        Send C{data}, whose encoding by the transport is C{encoded}.
        """
        if self._messages is not None:
            self._messages.encoded(data, encoded)
        self.deliver(data)

    def quit(self, reason: str) -> None:
        """
        The client left with C{/quit}: close once what it was sent is out.
        """
        self.member = None
        self._gone = True
        self.connection.transport.loseConnection()

    def _slowConsumer(self) -> None:
        self.chat.counters.slowConsumers += 1
        reason = f"not reading: over {self.chat.sendq} bytes unsent"
        context = self.connection.context
        log.warn("{peer} disconnected: {reason}", peer=context.peer, conn=context.conn, reason=reason)
        self._leave(reason)
        self.connection.transport.abortConnection()

    def _leave(self, reason: str) -> None:
        self._gone = True
        member, self.member = self.member, None
        self._stopHolding()
        if member is not None:
            self.chat.leave(member, reason)

    def drain(self) -> None:
        """
        At shutdown, read at full speed: stop holding this client's lines.
        """
        self._stopHolding()

    def finishing(self, reason: str) -> None:
        """
        Leave the chat; what looked like the start of a Telnet command is
        data after all, framed now.
        """
        if self.member is not None:
            self._leave(reason)
        if self._telnet is not None:
            rest = self._telnet.finish()
            if rest:
                self.connection.frame(rest)

    def lost(self, reason: Failure) -> None:
        """
        Leave the chat with the reason the connection ended.
        """
        self.sendQueue.stopProducing()
        if self.member is not None:
            self._leave("connection closed" if reason.check(ConnectionDone) else "connection lost")
