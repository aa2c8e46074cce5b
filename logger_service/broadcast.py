"""
Broadcast: delivering a room's messages to its members.

L{IBroadcast} is the seam for rooms that span processes: a broadcast that
publishes through a message bus and delivers what it receives to the local
members is a new class providing it.  L{LocalBroadcast} serves the members
of one process, and does the work once per reactor turn rather than once
per message and recipient: the messages a room got during a turn are joined
into one block of bytes, which every member receives in one write (a member
that sent some of them gets the block without its own).

A member whose client sends lines in another form (a WebSocket's text
frames) may say how, so that a member that sent some of the messages gets
the room's encoded block without them, encoded once per room and turn,
rather than a block of its own to encode (see L{LocalBroadcast}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

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


Encoder = Callable[[bytes, Sequence[bytes]], Optional[Tuple[bytes, List[int]]]]
"""
How a client sends a turn's messages: given the turn's block and its
messages, the messages encoded and joined, and where each encoded message
ends in that (after a 0); or C{None} when the messages cannot be encoded
one by one (the client then gets plain bytes, L{LocalBroadcast}).
"""


@implementer(IBroadcast)
class LocalBroadcast:
    """
    Deliver to the members of rooms in this process, once per reactor turn.

    Each member's C{client} must have a C{deliver(data: bytes)} method.  Its
    class may also have an C{encodeMessages} function (an L{Encoder}) and a
    C{deliverEncoded(data: bytes, encoded: bytes)} method: a member that
    sent some of a turn's messages then gets the others' through
    C{deliverEncoded}, with their encoding cut out of the turn's messages
    encoded once (the members that sent none get the turn's block, whose
    encoding their clients can remember).

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
        # Where each message ends in the block, and which are whose.
        bounds = [0]
        own: Dict[int, List[int]] = {}
        position = 0
        for index, (sender, data) in enumerate(outbox):
            position += len(data)
            bounds.append(position)
            if sender is not None:
                own.setdefault(sender.id, []).append(index)
        encoded: Dict[Encoder, Optional[Tuple[bytes, List[int]]]] = {}
        delivered = len(outbox) * len(members)
        for member in members:
            spans = own.get(member.id)
            if spans is None:
                member.client.deliver(blob)  # type: ignore[attr-defined]
                continue
            delivered -= len(spans)
            client: Any = member.client
            encode: Optional[Encoder] = getattr(type(client), "encodeMessages", None)
            turn = None
            if encode is not None:
                # Cut out of the turn's messages encoded once, not encoded anew.
                if encode in encoded:
                    turn = encoded[encode]
                else:
                    turn = encoded[encode] = encode(blob, [data for _, data in outbox])
            data = _without(blob, bounds, spans)
            if not data:
                continue
            if turn is None:
                client.deliver(data)
            else:
                client.deliverEncoded(data, _without(turn[0], turn[1], spans))
        self.deliveries += delivered


def _without(block: bytes, bounds: List[int], indexes: List[int]) -> bytes:
    """
    C{block} without the messages at C{indexes} (in order): message C{i} is
    C{block[bounds[i]:bounds[i + 1]]}.
    """
    pieces = []
    position = 0
    for index in indexes:
        start = bounds[index]
        if start > position:
            pieces.append(block[position:start])
        position = bounds[index + 1]
    if position < len(block):
        pieces.append(block[position:])
    return b"".join(pieces)
