"""
Tests for L{logger_service.broadcast}: delivering a room's messages once per
reactor turn.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from logger_service.broadcast import IBroadcast, LocalBroadcast
from logger_service.chatstate import Member, Room

from .chatclients import RecordingClient

PROPERTY = settings(max_examples=200, deadline=None)


def bracket(block: bytes, messages: Sequence[bytes]) -> Optional[Tuple[bytes, List[int]]]:
    """
    An encoder (L{logger_service.broadcast.Encoder}): each message in
    brackets; C{None} if a message says C{"plain"}.  Each call is counted in
    L{EncodingClient.encodings}.
    """
    EncodingClient.encodings.append(list(messages))
    if b"plain" in messages:
        return None
    encoded = [b"[" + message + b"]" for message in messages]
    bounds = [0]
    for piece in encoded:
        bounds.append(bounds[-1] + len(piece))
    return b"".join(encoded), bounds


class EncodingClient(RecordingClient):
    """
    A member's client that sends messages in brackets, and remembers each
    C{deliverEncoded} call as C{(data, encoded)} in C{encoded}.

    @cvar encodings: the messages of each call to the encoder.
    """

    encodings: List[List[bytes]] = []
    encoder = staticmethod(bracket)

    def __init__(self) -> None:
        RecordingClient.__init__(self)
        self.encoded: List[Tuple[bytes, bytes]] = []

    def deliverEncoded(self, data: bytes, encoded: bytes) -> None:
        """
        Remember C{data} and C{encoded}.
        """
        self.encoded.append((data, encoded))


def received(member: Member) -> List[bytes]:
    """
    What C{member}'s recording client was given, call by call.
    """
    client = member.client
    assert isinstance(client, RecordingClient)
    return client.received


class BroadcastTestCase(SynchronousTestCase):
    """
    A L{LocalBroadcast} on a L{Clock}, and helpers to make rooms and members.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.broadcast = LocalBroadcast(self.clock)
        self.nextID = 0

    def room(self, name: str = "#room", size: int = 0) -> Tuple[Room, List[Member]]:
        """
        A room with C{size} members, each with a L{RecordingClient}.
        """
        room = Room(name, 10)
        return room, [self.join(room) for _ in range(size)]

    def join(self, room: Room) -> Member:
        """
        A new member in C{room}.
        """
        self.nextID += 1
        member = Member(self.nextID, f"m{self.nextID}", RecordingClient())
        member.room = room
        room.members[member.id] = member
        return member


