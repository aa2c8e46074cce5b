"""
The chat state of a node of a cluster: nicknames, rooms and messages that are the cluster's, not this process's.

L{ClusterChatState} is the pure L{ChatState} with its changes told to, and
its questions (C{/who}, C{/rooms}, C{/msg}, C{/nick}) asked of, the
node's L{Cluster} (L{logger_service.redis.broker.RedisBroker}).  Rooms
keep no history here: the cluster replays it.  While Redis is out of
reach, commands answer for this node alone, and say so.
"""

from __future__ import annotations

from typing import List, Optional, Protocol

from ..chatsession import encode
from ..chatstate import NICK_CONTROLS, NICK_PATTERN, ChatState, Event, Member, Room, ToMember, foldName
from .streams import Feed


class Cluster(Protocol):
    """
    What a L{ClusterChatState} tells and asks its node.
    """

    @property
    def tag(self) -> str:
        """This node's part of guest nicknames."""

    @property
    def redisUp(self) -> bool:
        """Whether Redis answers."""

    def entering(self, member: Member, room: Room) -> Feed:
        """C{member} is entering C{room} here."""

    def entered(self, member: Member, room: Room) -> None:
        """C{member} entered C{room} here."""

    def left(self, member: Member, room: Room) -> None:
        """C{member} left C{room}."""

    def gone(self, member: Member) -> None:
        """C{member} left the chat."""

    def publishMessage(self, room: Room, data: bytes, member: Member) -> None:
        """Publish what C{member} said to C{room}."""

    def rename(self, member: Member, nick: str) -> None:
        """Claim C{nick} for C{member}, cluster-wide."""

    def who(self, member: Member, room: Room) -> None:
        """Tell C{member} who is in C{room}, on every node."""

    def rooms(self, member: Member) -> None:
        """Tell C{member} which rooms exist, on every node."""

    def privateMessage(self, member: Member, nick: str, data: bytes, text: str) -> None:
        """Send C{data} to whoever holds C{nick}, on whichever node."""


class ClusterChatState(ChatState):
    """
    L{ChatState} whose nicknames, rooms and messages are the cluster's:
    it tells its L{Cluster} what changes, and asks it for what other
    nodes know.  Rooms keep no history here: the cluster replays it.
    """

    def __init__(self, broker: Cluster, historySize: int) -> None:
        self.broker = broker
        ChatState.__init__(self, 0)
        self.replaySize = historySize

    def _guestNick(self) -> str:
        while True:
            nick = f"{ChatState._guestNick(self)}-{self.broker.tag}"
            if foldName(nick) not in self.members:
                return nick

    def _enter(self, member: Member, room: Room) -> List[Event]:
        feed = self.broker.entering(member, room)
        if feed.lastID is not None:
            # The room's history as this node delivered it: replayed in place.
            room.history = feed.history
        events = ChatState._enter(self, member, room)
        self.broker.entered(member, room)
        return events

    def _leave(self, member: Member, reason: str) -> List[Event]:
        room: Optional[Room] = member.room
        events = ChatState._leave(self, member, reason)
        if room is not None:
            self.broker.left(member, room)
        return events

    def disconnect(self, member: Member, reason: str) -> List[Event]:
        """
        C{member} is gone: free its nickname cluster-wide too.
        """
        events = ChatState.disconnect(self, member, reason)
        self.broker.gone(member)
        return events

    def _toRoom(self, member: Member, text: str) -> List[Event]:
        room = member.room
        assert room is not None
        self.broker.publishMessage(room, encode(text), member)
        return []

    def _cmd_nick(self, member: Member, argument: str, line: bytes) -> List[Event]:
        if (
            not argument
            or NICK_CONTROLS.search(line)
            or not NICK_PATTERN.match(argument)
            or argument == member.nick
            or self.members.get(foldName(argument), member) is not member
        ):
            return ChatState._cmd_nick(self, member, argument, line)
        if foldName(argument) == foldName(member.nick):
            return ChatState._cmd_nick(self, member, argument, line)
        if not self.broker.redisUp:
            return [ToMember(member, "! Nickname changes wait for the chat cluster, out of reach now: try again soon.")]
        self.broker.rename(member, argument)
        return []

    def applyNick(self, member: Member, nick: str) -> List[Event]:
        """
        The cluster gave C{member} the nickname C{nick}: take it here.
        """
        return ChatState._cmd_nick(self, member, nick, nick.encode("utf-8"))

    def _cmd_who(self, member: Member, argument: str, line: bytes) -> List[Event]:
        if not self.broker.redisUp:
            return self._local(ChatState._cmd_who(self, member, argument, line))
        assert member.room is not None
        self.broker.who(member, member.room)
        return []

    def _cmd_rooms(self, member: Member, argument: str, line: bytes) -> List[Event]:
        if not self.broker.redisUp:
            return self._local(ChatState._cmd_rooms(self, member, argument, line))
        self.broker.rooms(member)
        return []

    def _cmd_msg(self, member: Member, argument: str, line: bytes) -> List[Event]:
        nick, _, text = argument.partition(" ")
        text = text.strip()
        if not nick or not text or foldName(nick) in self.members or not self.broker.redisUp:
            return ChatState._cmd_msg(self, member, argument, line)
        self.broker.privateMessage(member, nick, encode(f"*{member.nick}* {text}"), text)
        return []

    def _local(self, events: List[Event]) -> List[Event]:
        return [
            ToMember(e.member, e.text + " (this server only: the chat cluster is out of reach)")
            if isinstance(e, ToMember)
            else e
            for e in events
        ]
