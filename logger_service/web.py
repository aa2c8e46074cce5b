"""
C{--web}: the chat page and the live tail, served with C{twisted.web}.

Addresses: C{/} the chat page, C{/ws} the chat WebSocket (one text message
per line, see L{logger_service.webchat}), C{/tail} the tail page and
C{/tail/events} its records as Server-Sent Events, C{/static/...} the
page's files (shipped in the package, nothing fetched from elsewhere).

A WebSocket whose C{Origin} is not the page's own (the C{Host} it asked)
is refused: another site's page cannot talk in the chat on its visitor's
behalf.  The tail needs the secret in C{--web-token-file}, as
C{?token=...} or C{Authorization: Bearer ...}, compared in constant time.
"""

from __future__ import annotations

import hmac
import os
from typing import Any, Optional, Union
from urllib.parse import urlsplit

from twisted.application import strports
from twisted.application.service import IService
from twisted.internet.interfaces import IPushProducer
from twisted.web.pages import notFound
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from .tail import ITailSubscriber, Tail

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
"""Where the page's files are."""

SECURITY_HEADERS = {
    b"content-security-policy": b"default-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
}


def secure(request: Request) -> None:
    """
    Headers every answer carries: nothing from elsewhere, no framing, no
    Referer (a tail URL holds its token).
    """
    for name, value in SECURITY_HEADERS.items():
        request.setHeader(name, value)


def sameOrigin(request: Request) -> bool:
    """
    Whether the request comes from the page's own origin: its C{Origin}
    names the host and port it was sent to (the C{Host} header).  A request
    without C{Origin} comes from no web page (a command-line client) and
    passes.
    """
    origin = request.getHeader(b"origin")
    if origin is None:
        return True
    host = request.getHeader(b"host")
    if not host:
        return False
    try:
        netloc = urlsplit(origin).netloc
    except ValueError:
        return False
    return netloc.lower() == host.lower()


def tokenOf(request: Request) -> Optional[bytes]:
    """
    The token a request offers: C{Authorization: Bearer T} or C{?token=T}.
    """
    authorization = request.getHeader(b"authorization")
    if authorization is not None:
        scheme, _, value = authorization.partition(b" ")
        if scheme.lower() == b"bearer" and value.strip():
            return value.strip()
    values = (request.args or {}).get(b"token")
    if values:
        return bytes(values[0])
    return None


def readToken(path: str) -> bytes:
    """
    Read the secret of C{--web-token-file}.

    @raise ValueError: if the file is empty.
    @raise OSError: if it cannot be read.
    """
    with open(path, "rb") as f:
        token = f.read().strip()
    if not token:
        raise ValueError(f"{path} is empty")
    return token


def text(request: Request, code: int, message: str) -> bytes:
    """
    Answer with C{code} and a one-line plain-text message.
    """
    request.setResponseCode(code)
    if not message:
        return b""
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return (message + "\n").encode("utf-8")


CONTENT_TYPES = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
}


class Page(Resource):
    """
    One of the page's files (small: read whole, each time, so that an
    upgrade of the package shows at once).
    """

    isLeaf = True

    def __init__(self, name: str) -> None:
        Resource.__init__(self)
        self.path = os.path.join(STATIC, name)
        self.contentType = CONTENT_TYPES[os.path.splitext(name)[1]]

    def render_GET(self, request: Request) -> bytes:
        """
        Serve the file, with the security headers.
        """
        secure(request)
        request.setHeader(b"content-type", self.contentType)
        request.setHeader(b"cache-control", b"no-cache")
        with open(self.path, "rb") as f:
            return f.read()


class Directory(Resource):
    """
    A resource with children; anything else is a plain 404.
    """

    def getChild(self, path: bytes, request: Request) -> IResource:
        """
        No such child.
        """
        return notFound()


class Off(Resource):
    """
    A part that is switched off, saying why.
    """

    isLeaf = True

    def __init__(self, code: int, message: str) -> None:
        Resource.__init__(self)
        self.code = code
        self.message = message

    def render(self, request: Request) -> bytes:
        """
        Say it is off.
        """
        secure(request)
        return text(request, self.code, self.message)


class ChatSocket(Resource):
    """
    C{/ws}: the chat WebSocket, for pages of our own origin only.
    """

    isLeaf = True

    def __init__(self, websocket: Resource) -> None:
        Resource.__init__(self)
        self.websocket = websocket

    def render_GET(self, request: Request) -> Union[bytes, int]:
        """
        Check the origin, then open the WebSocket.
        """
        if not sameOrigin(request):
            return text(request, 403, "403 Forbidden: WebSocket from another origin")
        result: Union[bytes, int] = self.websocket.render(request)
        return result