class LocalBroadcastTests(BroadcastTestCase):
    """
    L{LocalBroadcast} batches a room's messages per reactor turn.
    """

    def test_interface(self) -> None:
        """
        L{LocalBroadcast} provides L{IBroadcast}.
        """
        self.assertTrue(verifyObject(IBroadcast, self.broadcast))

    def test_notAtOnce(self) -> None:
        """
        Nothing is delivered before the reactor turns.
        """
        room, [a, b] = self.room(size=2)
        self.broadcast.publish(room, b"hello\n", None)
        self.assertEqual(received(a), [])
        self.assertEqual(received(b), [])
        self.assertEqual(self.broadcast.deliveries, 0)

    def test_nextTurn(self) -> None:
        """
        After one turn, every member has the message.
        """
        room, [a, b] = self.room(size=2)
        self.broadcast.publish(room, b"hello\n", None)
        self.clock.advance(0)
        self.assertEqual(received(a), [b"hello\n"])
        self.assertEqual(received(b), [b"hello\n"])
        self.assertEqual(self.broadcast.deliveries, 2)

    def test_oneCallPerTurn(self) -> None:
        """
        The messages of one turn arrive in one call, in order.
        """
        room, [a, b] = self.room(size=2)
        for data in [b"one\n", b"two\n", b"three\n"]:
            self.broadcast.publish(room, data, None)
        self.clock.advance(0)
        self.assertEqual(received(a), [b"one\ntwo\nthree\n"])
        self.assertEqual(received(b), [b"one\ntwo\nthree\n"])
        self.assertEqual(self.broadcast.deliveries, 6)

    def test_withoutOwnMessages(self) -> None:
        """
        A member who sent some of the messages gets the others, in order.
        """
        room, [a, b, c] = self.room(size=3)
        self.broadcast.publish(room, b"a1\n", a)
        self.broadcast.publish(room, b"b1\n", b)
        self.broadcast.publish(room, b"a2\n", a)
        self.broadcast.publish(room, b"notice\n", None)
        self.broadcast.publish(room, b"a3\n", a)
        self.clock.advance(0)
        self.assertEqual(received(a), [b"b1\nnotice\n"])
        self.assertEqual(received(b), [b"a1\na2\nnotice\na3\n"])
        self.assertEqual(received(c), [b"a1\nb1\na2\nnotice\na3\n"])
        self.assertEqual(self.broadcast.deliveries, 2 + 4 + 5)

    def test_onlyOwnMessages(self) -> None:
        """
        A member whose messages were all the turn's gets no call at all.
        """
        room, [a, b] = self.room(size=2)
        self.broadcast.publish(room, b"x\n", a)
        self.broadcast.publish(room, b"y\n", a)
        self.clock.advance(0)
        self.assertEqual(received(a), [])
        self.assertEqual(received(b), [b"x\ny\n"])
        self.assertEqual(self.broadcast.deliveries, 2)

    def test_aloneInRoom(self) -> None:
        """
        Someone talking alone is delivered nothing, and nothing is counted.
        """
        room, [a] = self.room(size=1)
        self.broadcast.publish(room, b"anyone?\n", a)
        self.clock.advance(0)
        self.assertEqual(received(a), [])
        self.assertEqual(self.broadcast.deliveries, 0)

    def test_identicalMessages(self) -> None:
        """
        Only a member's own messages are cut out, not equal ones by others.
        """
        room, [a, b] = self.room(size=2)
        self.broadcast.publish(room, b"same\n", a)
        self.broadcast.publish(room, b"same\n", b)
        self.clock.advance(0)
        self.assertEqual(received(a), [b"same\n"])
        self.assertEqual(received(b), [b"same\n"])

    def test_excludedOutsider(self) -> None:
        """
        Excluding someone who is not in the room excludes no one.
        """
        room, [a, b] = self.room(size=2)
        other, [outsider] = self.room("#other", size=1)
        self.broadcast.publish(room, b"hi\n", outsider)
        self.clock.advance(0)
        self.assertEqual(received(a), [b"hi\n"])
        self.assertEqual(received(b), [b"hi\n"])
        self.assertEqual(received(outsider), [])
        self.assertEqual(self.broadcast.deliveries, 2)

    def test_flush(self) -> None:
        """
        L{LocalBroadcast.flush} delivers at once, and the turn then delivers
        nothing again.
        """
        room, [a, b] = self.room(size=2)
        self.broadcast.publish(room, b"now\n", a)
        self.broadcast.flush()
        self.assertEqual(received(b), [b"now\n"])
        self.assertEqual(self.broadcast.deliveries, 1)
        self.clock.advance(0)
        self.assertEqual(received(b), [b"now\n"])
        self.assertEqual(received(a), [])
        self.assertEqual(self.broadcast.deliveries, 1)

    def test_flushNothing(self) -> None:
        """
        Flushing with nothing queued delivers nothing.
        """
        room, [a] = self.room(size=1)
        self.broadcast.flush()
        self.clock.advance(0)
        self.assertEqual(received(a), [])
        self.assertEqual(self.broadcast.deliveries, 0)

    def test_publishAfterFlush(self) -> None:
        """
        What is published after a flush goes out on the next turn.
        """
        room, [a] = self.room(size=1)
        self.broadcast.publish(room, b"one\n", None)
        self.broadcast.flush()
        self.broadcast.publish(room, b"two\n", None)
        self.assertEqual(received(a), [b"one\n"])
        self.clock.advance(0)
        self.assertEqual(received(a), [b"one\n", b"two\n"])

    def test_successiveTurns(self) -> None:
        """
        Each turn's messages come in their own call.
        """
        room, [a] = self.room(size=1)
        self.broadcast.publish(room, b"one\n", None)
        self.clock.advance(0)
        self.broadcast.publish(room, b"two\n", None)
        self.broadcast.publish(room, b"three\n", None)
        self.clock.advance(0)
        self.assertEqual(received(a), [b"one\n", b"two\nthree\n"])
        self.assertEqual(self.broadcast.deliveries, 3)

    def test_roomsIndependent(self) -> None:
        """
        Each room's members get that room's messages only.
        """
        first, [a, b] = self.room("#first", size=2)
        second, [c] = self.room("#second", size=1)
        self.broadcast.publish(first, b"f1\n", a)
        self.broadcast.publish(second, b"s1\n", None)
        self.broadcast.publish(first, b"f2\n", None)
        self.clock.advance(0)
        self.assertEqual(received(a), [b"f2\n"])
        self.assertEqual(received(b), [b"f1\nf2\n"])
        self.assertEqual(received(c), [b"s1\n"])
        self.assertEqual(self.broadcast.deliveries, 1 + 2 + 1)

    def test_leftBeforeFlush(self) -> None:
        """
        A member who left the room before the turn gets nothing.
        """
        room, [a, b] = self.room(size=2)
        self.broadcast.publish(room, b"bye\n", None)
        del room.members[b.id]
        b.room = None
        self.clock.advance(0)
        self.assertEqual(received(a), [b"bye\n"])
        self.assertEqual(received(b), [])
        self.assertEqual(self.broadcast.deliveries, 1)

    def test_emptyRoom(self) -> None:
        """
        Messages to a room everyone has left go nowhere.
        """
        room, [a] = self.room(size=1)
        self.broadcast.publish(room, b"echo\n", None)
        del room.members[a.id]
        self.clock.advance(0)
        self.assertEqual(received(a), [])
        self.assertEqual(self.broadcast.deliveries, 0)

    def test_publishWhileDelivering(self) -> None:
        """
        A message published while delivering (a client replying) is
        delivered after the block that prompted it.
        """
        room, [a, b] = self.room(size=2)
        broadcast = self.broadcast

        class Replier(RecordingClient):
            def deliver(self, data: bytes) -> None:
                RecordingClient.deliver(self, data)
                if data == b"ping\n":
                    broadcast.publish(room, b"pong\n", b)

        b.client = Replier()
        broadcast.publish(room, b"ping\n", None)
        self.clock.advance(0)
        self.clock.advance(0)
        self.assertEqual(b"".join(received(a)), b"ping\npong\n")
        self.assertEqual(received(b), [b"ping\n"])
        self.assertEqual(broadcast.deliveries, 3)


