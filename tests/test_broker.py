"""
Tests for L{logger_service.broker}: the broker seam and the local broker.
"""

from __future__ import annotations

from twisted.internet.address import IPv4Address
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from logger_service.broker import IBroker, LocalBroker
from logger_service.chatsession import Chat
from logger_service.chatstate import ChatState
from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.recorder import Recorder

from .memory import MemorySink


class LocalBrokerTests(SynchronousTestCase):
    """
    L{LocalBroker} is today's one-process chat behind L{IBroker}.
    """

    def test_provides(self) -> None:
        """
        L{LocalBroker} provides L{IBroker}.
        """
        self.assertTrue(verifyObject(IBroker, LocalBroker(Clock())))

    def test_relays(self) -> None:
        """
        A chat built on a L{LocalBroker} and a given state relays a line to
        the others in the room once per turn, and not to its sender.
        """
        clock = Clock()
        broker = LocalBroker(clock)
        state = ChatState(5)
        chat = Chat(clock, broadcast=broker, state=state)
        broker.attach(chat)
        self.assertIs(chat.state, state)
        factory = LineLoggerFactory(Hub(Recorder(MemorySink(), clock)), sessions=chat.session)
        transports = []
        for port in (40001, 40002):
            protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", port))
            transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", port))
            with capturedLogs():
                protocol.makeConnection(transport)
            transports.append((protocol, transport))
        clock.advance(0)
        for _, transport in transports:
            transport.clear()
        before = broker.deliveries
        transports[0][0].dataReceived(b"hello\n")
        clock.advance(0)
        self.assertEqual(transports[0][1].value(), b"")
        self.assertEqual(transports[1][1].value(), b"<guest1> hello\r\n")
        self.assertEqual(broker.deliveries, before + 1)
        self.assertEqual(list(state.rooms["#lobby"].history), ["<guest1> hello"])
