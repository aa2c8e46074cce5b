"""
Tests for L{logger_service.chatsession}: chat mode's I/O side, driven with
L{StringTransport} and a L{Clock}.
"""

from __future__ import annotations

import json
from typing import List, Tuple, cast

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from logger_service.chatsession import Chat, ChatSession
from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.interfaces import IChatMember, ISession
from logger_service.protocol import LineLoggerProtocol
from logger_service.recorder import Recorder
from logger_service.sendqueue import SendQueue

from .chatclients import RecordingClient
from .memory import MemorySink, hubOf


class ChatTestCase(SynchronousTestCase):
    """
    A chat server in memory, with helpers to connect clients.
    """

    floodRate = 2.0
    floodBurst = 5
    sendq = 1000

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        hub = Hub(Recorder(self.sink, self.clock, format="json"))
        self.chat = Chat(
            self.clock,
            history=3,
            floodRate=self.floodRate,
            floodBurst=self.floodBurst,
            sendq=self.sendq,
            counters=hub.counters,
        )
        self.factory = LineLoggerFactory(hub, greeting=b"Hi", sessions=self.chat.session)
        self.ports = iter(range(40000, 50000))

    def connect(self) -> Tuple[LineLoggerProtocol, StringTransport]:
        port = next(self.ports)
        protocol = self.factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
        with capturedLogs():
            protocol.makeConnection(transport)
        self.clock.advance(0)
        return protocol, transport

    def received(self, transport: StringTransport) -> List[str]:
        """
        The lines sent to a client since the last call.
        """
        self.clock.advance(0)
        data = transport.value()
        transport.clear()
        self.assertTrue(data == b"" or data.endswith(b"\r\n"), data)
        return data.decode("utf-8").split("\r\n")[:-1]

    def session(self, protocol: LineLoggerProtocol) -> ChatSession:
        """
        The chat session of C{protocol}.
        """
        session = protocol.session
        assert isinstance(session, ChatSession)
        return session

    def records(self) -> List[dict]:
        cast(Recorder, hubOf(self.factory).recorder).flush()
        return [json.loads(line) for line in self.sink.data.splitlines()]


class ConversationTests(ChatTestCase):
    """
    What clients see of each other.
    """

    def test_arrival(self) -> None:
        """
        A client gets the greeting, then the welcome; the room hears it
        joined.
        """
        _, a = self.connect()
        self.assertEqual(self.received(a), ["Hi", "* Welcome, guest1! You are in #lobby. Type /help for commands."])
        _, b = self.connect()
        self.assertEqual(self.received(a), ["* guest2 joined"])
        self.assertEqual(len(self.received(b)), 2)

    def test_relay(self) -> None:
        """
        A line goes to the others, not back to the sender, with CRLF, and
        safe for a terminal.
        """
        pa, a = self.connect()
        _, b = self.connect()
        _, c = self.connect()
        for t in (a, b, c):
            self.received(t)
        pa.dataReceived(b"hello \x1b[2J\xff\r\n")
        self.assertEqual(self.received(a), [])
        self.assertEqual(self.received(b), ["<guest1> hello ^[[2J\ufffd"])
        self.assertEqual(self.received(c), ["<guest1> hello ^[[2J\ufffd"])

    def test_recordsCarryNickAndRoom(self) -> None:
        """
        Every line is recorded with the exact bytes, and in JSON with the nick
        and room it was said under, even when a command in the same chunk
        changed them.
        """
        pa, _ = self.connect()
        pa.dataReceived(b"/nick alice\nhi\xff\n/join #dev\nthere\n")
        got = self.records()
        self.assertEqual([r["line"] for r in got], ["/nick alice", "hi\ufffd", "/join #dev", "there"])
        self.assertEqual([r["nick"] for r in got], ["guest1", "alice", "alice", "alice"])
        self.assertEqual([r["room"] for r in got], ["#lobby", "#lobby", "#lobby", "#dev"])
        self.assertEqual(got[1]["line_b64"], "aGn/")

    def test_quit(self) -> None:
        """
        C{/quit} says goodbye, tells the room, and closes the connection.
        """
        pa, a = self.connect()
        _, b = self.connect()
        self.received(a)
        self.received(b)
        with capturedLogs():
            pa.dataReceived(b"/quit off to lunch\nnot said\n")
        self.assertEqual(self.received(a), ["* Bye."])
        self.assertTrue(a.disconnecting)
        self.assertEqual(self.received(b), ["* guest1 left (off to lunch)"])
        self.assertEqual([r["line"] for r in self.records()], ["/quit off to lunch", "not said"])

    def test_connectionLost(self) -> None:
        """
        A dropped connection is announced with its reason.
        """
        pa, _ = self.connect()
        pb, _ = self.connect()
        _, c = self.connect()
        self.received(c)
        with capturedLogs():
            pa.connectionLost(Failure(ConnectionDone()))
            pb.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(self.received(c), ["* guest1 left (connection closed)", "* guest2 left (connection lost)"])
        self.assertEqual([m.nick for m in self.chat.state.members.values()], ["guest3"])

    def test_connectionLogRate(self) -> None:
        """
        Chat clients go through the same rate-limited connection log.
        """
        self.factory = LineLoggerFactory(hubOf(self.factory), connectionLogRate=1, sessions=self.chat.session)
        with capturedLogs() as events:
            for _ in range(3):
                self.connect()
            self.clock.advance(1)
        formats = [e["log_format"] for e in events]
        self.assertEqual(formats.count("Got connection from {peer}"), 1)
        self.assertEqual([e["connections"] for e in events if "hosts" in e], [2])