class EncodedDeliveryTests(BroadcastTestCase):
    """
    Members whose clients encode what they send (L{EncodingClient}): those
    who sent some of a turn's messages get the others' cut out of the
    turn's messages encoded once.
    """

    def setUp(self) -> None:
        BroadcastTestCase.setUp(self)
        EncodingClient.encodings = []

    def encodingMember(self, room: Room) -> Member:
        """
        A new member in C{room} with an L{EncodingClient}.
        """
        member = self.join(room)
        member.client = EncodingClient()
        return member

    def test_encodedOncePerTurn(self) -> None:
        """
        Senders get the others' messages with their encodings, all cut out
        of one encoding of the turn; the others get the plain block.
        """
        room, [plain] = self.room(size=1)
        a, b, c = [self.encodingMember(room) for _ in range(3)]
        self.broadcast.publish(room, b"a1\n", a)
        self.broadcast.publish(room, b"b1\n", b)
        self.broadcast.publish(room, b"notice\n", None)
        self.broadcast.publish(room, b"a2\n", a)
        self.broadcast.publish(room, b"p1\n", plain)
        self.clock.advance(0)
        self.assertEqual(EncodingClient.encodings, [[b"a1\n", b"b1\n", b"notice\n", b"a2\n", b"p1\n"]])
        self.assertEqual(a.client.encoded, [(b"b1\nnotice\np1\n", b"[b1\n][notice\n][p1\n]")])  # type: ignore[attr-defined]
        self.assertEqual(
            b.client.encoded,  # type: ignore[attr-defined]
            [(b"a1\nnotice\na2\np1\n", b"[a1\n][notice\n][a2\n][p1\n]")],
        )
        self.assertEqual(received(a) + received(b), [])
        self.assertEqual(received(c), [b"a1\nb1\nnotice\na2\np1\n"])
        self.assertEqual(c.client.encoded, [])  # type: ignore[attr-defined]
        self.assertEqual(received(plain), [b"a1\nb1\nnotice\na2\n"])
        self.assertEqual(self.broadcast.deliveries, 3 + 4 + 5 + 4)

    def test_noEncodingWithoutSender(self) -> None:
        """
        Nothing is encoded when no member with an encoder sent anything.
        """
        room, [plain] = self.room(size=1)
        a = self.encodingMember(room)
        self.broadcast.publish(room, b"p1\n", plain)
        self.clock.advance(0)
        self.assertEqual(EncodingClient.encodings, [])
        self.assertEqual(received(a), [b"p1\n"])

    def test_onlyOwnMessages(self) -> None:
        """
        A sender of all the turn's messages gets no call.
        """
        room, [plain] = self.room(size=1)
        a = self.encodingMember(room)
        self.broadcast.publish(room, b"a1\n", a)
        self.clock.advance(0)
        self.assertEqual(a.client.encoded + received(a), [])  # type: ignore[attr-defined]
        self.assertEqual(received(plain), [b"a1\n"])

    def test_emptyMessage(self) -> None:
        """
        When a turn holds an empty message, nothing is encoded: the senders
        get plain bytes.
        """
        room, _ = self.room()
        a, b = self.encodingMember(room), self.encodingMember(room)
        self.broadcast.publish(room, b"a1\n", a)
        self.broadcast.publish(room, b"", a)
        self.broadcast.publish(room, b"b1\n", b)
        self.clock.advance(0)
        self.assertEqual(EncodingClient.encodings, [])
        self.assertEqual(received(a), [b"b1\n"])
        self.assertEqual(received(b), [b"a1\n"])
        self.assertEqual(self.broadcast.deliveries, 3)

    def test_cannotEncode(self) -> None:
        """
        When the encoder declines (C{None}), senders get plain bytes, and
        the encoder is still asked only once.
        """
        room, _ = self.room()
        a, b = self.encodingMember(room), self.encodingMember(room)
        self.broadcast.publish(room, b"plain", a)
        self.broadcast.publish(room, b"b1\n", b)
        self.clock.advance(0)
        self.assertEqual(len(EncodingClient.encodings), 1)
        self.assertEqual(received(a), [b"b1\n"])
        self.assertEqual(received(b), [b"plain"])
        self.assertEqual(a.client.encoded + b.client.encoded, [])  # type: ignore[attr-defined]


