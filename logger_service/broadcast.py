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
frames) says how (its C{encoder}), so that a member that sent some of the messages gets
the room's encoded block without them, encoded once per room and turn,
rather than a block of its own to encode (see L{LocalBroadcast}).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import Interface, implementer

if TYPE_CHECKING:
    from .chatstate import Member, Room
    from .interfaces import IChatMember


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

    Each member's C{client} is an L{IChatMember}.  One whose C{encoder} (an
    L{Encoder}) is not C{None}, having sent some of a turn's messages, gets
    the others' through C{deliverEncoded}, with their encoding cut out of
    the turn's messages encoded once (the members that sent none get the
    turn's block, whose encoding their clients can remember).

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
        encoded: Optional[_Encoded] = None
        for member in members:
            spans = own.get(member.id)
            client = member.client
            if spans is None:
                client.deliver(blob)
                continue
            delivered -= len(spans)
            encode = client.encoder
            if encode is not None:
                if encoded is None:
                    encoded = _Encoded(blob, outbox)
                encoded.deliver(client, encode, spans)
                continue
            data = _without(blob, spans)
            if data:
                client.deliver(data)
        self.deliveries += delivered


class _Encoded:
    """
    A room's messages of one turn, as each encoder encodes them (once).
    """

    def __init__(self, blob: bytes, outbox: List[Tuple[Optional[Member], bytes]]) -> None:
        self.blob = blob
        self.messages = [data for _, data in outbox]
        self.encodings: Dict[Encoder, Optional[Tuple[bytes, List[int]]]] = {}
        # Which message starts where: a message is known by its span, and
        # spans tell messages apart unless some are empty (then nothing is
        # encoded).
        self.index: Optional[Dict[int, int]] = {}
        position = 0
        for index, message in enumerate(self.messages):
            if not message:
                self.index = None
                break
            self.index[position] = index
            position += len(message)

    def deliver(self, client: IChatMember, encode: Encoder, spans: List[Tuple[int, int]]) -> None:
        """
        Deliver to C{client} the messages not at C{spans}, with their
        encoding by C{encode}.
        """
        index = self.index
        if encode in self.encodings:
            encoding = self.encodings[encode]
        elif index is None:
            encoding = self.encodings[encode] = None
        else:
            encoding = self.encodings[encode] = encode(self.blob, self.messages)
        data = _without(self.blob, spans)
        if not data:
            return
        if encoding is None or index is None:
            client.deliver(data)
            return
        block, bounds = encoding
        encoded = [(bounds[index[start]], bounds[index[start] + 1]) for start, _ in spans]
        client.deliverEncoded(data, _without(block, encoded))


def _without(block: bytes, spans: List[Tuple[int, int]]) -> bytes:
    """
    C{block} without the parts at C{spans} (in order).
    """
    pieces = []
    position = 0
    for start, end in spans:
        if start > position:
            pieces.append(block[position:start])
        position = end
    if position < len(block):
        pieces.append(block[position:])
    return b"".join(pieces)
