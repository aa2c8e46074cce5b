"""
Tests for L{logger_service.web} and L{logger_service.webchat}: the site,
driven in memory through a real L{Site} and HTTP channel over a
L{StringTransport}, with C{wsproto} as the WebSocket client.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Tuple

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase
from twisted.web.server import Site

try:
    # The web extra: Twisted >= 25.5 and wsproto.
    import twisted.web.websocket  # noqa: F401
    from wsproto import ConnectionType, WSConnection
    from wsproto.events import AcceptConnection, CloseConnection, RejectConnection, Request, TextMessage
except ImportError:
    WEB_MISSING: Optional[str] = "the web extra (Twisted>=25.5 with websocket) is not installed"
else:
    WEB_MISSING = None

from logger_service.chatsession import Chat
from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.recorder import Recorder
from logger_service.tail import Tail, TeeSink
from logger_service.web import webResource

from .memory import MemorySink

TOKEN = b"s3cret-token"


class Browser:
    """
    One HTTP connection to the site, in memory.
    """

    ports = iter(range(30000, 40000))

    def __init__(self, site: Site, clock: Clock) -> None:
        self.clock = clock
        port = next(self.ports)
        self.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080), peerAddress=IPv4Address("TCP", "127.0.0.1", port)
        )
        self.peer = f"127.0.0.1:{port}"
        self.channel = site.buildProtocol(self.transport.getPeer())
        self.channel.makeConnection(self.transport)
        self.ws: Optional[WSConnection] = None
        self.pending: List[str] = []
        self.closed: Optional[int] = None

    def get(self, path: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
        """
        A plain GET: the status and the body so far.
        """
        lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8080"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.channel.dataReceived(("\r\n".join(lines) + "\r\n\r\n").encode())
        head, _, body = self.transport.value().partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body

    def open(self, origin: Optional[str] = "http://127.0.0.1:8080") -> bool:
        """
        Open the chat WebSocket; whether it was accepted.
        """
        self.ws = WSConnection(ConnectionType.CLIENT)
        extra = [(b"Origin", origin.encode())] if origin is not None else []
        self.channel.dataReceived(self.ws.send(Request(host="127.0.0.1:8080", target="/ws", extra_headers=extra)))
        self.ws.receive_data(self.transport.value())
        self.transport.clear()
        events = list(self.ws.events())
        self.pending = [e.data for e in events if isinstance(e, TextMessage)]
        return bool(events) and isinstance(events[0], AcceptConnection) and not isinstance(events[0], RejectConnection)

    def say(self, text: str) -> None:
        assert self.ws is not None
        self.channel.dataReceived(self.ws.send(TextMessage(text)))

    def sendRaw(self, data: bytes) -> None:
        self.channel.dataReceived(data)

    def received(self) -> List[str]:
        """
        The text messages received since the last call.
        """
        assert self.ws is not None
        self.clock.advance(0)
        self.ws.receive_data(self.transport.value())
        self.transport.clear()
        out, self.pending = self.pending, []
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                out.append(event.data)
            elif isinstance(event, CloseConnection):
                self.closed = event.code
        return out


class SiteTestCase(SynchronousTestCase):
    skip = WEB_MISSING
    chat = True
    token: Optional[bytes] = TOKEN

    def setUp(self) -> None:
        self.clock = Clock()
        self.calls: List[Tuple[Any, Tuple[Any, ...]]] = []
        self.sink = MemorySink()
        self.tail = Tail(self.clock, lambda f, *a: self.calls.append((f, a)))
        self.recorder = Recorder(TeeSink(self.sink, self.tail), self.clock, format="json")
        self.hub = Hub(self.recorder)
        self.chatRooms = Chat(self.clock, history=5, counters=self.hub.counters)
        self.factory = LineLoggerFactory(self.hub, maxLineLength=100, sessions=self.chatRooms.session)
        resource = webResource(self.factory if self.chat else None, self.tail if self.token else None, self.token)
        self.site = Site(resource, reactor=self.clock)

    def browser(self) -> Browser:
        return Browser(self.site, self.clock)

    def records(self) -> List[dict]:
        self.recorder.flush()
        return [json.loads(line) for line in self.sink.data.splitlines()]


class PageTests(SiteTestCase):
    def test_chatPage(self) -> None:
        """
        C{/} is the chat page, with headers that forbid anything from
        another host and any framing.
        """
        code, body = self.browser().get("/")
        self.assertEqual(code, 200)
        self.assertIn(b'<script src="/static/chat.js">', body)

    def test_headers(self) -> None:
        b = self.browser()
        b.get("/")
        head = b.transport.value().partition(b"\r\n\r\n")[0].lower()
        self.assertIn(b"content-security-policy: default-src 'self'", head)
        self.assertIn(b"frame-ancestors 'none'", head)
        self.assertIn(b"referrer-policy: no-referrer", head)

    def test_static(self) -> None:
        for name in ("chat.js", "tail.js", "style.css"):
            code, body = self.browser().get("/static/" + name)
            self.assertEqual(code, 200, name)
            self.assertTrue(body)
        self.assertEqual(self.browser().get("/static/")[0], 404)
        self.assertEqual(self.browser().get("/static/../web.py")[0], 404)

    def test_noInnerHTML(self) -> None:
        """
        The page's scripts insert text as text only.
        """
        for name in ("chat.js", "tail.js"):
            body = self.browser().get("/static/" + name)[1]
            self.assertNotIn(b"innerHTML", body)
            self.assertNotIn(b"http://", body)
            self.assertNotIn(b"https://", body)


class TailTokenTests(SiteTestCase):
    def test_noToken(self) -> None:
        """
        Without a token nothing of the tail is shown: 401, and a header
        saying how to authenticate.
        """
        for path in ("/tail", "/tail/", "/tail/events", "/tail?token=wrong"):
            b = self.browser()
            code, body = b.get(path)
            self.assertEqual(code, 401, path)
            self.assertIn(b"needs its token", body)
            self.assertNotIn(b"<script", body)
            self.assertIn(b"www-authenticate: bearer", b.transport.value().lower())

    def test_queryToken(self) -> None:
        code, body = self.browser().get("/tail?token=" + TOKEN.decode())
        self.assertEqual(code, 200)
        self.assertIn(b'<script src="/static/tail.js">', body)

    def test_bearerToken(self) -> None:
        code, body = self.browser().get("/tail", {"Authorization": "Bearer " + TOKEN.decode()})
        self.assertEqual(code, 200)
        self.assertEqual(self.browser().get("/tail", {"Authorization": "Bearer nope"})[0], 401)

    def test_events(self) -> None:
        """
        C{/tail/events} streams each record written, as the output has it.
        """
        b = self.browser()
        code, body = b.get("/tail/events?token=" + TOKEN.decode())
        self.assertEqual(code, 200)
        self.assertIn(b"content-type: text/event-stream", b.transport.value().lower())
        chat = self.browser()
        self.assertTrue(chat.open())
        chat.say("hello tail")
        self.recorder.flush()
        for f, args in self.calls:
            f(*args)
        records = self.sink.data.splitlines()
        self.assertTrue(records)
        stream = b.transport.value()
        for record in records:
            self.assertIn(b"data: " + record + b"\n\n", stream)

    def test_slowSubscriberSkips(self) -> None:
        """
        A subscriber whose connection is full skips records, and is told how
        many once it has room again.
        """
        b = self.browser()
        b.get("/tail/events?token=" + TOKEN.decode())
        (subscriber,) = self.tail.subscribers
        b.transport.producer.pauseProducing()  # type: ignore[union-attr]
        subscriber.records([b"one", b"two"])
        b.transport.producer.resumeProducing()  # type: ignore[union-attr]
        subscriber.records([b"three"])
        stream = b.transport.value()
        self.assertNotIn(b"data: one", stream)
        self.assertIn(b"event: skipped\ndata: 2\n\ndata: three\n\n", stream)

    def test_unsubscribeOnClose(self) -> None:
        b = self.browser()
        b.get("/tail/events?token=" + TOKEN.decode())
        self.assertEqual(len(self.tail.subscribers), 1)
        b.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.tail.subscribers), 0)


class TailOffTests(SiteTestCase):
    token = None

    def test_refused(self) -> None:
        """
        Without C{--web-token-file} the tail is off, and says so.
        """
        code, body = self.browser().get("/tail?token=anything")
        self.assertEqual(code, 403)
        self.assertIn(b"--web-token-file", body)


class ChatOffTests(SiteTestCase):
    chat = False

    def test_noChat(self) -> None:
        code, body = self.browser().get("/")
        self.assertEqual(code, 404)
        self.assertIn(b"--chat", body)


class WebSocketChatTests(SiteTestCase):
    def test_foreignOrigin(self) -> None:
        """
        A WebSocket from another origin is refused; no chat member appears.
        """
        b = self.browser()
        self.assertFalse(b.open(origin="http://evil.example"))
        self.assertEqual(self.hub.connections, {})
        self.assertFalse(self.browser().open(origin="null"))
        self.assertFalse(self.browser().open(origin="http://127.0.0.1:8081"))

    def test_sameOriginAndNoOrigin(self) -> None:
        self.assertTrue(self.browser().open())
        self.assertTrue(self.browser().open(origin=None))
        self.assertEqual(len(self.hub.connections), 2)

    def test_oneMessagePerLine(self) -> None:
        """
        A browser gets each line as one text message; what it says reaches
        the room and is recorded with its peer address.
        """
        a, b = self.browser(), self.browser()
        self.assertTrue(a.open())
        self.assertEqual(a.received(), ["* Welcome, guest1! You are in #lobby. Type /help for commands."])
        self.assertTrue(b.open())
        b.received()
        self.assertEqual(a.received(), ["* guest2 joined"])
        b.say("hello")
        b.say("/nick bob")
        self.assertEqual(a.received(), ["<guest2> hello", "* guest2 is now bob"])
        self.assertEqual(b.received(), ["* You are now bob."])
        records = self.records()
        self.assertEqual([r["line"] for r in records], ["hello", "/nick bob"])
        self.assertEqual(records[0]["peer"], b.peer)
        self.assertEqual(records[0]["conn"], 2)

    def test_turnFramedOnce(self) -> None:
        """
        When every browser in a room speaks in the same turn, each gets the
        others' lines, framed once for the room (not once per browser: the
        frames of each browser's lines are cut out of the turn's).
        """
        from logger_service import webchat

        browsers = [self.browser() for _ in range(5)]
        for b in browsers:
            self.assertTrue(b.open())
        for b in browsers:
            b.received()
        framed: List[bytes] = []
        frames = webchat._frames

        def counting(lines: bytes) -> bytes:
            framed.append(lines)
            return frames(lines)

        self.patch(webchat, "_frames", counting)
        for n, b in enumerate(browsers):
            b.say(f"line {n}")
        for n, b in enumerate(browsers):
            self.assertEqual(b.received(), [f"<guest{m + 1}> line {m}" for m in range(5) if m != n])
        self.assertEqual(sum(lines.count(b"\n") for lines in framed), 5)

    def test_helpAsOverTCP(self) -> None:
        a = self.browser()
        a.open()
        a.received()
        a.say("/help")
        lines = a.received()
        self.assertEqual(lines[0], "* Commands:")
        self.assertTrue(all("\r" not in line and "\n" not in line for line in lines))

    def test_leave(self) -> None:
        a, b = self.browser(), self.browser()
        a.open()
        b.open()
        a.received()
        b.received()
        b.say("/quit bye")
        self.assertEqual(b.received(), ["* Bye."])
        self.assertEqual(b.closed, 1000)
        self.assertEqual(a.received(), ["* guest2 left (bye)"])
        b.channel.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.hub.connections), 1)

    def test_closeLeaves(self) -> None:
        """
        A browser whose connection drops leaves the room.
        """
        a, b = self.browser(), self.browser()
        a.open()
        b.open()
        a.received()
        with capturedLogs():
            b.channel.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(a.received(), ["* guest2 left (connection lost)"])
        self.assertEqual(len(self.hub.connections), 1)

    def test_floodControl(self) -> None:
        """
        Lines beyond the flood burst are delayed, as over TCP.
        """
        a, b = self.browser(), self.browser()
        a.open()
        b.open()
        a.received()
        for i in range(8):
            b.say(f"m{i}")
        self.assertEqual(a.received(), [f"<guest2> m{i}" for i in range(5)])
        self.clock.advance(2)
        self.assertEqual(a.received(), [f"<guest2> m{i}" for i in range(5, 8)])
        self.assertEqual(len(self.records()), 8)

    def test_longMessageIsLongLine(self) -> None:
        """
        A message over C{--max-line-length} is a long line (split by
        default), as over TCP.
        """
        a = self.browser()
        a.open()
        a.say("x" * 150)
        self.assertEqual([len(r["line"]) for r in self.records()], [100, 50])

    def test_hugeMessageCloses(self) -> None:
        """
        A message that keeps growing past the line limit and its slack
        closes the connection (1009) instead of filling memory.
        """
        from wsproto.frame_protocol import Opcode

        a = self.browser()
        a.open()
        a.received()
        # One unfinished frame header announcing 1 MiB, then its bytes.
        header = bytes([0x80 | Opcode.TEXT, 0x80 | 127]) + (1 << 20).to_bytes(8, "big") + b"\0\0\0\0"
        with capturedLogs() as events:
            a.sendRaw(header)
            for _ in range(20):
                a.sendRaw(b"y" * 8192)
        self.assertEqual(a.received(), ["error: message longer than 65636 bytes; closing connection"])
        self.assertEqual(a.closed, 1009)
        self.assertTrue(a.transport.disconnecting)
        self.assertEqual(self.hub.counters.oversizeLines, 1)
        self.assertEqual(len([e for e in events if "WebSocket message longer" in e.get("log_format", "")]), 1)

    def test_slowReaderDropped(self) -> None:
        """
        A browser that stops reading is dropped once C{sendq} bytes wait,
        as over TCP.
        """
        self.chatRooms.sendq = 500
        a, b = self.browser(), self.browser()
        a.open()
        b.open()
        a.received()
        a.transport.producer.pauseProducing()  # type: ignore[union-attr]
        with capturedLogs():
            for i in range(30):
                b.say(f"message {i} " + "z" * 20)
                self.clock.advance(1)
        self.assertEqual(self.factory.counters.slowConsumers, 1)


class OptionsTests(SynchronousTestCase):
    """
    C{--web} and C{--web-token-file}.
    """

    def parse(self, *argv: str) -> Any:
        from logger_service.tap import Options

        options = Options()
        options.parseOptions(list(argv))
        return options

    def tokenFile(self, content: bytes) -> str:
        path = self.mktemp()
        with open(path, "wb") as f:
            f.write(content)
        return path

    def test_offByDefault(self) -> None:
        options = self.parse()
        self.assertIsNone(options["web"])
        self.assertIsNone(options["web-token"])

    def test_token(self) -> None:
        """
        The token is the file's content without surrounding white space.
        """
        options = self.parse("--web", "tcp:0", "--web-token-file", self.tokenFile(b"  abc\n\n"))
        self.assertEqual(options["web-token"], b"abc")

    def test_tokenErrors(self) -> None:
        from twisted.python.usage import UsageError

        empty = self.tokenFile(b"\n")
        e = self.assertRaises(UsageError, self.parse, "--web", "tcp:0", "--web-token-file", empty)
        self.assertIn("is empty", str(e))
        e = self.assertRaises(UsageError, self.parse, "--web", "tcp:0", "--web-token-file", empty + ".missing")
        self.assertIn("cannot read --web-token-file", str(e))
        e = self.assertRaises(UsageError, self.parse, "--web-token-file", self.tokenFile(b"abc"))
        self.assertIn("needs --web", str(e))


class FramesTests(SynchronousTestCase):
    """
    L{logger_service.webchat.frames}: lines to text frames, checked by
    C{wsproto} as a client would read them.
    """

    skip = WEB_MISSING

    def decode(self, data: bytes) -> List[str]:
        from wsproto.connection import Connection

        client = Connection(ConnectionType.CLIENT)
        client.receive_data(data)
        return [e.data for e in client.events() if isinstance(e, TextMessage)]

    def test_sizes(self) -> None:
        from logger_service.webchat import frames

        lines = ["", "a", "x" * 125, "y" * 126, "z" * 70000, "café ✓"]
        data = b"".join(line.encode() + b"\r\n" for line in lines)
        self.assertEqual(self.decode(frames(data)), lines)

    def test_lfAndInvalid(self) -> None:
        from logger_service.webchat import frames

        self.assertEqual(self.decode(frames(b"one\ntwo\xff\r\n")), ["one", "two\ufffd"])

    def test_frameMessages(self) -> None:
        """
        L{frameMessages} frames a turn's messages as L{frames} frames the
        block, and says where each message's frames end; it declines
        messages that are not whole lines.
        """
        from logger_service.webchat import frameMessages, frames

        messages = [b"<a> hi\r\n", b"* b joined\r\n<b> two\nlines\r\n", b"x" * 200 + b"\r\n", b"bad \xff\r\n"]
        block = b"".join(messages)
        result = frameMessages(block, messages)
        assert result is not None
        framed, bounds = result
        self.assertIs(frames(block), framed)
        self.assertEqual(framed, frames(b"".join(messages)))
        self.assertEqual(
            [self.decode(framed[bounds[i] : bounds[i + 1]]) for i in range(len(messages))],
            [["<a> hi"], ["* b joined", "<b> two", "lines"], ["x" * 200], ["bad \ufffd"]],
        )
        self.assertIsNone(frameMessages(b"a\r\nb", [b"a\r\n", b"b"]))
        self.assertIsNone(frameMessages(b"a\r\n", [b"", b"a\r\n"]))

    def test_sameObjectFramedOnce(self) -> None:
        from logger_service.webchat import frames

        data = b"<a> hi\r\n" * 3
        self.assertIs(frames(data), frames(data))
        self.assertEqual(frames(b"<a> hi\r\n" * 3), frames(data))

    def test_messageTransport(self) -> None:
        """
        A WebSocket's L{LineTransport} is an L{IMessageTransport}: the chat
        session of a browser takes its encoder, and lines handed over with
        their frames are sent without framing them again.
        """
        from zope.interface.verify import verifyObject

        from logger_service.interfaces import IMessageTransport
        from logger_service.webchat import LineTransport, frameMessages

        tcp = StringTransport()
        transport = LineTransport(object(), tcp)
        self.assertTrue(verifyObject(IMessageTransport, transport))
        self.assertIs(transport.encodeMessages, frameMessages)
        data = b"<a> hi\r\n"
        transport.encoded(data, b"FRAMED")
        transport.write(data)
        self.assertEqual(tcp.value(), b"FRAMED")