class Guarded(Resource):
    """
    A resource that answers only with the token.
    """

    isLeaf = True

    def __init__(self, token: bytes, inner: Resource) -> None:
        Resource.__init__(self)
        self.token = token
        self.inner = inner

    def render(self, request: Request) -> Union[bytes, int]:
        """
        401 without a valid token; else the inner resource.
        """
        offered = tokenOf(request)
        if offered is None or not hmac.compare_digest(offered, self.token):
            secure(request)
            request.setHeader(b"www-authenticate", b'Bearer realm="linelogger tail"')
            return text(request, 401, "401 Unauthorized: the tail needs its token (?token= or Authorization: Bearer)")
        result: Union[bytes, int] = self.inner.render(request)
        return result


@implementer(ITailSubscriber, IPushProducer)
class EventStream:
    """
    One browser watching the tail, as Server-Sent Events.

    While its connection's buffer is full it is paused and skips records;
    once it can take more, it is told how many it missed.
    """

    def __init__(self, request: Request, tail: Tail) -> None:
        self.request = request
        self.tail = tail
        self.paused = False
        self.skipped = 0

    def records(self, lines: Any) -> None:
        """
        Send records, or count them while paused.
        """
        if self.paused:
            self.skipped += len(lines)
            return
        out = []
        if self.skipped:
            out.append(b"event: skipped\ndata: %d\n\n" % self.skipped)
            self.skipped = 0
        for line in lines:
            out.append(b"data: " + line.replace(b"\r", b"\\r") + b"\n\n")
        self.request.write(b"".join(out))

    def keepalive(self) -> None:
        """
        A comment line, which browsers ignore.
        """
        if not self.paused:
            self.request.write(b":\n\n")

    def pauseProducing(self) -> None:
        """
        The connection is full: skip records for now.
        """
        self.paused = True

    def resumeProducing(self) -> None:
        """
        The connection has room again.
        """
        self.paused = False

    def stopProducing(self) -> None:
        """
        The connection is gone.
        """
        self.tail.unsubscribe(self)


class TailEvents(Resource):
    """
    C{/tail/events}: the records as they are written.
    """

    isLeaf = True

    def __init__(self, tail: Tail) -> None:
        Resource.__init__(self)
        self.tail = tail

    def render_GET(self, request: Request) -> int:
        """
        Keep the response open and stream records into it.
        """
        secure(request)
        request.setHeader(b"content-type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"cache-control", b"no-store")
        request.setHeader(b"x-accel-buffering", b"no")
        request.channel.setTimeout(None)
        stream = EventStream(request, self.tail)
        request.registerProducer(stream, True)
        request.write(b"retry: 2000\n\n")
        self.tail.subscribe(stream)
        request.notifyFinish().addBoth(lambda _: self.tail.unsubscribe(stream))
        return NOT_DONE_YET


class TailRoot(Directory):
    """
    C{/tail}: the page, and its events below it.
    """

    def __init__(self, page: Resource, events: Resource) -> None:
        Directory.__init__(self)
        self.pageResource = page
        self.putChild(b"", page)
        self.putChild(b"events", events)

    def render(self, request: Request) -> Union[bytes, int]:
        """
        C{/tail} itself is the page.
        """
        result: Union[bytes, int] = self.pageResource.render(request)
        return result


def webResource(chatFactory: Any, tail: Optional[Tail], token: Optional[bytes]) -> Resource:
    """
    The whole site: C{/}, C{/ws}, C{/tail}, C{/static/}.

    @param chatFactory: the factory of chat connections, or C{None} without
        C{--chat}.
    @param tail: the tail, or C{None} when there is no token.
    """
    root = Directory()
    static = Directory()
    for name in ("chat.js", "tail.js", "style.css"):
        static.putChild(name.encode(), Page(name))
    root.putChild(b"static", static)
    root.putChild(b"favicon.ico", Off(204, ""))
    if chatFactory is not None:
        from twisted.web.websocket import WebSocketResource

        from .webchat import WebChatFactory

        root.putChild(b"", Page("index.html"))
        root.putChild(b"ws", ChatSocket(WebSocketResource(WebChatFactory(chatFactory))))
    else:
        off = Off(404, "404 Not Found: this linelogger is not a chat room (start it with --chat)")
        root.putChild(b"", off)
        root.putChild(b"ws", off)
    if tail is not None and token is not None:
        page = Guarded(token, Page("tail.html"))
        root.putChild(b"tail", TailRoot(page, Guarded(token, TailEvents(tail))))
    else:
        root.putChild(b"tail", Off(403, "403 Forbidden: the tail is off: start linelogger with --web-token-file"))
    return root


def webService(
    description: str, chatFactory: Any, tail: Optional[Tail], token: Optional[bytes], reactor: Any
) -> IService:
    """
    A service serving the site on the endpoint C{description}.
    """
    site = Site(webResource(chatFactory, tail, token))
    site.displayTracebacks = False
    # Access logs are per request: not on a hot path, but not records either.
    site.log = lambda request: None  # type: ignore[method-assign]
    service: IService = strports.service(description, site, reactor=reactor)
    return service
