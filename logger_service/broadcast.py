"""
Broadcast: delivering a room's messages to its members.

L{IBroadcast} is the seam for rooms that span processes: a broadcast that
publishes through a message bus and delivers what it receives to the local
members is a new class providing it.  L{LocalBroadcast} serves the members
of one process, and does the work once per reactor turn rather than once
per message and recipient: the messages a room got during a turn are joined
into one block of bytes, which every member receives in one write (a member
that sent some of them gets the block without its own).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import Interface, implementer

if TYPE_CHECKING:
    from .chat import Member, Room


class IBroadcast(Interface):
    """
    Delivers bytes to the members of a room.
    """

    def publish(room: Room, data: bytes, exclude: Optional[Member]) -> None:
        """
        Deliver C{data} to every member of C{room} except C{exclude}, soon,
        after everything published to that room before it.
        """

    def flush() -> None:
        """
        Deliver everything published so far, now.
        """


@implementer(IBroadcast)
class LocalBroadcast:
    """
    Deliver to the members of rooms in this process, once per reactor turn.

    Each member's C{client} must have a C{deliver(data: bytes)} method.

    @ivar deliveries: messages delivered to members so far.
    """

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self.deliveries = 0
        self._outboxes: Dict[Room, List[Tuple[Optional[Member], bytes]]] = {}
        self._call: Optional[IDelayedCall] = None

    def publish(self, room: Room, data: bytes, exclude: Optional[Member]) -> None:
        """
        Queue C{data} for C{room}; it goes out at the end of this turn.
        """
        outbox = self._outboxes.get(room)
        if outbox is None:
            outbox = self._outboxes[room] = []
        outbox.append((exclude, data))
        if self._call is None:
            self._call = self.clock.callLater(0, self.flush)

    def flush(self) -> None:
        """
        Deliver every queued message.
        """
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        outboxes, self._outboxes = self._outboxes, {}
        for room, outbox in outboxes.items():
            self._deliver(room, outbox)

    def _deliver(self, room: Room, outbox: List[Tuple[Optional[Member], bytes]]) -> None:
        members = list(room.members.values())
        if not members:
            return
        blob = b"".join([data for _, data in outbox])
        # Where each sender's own messages sit in the block.
        own: Dict[int, List[Tuple[int, int]]] = {}
        position = 0
        for sender, data in outbox:
            end = position + len(data)
            if sender is not None:
                own.setdefault(sender.id, []).append((position, end))
            position = end
        delivered = len(outbox) * len(members)
        for member in members:
            spans = own.get(member.id)
            if spans is None:
                member.client.deliver(blob)  # type: ignore[attr-defined]
                continue
            delivered -= len(spans)
            pieces = []
            position = 0
            for start, end in spans:
                if start > position:
                    pieces.append(blob[position:start])
                position = end
            if position < len(blob):
                pieces.append(blob[position:])
            if pieces:
                member.client.deliver(b"".join(pieces))  # type: ignore[attr-defined]
        self.deliveries += delivered