class FloodTests(ChatTestCase):
    """
    Flood control delays lines by pausing the sender; it drops nothing.
    """

    def test_burstThenRate(self) -> None:
        """
        Five lines go at once; the rest follow at two a second, while the
        sender's transport is paused; then reading resumes.
        """
        pa, a = self.connect()
        _, b = self.connect()
        self.received(b)
        pa.dataReceived(b"".join(b"line %d\n" % i for i in range(9)))
        self.assertEqual(self.received(b), [f"<guest1> line {i}" for i in range(5)])
        self.assertEqual(a.producerState, "paused")
        self.assertEqual(self.factory.counters.floodDelays, 1)
        self.assertEqual(len(self.records()), 9, "every line is recorded on arrival")
        self.clock.advance(0.5)
        self.assertEqual(self.received(b), ["<guest1> line 5"])
        self.clock.advance(1.0)
        self.assertEqual(self.received(b), ["<guest1> line 6", "<guest1> line 7"])
        self.assertEqual(a.producerState, "paused")
        self.clock.advance(0.5)
        self.assertEqual(self.received(b), ["<guest1> line 8"])
        self.assertEqual(a.producerState, "producing")
        self.assertEqual(self.factory.counters.floodDelays, 1)

    def test_othersNotSlowed(self) -> None:
        """
        While one client is held, another is relayed at once.
        """
        pa, _ = self.connect()
        pb, _ = self.connect()
        _, c = self.connect()
        self.received(c)
        pa.dataReceived(b"x\n" * 8)
        self.received(c)
        pb.dataReceived(b"from b\n")
        self.assertEqual(self.received(c), ["<guest2> from b"])

    def test_leavingForgetsHeldLines(self) -> None:
        """
        A held client that disconnects leaves no timer behind.
        """
        pa, _ = self.connect()
        pa.dataReceived(b"x\n" * 8)
        with capturedLogs():
            pa.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.records()), 8)
        self.clock.advance(0.1)
        self.assertEqual(self.clock.getDelayedCalls(), [])


