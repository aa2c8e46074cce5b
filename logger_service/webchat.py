"""
Chat over WebSocket: a browser as one more member of the chat room.

Each WebSocket connection drives an ordinary chat connection (the logging
protocol with its L{ChatSession}) through a L{LineTransport}: every text message the browser sends is one line (as if
it had been typed on a TCP connection, terminator added), and every line the
chat sends is one text message (without its CRLF).  So a browser gets the
same lines and commands as a telnet user, and is recorded, flood-limited,
line-limited and counted exactly like one, with its own peer address.

Twisted assembles a WebSocket message in memory before it hands it over;
L{WebChatMember} bounds that too: a message still incomplete after
C{maxLineLength} plus L{MESSAGE_SLACK} bytes on the wire closes the
connection with code 1009 (message too big).  Complete messages longer than
C{--max-line-length} are long lines, handled as C{--long-lines} says.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence, Tuple

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from wsproto.utilities import LocalProtocolError
from zope.interface import implementer

from .factory import LineLoggerFactory
from .interfaces import IMessageTransport
from .protocol import LineLoggerProtocol
from .sendnow import sendNow
from .twistedprivate import webSocketTCP

log = Logger()

MESSAGE_SLACK = 65536
"""Wire bytes allowed beyond C{--max-line-length} for a message in progress."""

TOO_BIG = 1009
"""The WebSocket close code for a message too big to process."""


_LAST: List[bytes] = [b"", b""]
"""The last block of lines framed, and its frames."""

_MEMBER: List[bytes] = [b"", b""]
"""The last lines handed over with their frames (L{LineTransport.encoded})."""


_SHORT = [bytes((0x81, size)) for size in range(126)]
"""The headers of text frames shorter than 126 bytes (most chat lines)."""


def header(size: int) -> bytes:
    """
    The header of an unmasked, unfragmented text frame of C{size} bytes.
    """
    if size < 126:
        return _SHORT[size]
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big")
    return b"\x81\x7f" + size.to_bytes(8, "big")


def frames(lines: bytes) -> bytes:
    """
    CRLF- (or LF-) ended lines as WebSocket text frames, one per line, as a
    server sends them (unmasked, unfragmented).

    A room's messages of one turn reach most members as the same bytes
    object: they are framed once, not once per member.  A member that sent
    some of them gets the others' with their frames, cut out of the turn's
    frames (L{frameMessages}, L{LineTransport.encoded}).
    """
    if lines is _LAST[0]:
        return _LAST[1]
    if lines is _MEMBER[0]:
        return _MEMBER[1]
    framed = _frames(lines)
    _LAST[:] = [lines, framed]
    return framed


def _frames(lines: bytes) -> bytes:
    """
    L{frames}, not remembered.
    """
    parts = lines.replace(b"\r\n", b"\n").split(b"\n")
    parts.pop()
    try:
        lines.decode("utf-8")
    except UnicodeDecodeError:
        parts = [part.decode("utf-8", "replace").encode("utf-8") for part in parts]
    short = _SHORT
    return b"".join([(short[len(p)] if len(p) < 126 else header(len(p))) + p for p in parts])


def frameMessages(block: bytes, messages: Sequence[bytes]) -> Optional[Tuple[bytes, List[int]]]:
    """
    A room's messages of one turn as text frames (an L{Encoder}): the frames
    of C{block} (C{messages} joined) and where each message's frames end in
    them, or C{None} if a message is not whole lines.  They are remembered
    as the frames of C{block}, which the members that sent none of the
    messages get.
    """
    for message in messages:
        if message[-1:] != b"\n":
            return None
    framed = [_frames(message) for message in messages]
    bounds = [0]
    position = 0
    for frame in framed:
        position += len(frame)
        bounds.append(position)
    joined = b"".join(framed)
    _LAST[:] = [block, joined]
    return joined, bounds


@implementer(IMessageTransport)
class LineTransport:
    """
    What a chat connection writes to and reads through, over a WebSocket.

    Written bytes are CRLF-ended lines; each line goes out as one text
    message, framed here (see L{frames}) and sent at once when the socket
    takes it (L{sendNow}), as the chat does for TCP clients.  The
    WebSocket's own state (C{wsproto}) is left to Twisted's WebSocket code,
    which sends the handshake, pongs and the closing frame; data frames
    carry no state.  Reading, producers and the peer are those of the TCP
    connection under the WebSocket.

    A room's messages of a turn are framed once for all the browsers in it
    (L{frameMessages}, see L{LocalBroadcast}), including the ones that sent
    some of them: they get the others' messages with their frames
    (L{encoded}).

    @ivar wire: the WebSocket (Twisted's C{WebSocketTransport}).
    @ivar tcp: the TCP transport under it.
    """

    disconnecting = False
    encodeMessages = staticmethod(frameMessages)

    def __init__(self, wire: Any, tcp: Any) -> None:
        self.wire = wire
        self.tcp = tcp
        self._partial = b""
        self._closed = False
        self._send: Callable[[bytes], None] = sendNow(tcp)

    def write(self, data: bytes) -> None:
        """
        Send each complete line of C{data} as one text message.
        """
        if self._closed or self.tcp.disconnecting:
            return
        if self._partial:
            data = self._partial + data
            self._partial = b""
        end = data.rfind(b"\n") + 1
        if end < len(data):
            self._partial = data[end:]
            data = data[:end]
        if data:
            self._send(frames(data))

    def encoded(self, data: bytes, encoded: bytes) -> None:
        """
        C{data}, CRLF-ended lines about to be written, has the text frames
        C{encoded}.
        """
        _MEMBER[:] = [data, encoded]

    def writeSequence(self, data: Any) -> None:
        """
        Write each piece of C{data}.
        """
        self.write(b"".join(data))

    def loseConnection(self) -> None:
        """
        Close the WebSocket normally once what was written is out.
        """
        if self._closed:
            self.tcp.loseConnection()
            return
        self._closed = True
        try:
            self.wire.loseConnection()
        except LocalProtocolError:
            self.tcp.loseConnection()

    def abortConnection(self) -> None:
        """
        Drop the connection now.
        """
        self._closed = True
        self.tcp.abortConnection()

    def getPeer(self) -> IAddress:
        """
        The browser's address (the TCP peer).
        """
        peer: IAddress = self.tcp.getPeer()
        return peer

    def getHost(self) -> IAddress:
        """
        Our address on this connection.
        """
        host: IAddress = self.tcp.getHost()
        return host

    def setTcpNoDelay(self, enabled: bool) -> None:
        """
        Set C{TCP_NODELAY} on the TCP connection, where there is one.
        """
        setter = getattr(self.tcp, "setTcpNoDelay", None)
        if setter is not None:
            setter(enabled)

    def pauseProducing(self) -> None:
        """
        Stop reading from the browser.
        """
        self.tcp.pauseProducing()

    def resumeProducing(self) -> None:
        """
        Read from the browser again.
        """
        self.tcp.resumeProducing()

    def stopProducing(self) -> None:
        """
        Drop the connection.
        """
        self.abortConnection()

    def registerProducer(self, producer: IPushProducer, streaming: bool) -> None:
        """
        Let C{producer} (the chat's send queue) be paused while the TCP
        connection's buffer is full.  The upgraded HTTP channel no longer
        produces anything, so it gives its place up.
        """
        if getattr(self.tcp, "producer", None) is not None:
            self.tcp.unregisterProducer()
        self.tcp.registerProducer(producer, streaming)

    def unregisterProducer(self) -> None:
        """
        Forget the producer.
        """
        self.tcp.unregisterProducer()


class WebChatMember:
    """
    One browser in the chat: a WebSocket protocol driving a chat
    connection.

    @ivar protocol: the chat connection, once the WebSocket is open.
    """

    def __init__(self, factory: LineLoggerFactory, request: Request) -> None:
        self.factory = factory
        self.request = request
        self.protocol: Optional[LineLoggerProtocol] = None
        self.transport: Optional[LineTransport] = None
        self._wire: Any = None
        self._unframed = 0
        self._completed = False
        self._batch: Optional[List[bytes]] = None
        self._limit = factory.maxLineLength + MESSAGE_SLACK

    def negotiationStarted(self, transport: Any) -> None:
        """
        Remember the WebSocket.
        """
        self._wire = transport

    def negotiationFinished(self) -> None:
        """
        The WebSocket is open: start a chat protocol on it.
        """
        channel = self.request.channel
        # The HTTP channel's own idle timeout (12 hours) would cut the chat.
        channel.setTimeout(None)
        received: Callable[[bytes], None] = channel.dataReceived

        def countedReceived(data: bytes) -> None:
            self._completed = False
            # The messages of one read are handed on together, as the lines
            # of one read are on TCP (one record batch, one flood check).
            self._batch = []
            try:
                received(data)
            finally:
                batch, self._batch = self._batch, None
            if batch and self.protocol is not None:
                self.protocol.dataReceived(b"".join(batch))
            if not self._completed:
                self._unframed += len(data)
                if self._unframed > self._limit:
                    self._tooBig()

        channel.dataReceived = countedReceived  # type: ignore[method-assign]
        self.transport = LineTransport(self._wire, webSocketTCP(self._wire))
        protocol = self.protocol = LineLoggerProtocol()
        protocol.factory = self.factory
        protocol.makeConnection(self.transport)

    def _tooBig(self) -> None:
        protocol, transport = self.protocol, self.transport
        if protocol is None or transport is None or transport._closed:
            return
        self.factory.counters.oversizeLines += 1
        log.warn(
            "{peer} sent a WebSocket message longer than {limit} bytes: closing",
            peer=protocol.context.peer if not protocol.finished else "?",
            limit=self._limit,
        )
        transport.write(b"error: message longer than %d bytes; closing connection\r\n" % self._limit)
        transport._closed = True
        try:
            self._wire.loseConnection(TOO_BIG)
        except LocalProtocolError:
            transport.tcp.loseConnection()

    def textMessageReceived(self, message: str) -> None:
        """
        One line from the browser.
        """
        self.bytesMessageReceived(message.encode("utf-8", "surrogateescape"))

    def bytesMessageReceived(self, data: Any) -> None:
        """
        One line from the browser, as bytes.
        """
        self._unframed = 0
        self._completed = True
        if self.protocol is not None:
            data = bytes(data)
            if data[-1:] != b"\n":
                data += b"\n"
            if self._batch is not None:
                self._batch.append(data)
            else:
                self.protocol.dataReceived(data)

    def pongReceived(self, payload: bytes) -> None:
        """
        Pongs are not used.
        """

    def connectionLost(self, reason: Failure) -> None:
        """
        Leave the chat as a TCP client would.
        """
        protocol, self.protocol = self.protocol, None
        if protocol is not None:
            protocol.connectionLost(reason if reason is not None else Failure(ConnectionDone()))


class WebChatFactory:
    """
    Builds a L{WebChatMember} for each chat WebSocket.
    """

    def __init__(self, factory: LineLoggerFactory) -> None:
        self.factory = factory

    def buildProtocol(self, request: Request) -> WebChatMember:
        """
        A member for the WebSocket C{request} opens.
        """
        return WebChatMember(self.factory, request)
