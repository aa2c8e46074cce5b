"""
Chat over WebSocket: a browser as one more member of the chat room.

Each WebSocket connection drives an ordinary L{ChatProtocol} through a
L{LineTransport}: every text message the browser sends is one line (as if
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

from typing import Any, Callable, Optional

from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IAddress, IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from wsproto.utilities import LocalProtocolError

from .chatservice import ChatFactory, ChatProtocol

log = Logger()

MESSAGE_SLACK = 65536
"""Wire bytes allowed beyond C{--max-line-length} for a message in progress."""

TOO_BIG = 1009
"""The WebSocket close code for a message too big to process."""


class LineTransport:
    """
    What a L{ChatProtocol} writes to and reads through, over a WebSocket.

    Written bytes are CRLF-ended lines; each line goes out as one text
    message.  Reading, producers and the peer are those of the TCP
    connection under the WebSocket.

    @ivar wire: the WebSocket (Twisted's C{WebSocketTransport}).
    @ivar tcp: the TCP transport under it.
    """

    disconnecting = False

    def __init__(self, wire: Any, tcp: Any) -> None:
        self.wire = wire
        self.tcp = tcp
        self._partial = b""
        self._closed = False

    def write(self, data: bytes) -> None:
        """
        Send each complete line of C{data} as one text message.
        """
        if self._closed:
            return
        if self._partial:
            data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        send = self.wire.sendTextMessage
        try:
            for line in lines:
                if line[-1:] == b"\r":
                    line = line[:-1]
                send(line.decode("utf-8", "replace"))
        except LocalProtocolError:
            # The WebSocket is closing: nothing more can be sent on it.
            self._closed = True

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
    One browser in the chat: a WebSocket protocol driving a L{ChatProtocol}.

    @ivar protocol: the chat protocol, once the WebSocket is open.
    """

    def __init__(self, factory: ChatFactory, request: Request) -> None:
        self.factory = factory
        self.request = request
        self.protocol: Optional[ChatProtocol] = None
        self.transport: Optional[LineTransport] = None
        self._wire: Any = None
        self._unframed = 0
        self._completed = False
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
            received(data)
            if not self._completed:
                self._unframed += len(data)
                if self._unframed > self._limit:
                    self._tooBig()

        channel.dataReceived = countedReceived  # type: ignore[method-assign]
        self.transport = LineTransport(self._wire, self._wire.transport)
        protocol = self.protocol = self.factory.buildProtocol(self.transport.getPeer())
        protocol.makeConnection(self.transport)

    def _tooBig(self) -> None:
        protocol, transport = self.protocol, self.transport
        if protocol is None or transport is None or transport._closed:
            return
        self.factory.hub.oversizeLines += 1
        log.warn(
            "{peer} sent a WebSocket message longer than {limit} bytes: closing",
            peer=protocol.context.peer if not protocol._finished else "?",
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
            self.protocol.dataReceived(data if data[-1:] == b"\n" else data + b"\n")

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

    def __init__(self, factory: ChatFactory) -> None:
        self.factory = factory

    def buildProtocol(self, request: Request) -> WebChatMember:
        """
        A member for the WebSocket C{request} opens.
        """
        return WebChatMember(self.factory, request)
