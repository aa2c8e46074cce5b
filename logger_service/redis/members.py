"""
This node's own members of a cluster's chat, by id, and sending to them.

Entries read from Redis name members by id (a sender to leave out, the
target of a private message); a reply that arrives after its member left
must go nowhere.
"""

from __future__ import annotations

from typing import Dict, Iterator, Optional

from ..chat import Member
from ..chatservice import encode


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
        member.client.deliver(data)  # type: ignore[attr-defined]

    def tell(self, member: Member, text: str) -> None:
        """
        Tell C{member} one line, if it is still here.
        """
        if self.here(member):
            self.send(member, encode(text))