class SlowConsumerTests(ChatTestCase):
    """
    A client that does not read is dropped once its queue passes C{sendq}.
    """

    def test_disconnected(self) -> None:
        """
        With its transport full (paused), messages queue; past the limit
        the client is aborted and the room hears why.
        """
        _, slow = self.connect()
        pb, b = self.connect()
        _, c = self.connect()
        self.received(c)
        protocol = hubOf(self.factory).connections[1]
        assert isinstance(protocol, LineLoggerProtocol)
        queue = self.session(protocol).sendQueue
        queue.pauseProducing()
        with capturedLogs() as events:
            for i in range(30):
                pb.dataReceived(b"message number %02d to fill the queue\n" % i)
                self.clock.advance(1)
        self.assertTrue(slow.disconnected, "aborted, not waiting to flush")
        self.assertEqual(self.factory.counters.slowConsumers, 1)
        left = [line for line in self.received(c) if "left" in line]
        self.assertEqual(left, ["* guest1 left (not reading: over 1000 bytes unsent)"])
        self.assertTrue(any("not reading" in e["log_format"] or "not reading" in str(e.get("reason")) for e in events))
        self.assertLessEqual(queue.size, 1000 + 100)


class SendQueueTests(SynchronousTestCase):
    """
    L{SendQueue} writes through while the transport has room.
    """

    def test_queueWhilePaused(self) -> None:
        """
        While paused, data waits; on resume it goes out in one write, in
        order.
        """
        transport = StringTransport()
        overflowed = []
        queue = SendQueue(transport, 10, lambda: overflowed.append(True))
        self.assertIs(transport.producer, queue)
        queue.write(b"a")
        queue.pauseProducing()
        queue.write(b"bc")
        queue.write(b"de")
        self.assertEqual(transport.value(), b"a")
        self.assertEqual(queue.size, 4)
        queue.resumeProducing()
        self.assertEqual(transport.value(), b"abcde")
        self.assertEqual(queue.size, 0)
        self.assertEqual(overflowed, [])

    def test_overflow(self) -> None:
        """
        Past the limit, the overflow callback runs.
        """
        overflowed = []
        queue = SendQueue(StringTransport(), 4, lambda: overflowed.append(True))
        queue.pauseProducing()
        queue.write(b"1234")
        self.assertEqual(overflowed, [])
        queue.write(b"5")
        self.assertEqual(overflowed, [True])


