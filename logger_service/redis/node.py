"""
What the parts of one node share: its id, its link to Redis, its own members and its chat state.

Entries read from Redis name members by id (a sender to leave out, the
target of a private message); a reply that arrives after its member left
must go nowhere (L{LocalMembers}).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterator, Optional

from twisted.internet.interfaces import IReactorTime

from ..chatsession import encode
from ..chatstate import ChatState, Member
from .connection import RedisLink


class LocalMembers:
    """
    The members connected to this node, by id.
    """

    def __init__(self) -> None:
        self._byID: Dict[int, Member] = {}

    def __len__(self) -> int:
        return len(self._byID)

    def __iter__(self) -> Iterator[Member]:
        return iter(list(self._byID.values()))

    def add(self, member: Member) -> None:
        """
        C{member} is here.
        """
        self._byID[member.id] = member

    def discard(self, member: Member) -> None:
        """
        C{member} left the chat.
        """
        self._byID.pop(member.id, None)

    def get(self, id: int) -> Optional[Member]:
        """
        The member here with this C{id}, if any.
        """
        return self._byID.get(id)

    def here(self, member: Member) -> bool:
        """
        Whether C{member} is still here.
        """
        return self._byID.get(member.id) is member

    def send(self, member: Member, data: bytes) -> None:
        """
        Send C{data} (encoded lines) to C{member}'s client.
        """
        member.client.deliver(data)

    def tell(self, member: Member, text: str) -> None:
        """
        Tell C{member} one line, if it is still here.
        """
        if self.here(member):
            self.send(member, encode(text))


@dataclass(frozen=True)
class Node:
    """
    One node of a cluster, as its parts (L{NodePart}s) see it.

    @ivar id: this node's id, new at each start: it marks the node's
        entries and keys.
    @ivar clock: the node's clock.
    @ivar link: the node's connections to Redis.
    @ivar members: the members connected to this node.
    @ivar state: the node's chat state (its rooms and nicknames).
    @ivar maxlen: the entries a room's stream keeps, about.
    """

    id: str
    clock: IReactorTime
    link: RedisLink
    members: LocalMembers
    state: ChatState
    maxlen: int


class NodePart:
    """
    A part of one node of a cluster (its room streams, its presence), with
    what every part works with: the L{Node}'s fields (its C{id} as
    C{nodeID}).
    """

    def __init__(self, node: Node) -> None:
        self.nodeID = node.id
        self.clock = node.clock
        self.link = node.link
        self.members = node.members
        self.state = node.state
        self.maxlen = node.maxlen
