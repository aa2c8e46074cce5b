"""
The Redis broker: one node's L{IBroker}, composing the connection, the room streams and presence.

L{RedisBroker} is the Twisted service that starts and stops a node of a
cluster: it owns the node's L{RedisLink}, L{RoomStreams} and L{Presence},
hands the chat state (L{ClusterChatState}) what it asks of the cluster, and
shows the chat (and C{/metrics}) whether Redis answers.
"""

from __future__ import annotations

import os
from typing import Any, Generic, Optional, TypeVar, Union, overload

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from ..broadcast import LocalBroadcast
from ..broker import IBroker
from ..chatsession import Chat
from ..chatstate import Member, Room
from .connection import RedisLink
from .node import LocalMembers, Node
from .presence import Presence
from .state import ClusterChatState
from .streams import STREAM_LENGTH, Feed, RoomStreams

STOP_WAIT = 5.0
"""At shutdown, the longest wait for this node's members to have left."""

T = TypeVar("T")


class _OfLink(Generic[T]):
    """
    An attribute of a L{RedisBroker} that is its L{RedisLink}'s.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, broker: None, owner: object) -> _OfLink[T]: ...

    @overload
    def __get__(self, broker: RedisBroker, owner: object) -> T: ...

    def __get__(self, broker: Optional[RedisBroker], owner: object) -> Union[T, _OfLink[T]]:
        if broker is None:
            return self
        value: T = getattr(broker.link, self.name)
        return value

    def __set__(self, broker: RedisBroker, value: T) -> None:
        setattr(broker.link, self.name, value)


@implementer(IBroker)
class RedisBroker(Service):
    """
    Rooms shared through Redis by every node with the same URL and prefix.

    @ivar state: the chat state to give the L{Chat}.
    @ivar node: this node's id, new at each start.
    @ivar tag: this node's part of guest nicknames.
    @ivar local: delivers to this node's members.
    @ivar link: the connections to Redis, and whether it answers.
    @ivar streams: the rooms' streams: publishing and reading.
    @ivar presence: nicknames, rooms and heartbeats, cluster-wide.
    """

    def __init__(self, clock: IReactorTime, url: str, prefix: str = "linelogger", history: int = 20) -> None:
        self.clock = clock
        self.url = url
        self.prefix = prefix
        self.historySize = history
        self.maxlen = max(STREAM_LENGTH, 10 * history)
        self.node = os.urandom(6).hex()
        self.tag = os.urandom(2).hex()
        self.state = ClusterChatState(self, history)
        self.local = LocalBroadcast(clock)
        self.chat: Optional[Chat] = None
        self.members = LocalMembers()
        self.link = RedisLink(clock, url, prefix, self._up, self._down)
        parts = Node(self.node, clock, self.link, self.members, self.state, self.maxlen)
        self.streams = RoomStreams(parts, self.local, history)
        self.presence = Presence(parts, self._renamed)

    # What the chat and /metrics read

    redisUp: _OfLink[bool] = _OfLink("redisUp")
    """Whether Redis answers."""

    reconnects: _OfLink[int] = _OfLink("reconnects")
    """Times Redis answered again after being lost."""

    _redis: _OfLink[Any] = _OfLink("redis")
    """The connection commands go through (C{None} when stopped)."""

    @property
    def notRelayed(self) -> int:
        """
        Lines not relayed because too many waited for Redis.
        """
        return self.streams.notRelayed

    @property
    def deliveries(self) -> int:
        """
        Messages delivered to this node's members.
        """
        return self.local.deliveries

    # Service

    def attach(self, chat: Chat) -> None:
        """
        Serve C{chat}, whose state must be L{state}.
        """
        self.chat = chat

    def startService(self) -> None:
        """
        Connect (in the background) and start the heartbeat and the reader.
        """
        Service.startService(self)
        self.link.connect()
        self.presence.start()
        self.streams.read()

    def stopService(self) -> Deferred[None]:
        """
        Publish what this node's members say as they leave (the listeners
        and the drain stop at the same time, and close their connections),
        for up to L{STOP_WAIT} seconds; then say goodbye (members still here
        leave, C{server stopped}) and disconnect.
        """
        Service.stopService(self)
        self.link.stop()
        self.presence.stop()
        done: Deferred[None] = Deferred()
        if not self.link.redisUp:
            self.link.disconnect().addCallback(lambda _: done.callback(None))
            return done
        deadline = self.clock.seconds() + STOP_WAIT

        def step() -> None:
            busy = self.members or self.streams.busy
            if busy and self.link.redisUp and self.clock.seconds() < deadline:
                self.flush()
                self.clock.callLater(0.02, step)
                return
            bye = self.presence.bye()
            bye.addErrback(lambda f: None)
            timeout = self.clock.callLater(2.0, bye.cancel)
            bye.addBoth(lambda _: timeout.cancel() if timeout.active() else None)
            bye.addBoth(lambda _: self.link.disconnect().addCallback(lambda _: done.callback(None)))

        step()
        return done

    def _up(self) -> None:
        self.presence.resync()
        self.streams.schedule()

    def _down(self) -> None:
        # This node's members keep hearing each other meanwhile.
        self.streams.deliverWaiting()

    # Members (what the chat state tells and asks)

    def entering(self, member: Member, room: Room) -> Feed:
        """
        C{member} is entering C{room} here: deliver the room here (reading
        its history first, then replaying it to those waiting for it).
        """
        self.members.add(member)
        return self.streams.follow(room, member)

    def entered(self, member: Member, room: Room) -> None:
        """
        C{member} entered C{room} here: record it in Redis.
        """
        self.presence.register([member])

    def left(self, member: Member, room: Room) -> None:
        """
        C{member} left C{room}.
        """
        self.streams.forget(member, room)
        self.presence.removed(member, room, gone=False)

    def gone(self, member: Member) -> None:
        """
        C{member} left the chat.
        """
        self.members.discard(member)
        self.presence.removed(member, None, gone=True)

    def rename(self, member: Member, nick: str) -> None:
        """
        Claim C{nick} for C{member} cluster-wide; take it here if that works.
        """
        self.presence.rename(member, nick)

    def _renamed(self, member: Member, nick: str) -> None:
        if self.chat is not None:
            self.chat.dispatch(self.state.applyNick(member, nick))
            member.client.changed()

    def who(self, member: Member, room: Room) -> None:
        """
        Tell C{member} who is in C{room}, on every node.
        """
        self.presence.who(member, room)

    def rooms(self, member: Member) -> None:
        """
        Tell C{member} which rooms exist, on every node.
        """
        self.presence.rooms(member)

    def privateMessage(self, member: Member, nick: str, data: bytes, text: str) -> None:
        """
        Send C{data} to whoever holds C{nick}, on whichever node.
        """
        self.presence.privateMessage(member, nick, data, text)

    # Publishing (IBroadcast)

    def publish(self, room: Room, data: bytes, exclude: Optional[Member]) -> None:
        """
        Publish C{data} (an event such as a join) to C{room}, on every node.
        """
        self.streams.enqueue(room, b"e", data, exclude)

    def publishMessage(self, room: Room, data: bytes, member: Member) -> None:
        """
        Publish what C{member} said to C{room}, on every node, and into its
        history.
        """
        self.streams.enqueue(room, b"m", data, member)

    def flush(self) -> None:
        """
        Publish what waits, now, unless a batch is already on its way.
        """
        self.streams.flush()
