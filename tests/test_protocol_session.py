"""
Tests for the session of L{logger_service.protocol}: what a connection hands
to an L{ISession} the factory made for it, and what stays the same without
one.
"""

from __future__ import annotations

import json
from typing import Dict, List, Sequence, Tuple

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.interfaces import ISession, ISessionConnection
from logger_service.protocol import LineLoggerProtocol
from logger_service.recorder import Recorder

from .memory import MemorySink, hubOf


@implementer(ISession)
class RecordingSession:
    """
    A session that notes each call, takes C{!} out of the input, and
    records every other line at once, labelled with its count.

    @ivar calls: the calls, in order, as C{(name, argument)}.
    """

    def __init__(self, connection: ISessionConnection) -> None:
        self.connection = connection
        self.calls: List[Tuple[str, object]] = [("started", connection)]

    def dataReceived(self, data: bytes) -> None:
        self.calls.append(("dataReceived", data))
        self.connection.frame(data.replace(b"!", b""))

    def lines(self, lines: Sequence[bytes]) -> None:
        self.calls.append(("lines", list(lines)))
        self.connection.label({"seen": str(len(self.calls))})
        self.connection.record(lines)

    def drain(self) -> None:
        self.calls.append(("drain", None))

    def finishing(self, reason: str) -> None:
        self.calls.append(("finishing", reason))

    def lost(self, reason: Failure) -> None:
        self.calls.append(("lost", reason.type))


class SessionTests(SynchronousTestCase):
    """
    A factory given C{sessions} gives each started connection a session.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.sink = MemorySink()
        self.sessions: List[RecordingSession] = []
        hub = Hub(Recorder(self.sink, self.clock, format="json"))
        self.factory = LineLoggerFactory(hub, sessions=self.session)

    def session(self, connection: ISessionConnection) -> RecordingSession:
        session = RecordingSession(connection)
        self.sessions.append(session)
        return session

    def connect(self) -> Tuple[LineLoggerProtocol, StringTransport]:
        address = IPv4Address("TCP", "127.0.0.1", 40000 + len(self.sessions))
        protocol = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        with capturedLogs():
            protocol.makeConnection(transport)
        return protocol, transport

    def records(self) -> List[Dict[str, object]]:
        hubOf(self.factory).recorder.flush()  # type: ignore[attr-defined]
        return [json.loads(line) for line in self.sink.data.splitlines()]

    def test_provides(self) -> None:
        """
        The protocol is what a session knows of its connection.
        """
        protocol, _ = self.connect()
        self.assertTrue(verifyObject(ISessionConnection, protocol))
        self.assertIs(protocol.session, self.sessions[0])

    def test_chunksAndLines(self) -> None:
        """
        Chunks go to the session; what it frames comes back to it as lines,
        which it records, with the fields it labelled the connection with.
        """
        protocol, _ = self.connect()
        session = self.sessions[0]
        protocol.dataReceived(b"a!b\nc")
        protocol.dataReceived(b"d\n")
        self.assertEqual(
            session.calls[1:],
            [("dataReceived", b"a!b\nc"), ("lines", [b"ab"]), ("dataReceived", b"d\n"), ("lines", [b"cd"])],
        )
        self.assertEqual([(r["line"], r["seen"]) for r in self.records()], [("ab", "3"), ("cd", "5")])
        self.assertEqual(protocol.lineCount, 2)

    def test_drainFinishLost(self) -> None:
        """
        A drain is passed on; at the end the session hears the connection
        is lost, then finishing, before the unfinished line is handed over.
        """
        protocol, _ = self.connect()
        session = self.sessions[0]
        protocol.drain(lambda: None)
        protocol.dataReceived(b"tail")
        with capturedLogs():
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(
            session.calls[1:],
            [
                ("drain", None),
                ("dataReceived", b"tail"),
                ("lost", ConnectionDone),
                ("finishing", "Connection was closed cleanly."),
                ("lines", [b"tail"]),
            ],
        )
        self.assertTrue(protocol.finished)

    def test_refusedHasNone(self) -> None:
        """
        A refused connection gets no session.
        """
        self.factory.hub.admit = lambda address: "full"  # type: ignore[method-assign]
        protocol, transport = self.connect()
        self.assertIsNone(protocol.session)
        self.assertEqual(self.sessions, [])
        self.assertTrue(transport.disconnecting)

    def test_noSessionRecords(self) -> None:
        """
        Without C{sessions} a connection has no session and records its
        lines itself.
        """
        self.factory = LineLoggerFactory(hubOf(self.factory))
        protocol, _ = self.connect()
        self.assertIsNone(protocol.session)
        protocol.dataReceived(b"a!b\n")
        self.assertEqual([r["line"] for r in self.records()], ["a!b"])