# A script: (room index, sender index or None, data) per publish.
SCRIPTS = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=1),
        st.one_of(st.none(), st.integers(min_value=0, max_value=2)),
        st.binary(min_size=0, max_size=6),
    ),
    max_size=30,
)


class BroadcastPropertyTests(BroadcastTestCase):
    """
    Properties of one turn over any sequence of publications.
    """

    @PROPERTY
    @given(SCRIPTS, st.booleans())
    def test_oneTurn(self, script: List[Tuple[int, Optional[int], bytes]], flush: bool) -> None:
        """
        After the turn (or a flush), each member has had at most one call:
        its room's messages not sent by itself, in order; and C{deliveries}
        counts each message once per member that is not its sender.
        """
        # setUp runs once for all of hypothesis's examples: start afresh.
        self.setUp()
        rooms = [self.room(f"#r{n}", size=3) for n in range(2)]
        expected: Dict[int, bytes] = {}
        count = 0
        for roomIndex, senderIndex, data in script:
            room, members = rooms[roomIndex]
            sender = None if senderIndex is None else members[senderIndex]
            self.broadcast.publish(room, data, sender)
            for member in members:
                if member is not sender:
                    expected[member.id] = expected.get(member.id, b"") + data
                    count += 1
        if flush:
            self.broadcast.flush()
        else:
            self.clock.advance(0)
        for _, members in rooms:
            for member in members:
                calls = received(member)
                self.assertLessEqual(len(calls), 1, calls)
                self.assertEqual(b"".join(calls), expected.get(member.id, b""))
        self.assertEqual(self.broadcast.deliveries, count)


class EncodedPropertyTests(BroadcastTestCase):
    """
    Members with and without encoders, over any sequence of publications.
    """

    @PROPERTY
    @given(SCRIPTS)
    def test_oneTurn(self, script: List[Tuple[int, Optional[int], bytes]]) -> None:
        """
        Each member gets its room's messages not sent by itself, in order,
        in at most one call; a member with an encoder that sent some of them
        gets them with the encoding of each; C{deliveries} is as without
        encoders.
        """
        self.setUp()
        EncodingClient.encodings = []
        rooms = [self.room(f"#r{n}", size=3) for n in range(2)]
        for _, members in rooms:
            members[0].client = EncodingClient()
            members[1].client = EncodingClient()
        expected: Dict[int, List[bytes]] = {}
        count = 0
        for roomIndex, senderIndex, data in script:
            if data == b"plain":
                continue
            room, members = rooms[roomIndex]
            sender = None if senderIndex is None else members[senderIndex]
            self.broadcast.publish(room, data, sender)
            for member in members:
                if member is not sender:
                    expected.setdefault(member.id, []).append(data)
                    count += 1
        self.clock.advance(0)
        for _, members in rooms:
            for member in members:
                client = member.client
                assert isinstance(client, RecordingClient)
                calls = client.received + [data for data, _ in getattr(client, "encoded", [])]
                self.assertLessEqual(len(calls), 1, calls)
                self.assertEqual(b"".join(calls), b"".join(expected.get(member.id, [])))
                for _, encoded in getattr(client, "encoded", []):
                    self.assertEqual(encoded, b"".join(b"[" + m + b"]" for m in expected[member.id]))
        self.assertEqual(self.broadcast.deliveries, count)
        self.assertLessEqual(len(EncodingClient.encodings), 2)