class TelnetTests(ChatTestCase):
    """
    Telnet commands from a telnet client are answered, and neither recorded
    nor shown to others.
    """

    def test_interrupt(self) -> None:
        """
        Ctrl-C in telnet (C{IAC IP IAC DO TIMING-MARK}) amid a line: the
        others see the line without it, the record holds the line without
        it, and the sender gets C{IAC WILL TIMING-MARK}, which telnet waits
        for before it shows anything again.
        """
        pa, a = self.connect()
        _, b = self.connect()
        self.received(a)
        self.received(b)
        pa.dataReceived(b"hel")
        pa.dataReceived(b"\xff\xf4\xff\xfd\x06")
        pa.dataReceived(b"lo\r\n")
        self.clock.advance(0)
        self.assertEqual(a.value(), b"\xff\xfb\x06")
        self.assertEqual(self.received(b), ["<guest1> hello"])
        self.assertEqual([r["line"] for r in self.records()], ["hello"])
        self.assertEqual(self.chat.telnetCommands, 2)

    def test_negotiationRefused(self) -> None:
        """
        A client that offers and asks for options (a telnet client on port
        23 would) is refused each, and a window size subnegotiation, whose
        bytes may hold LF, does not cut the line in two.
        """
        pa, a = self.connect()
        _, b = self.connect()
        self.received(a)
        self.received(b)
        pa.dataReceived(b"\xff\xfb\x1f\xff\xfd\x01hi \xff\xfa\x1f\x00\x50\x00\x0a\xff\xf0there\r\n")
        self.assertEqual(a.value(), b"\xff\xfe\x1f\xff\xfc\x01")
        self.assertEqual(self.received(b), ["<guest1> hi there"])

    def test_otherClientsPayNothing(self) -> None:
        """
        A client that never sends 0xFF has no Telnet filter.
        """
        pa, _ = self.connect()
        pa.dataReceived(b"hello\r\n")
        self.assertIsNone(self.session(pa)._telnet)

    def test_attributeOrder(self) -> None:
        """
        A chat connection has a logging connection's attributes, in the
        same order (its session is an object of its own); a telnet client's
        session has the same attributes, in the same order, as any other's.
        """
        plain, _ = self.connect()
        telnet, _ = self.connect()
        self.factory = LineLoggerFactory(hubOf(self.factory), greeting=b"Hi")
        logging, _ = self.connect()
        self.assertIsNone(logging.session)
        self.assertEqual(list(vars(plain)), list(vars(logging)))
        made = list(vars(self.session(plain)))
        self.assertIn("_telnet", made)
        plain.dataReceived(b"hello\r\n")
        telnet.dataReceived(b"\xff\xfd\x01hello\r\n")
        self.assertIsNotNone(self.session(telnet)._telnet)
        self.assertEqual(list(vars(self.session(telnet))), made)
        self.assertEqual(list(vars(self.session(plain))), made)

    def test_unfinishedCommandAtEnd(self) -> None:
        """
        What looked like the start of a command when the connection ended
        is recorded as data: nothing received is lost.
        """
        pa, _ = self.connect()
        pa.dataReceived(b"bye\xff")
        with capturedLogs():
            pa.connectionLost(Failure(ConnectionDone()))
        got = self.records()
        self.assertEqual([r["line_b64"] for r in got], ["Ynll/w=="])

    def test_answerAfterOutput(self) -> None:
        """
        The answer to a timing mark goes after what the lines before it in
        the same chunk brought the sender.
        """
        pa, a = self.connect()
        self.received(a)
        pa.dataReceived(b"/who\r\n\xff\xf4\xff\xfd\x06")
        self.assertEqual(a.value(), b"* In #lobby (1): guest1\r\n\xff\xfb\x06")


class SessionTests(ChatTestCase):
    """
    A chat connection is a logging connection with a session: the chat.
    """

    def test_interfaces(self) -> None:
        """
        The session is what the connection hands its input to, and the
        member's client the chat talks to.
        """
        protocol, _ = self.connect()
        session = self.session(protocol)
        self.assertTrue(verifyObject(ISession, session))
        self.assertTrue(verifyObject(IChatMember, session))
        member = session.member
        assert member is not None
        self.assertIs(member.client, session)
        self.assertIsNone(session.encoder)

    def test_anyClientIsAMember(self) -> None:
        """
        Any L{IChatMember} can be a member, next to the sessions of
        connections here (one connected elsewhere, say): it hears the room
        and is told to quit.
        """
        pa, a = self.connect()
        self.received(a)
        other = RecordingClient()
        member = self.chat.connect(1000, other)
        pa.dataReceived(b"hello\n")
        self.clock.advance(0)
        self.assertIn(b"<guest1> hello\r\n", b"".join(other.received))
        self.assertEqual(self.received(a), ["* guest2 joined"])
        self.chat.say(member, b"/quit")
        self.assertEqual(len(other.quits), 1)
        self.assertEqual(self.received(a), ["* guest2 left (quit)"])

    def test_refusedHasNoSession(self) -> None:
        """
        A connection refused by a limit never joins the chat.
        """
        self.factory.hub.admit = lambda address: "full"  # type: ignore[method-assign]
        protocol, transport = self.connect()
        self.assertIsNone(protocol.session)
        self.assertEqual(self.chat.state.members, {})
        self.assertTrue(transport.disconnecting)

    def test_drainReleasesHeldLines(self) -> None:
        """
        A shutdown's drain reads a flooding client at full speed again.
        """
        pa, a = self.connect()
        pa.dataReceived(b"x\n" * 8)
        self.assertEqual(a.producerState, "paused")
        self.assertIsNotNone(self.session(pa)._release)
        pa.drain(lambda: None)
        self.assertEqual(a.producerState, "producing")
        self.assertIsNone(self.session(pa)._release)
