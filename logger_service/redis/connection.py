"""
Connecting to Redis: URLs, reconnecting with backoff, and whether Redis answers.

A node speaks to Redis over two connections (L{RedisLink}): one for
commands and scripts, one for the blocking reads of the room streams.
Both reconnect by themselves (after 0.5 seconds, then e times longer each
try, at most every 5 seconds).  Redis counts as down when a command fails
for want of a connection, or when a heartbeat goes unanswered for
L{DOWN_AFTER} seconds, and as up again at its next answer; each episode is
logged once.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional
from urllib.parse import unquote, urlsplit

import txredisapi  # type: ignore[import-untyped]
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

log = Logger()

DOWN_AFTER = 3.0
"""Seconds a heartbeat may go unanswered before Redis counts as down."""


def redisConnection(url: str) -> Any:
    """
    A lazy, reconnecting txredisapi connection to the Redis at C{url}:
    C{redis://[:password@]host[:port][/db]}, C{rediss://} (TLS) or
    C{unix:///path/redis.sock[?db=N]}.

    @raise ValueError: if C{url} is not one of those.
    """
    parts = urlsplit(url)
    settings: Dict[str, Any] = dict(reconnect=True, charset=None, convertNumbers=False)
    if parts.password:
        settings["password"] = unquote(parts.password)
    if parts.scheme == "unix":
        query = dict(pair.partition("=")[::2] for pair in parts.query.split("&") if pair)
        if not parts.path:
            raise ValueError(f"--redis {url}: no socket path")
        if query.get("db"):
            settings["dbid"] = int(query["db"])
        connection = txredisapi.lazyUnixConnection(parts.path, **settings)
    elif parts.scheme in ("redis", "rediss"):
        db = parts.path.strip("/")
        if db:
            settings["dbid"] = int(db)
        if parts.scheme == "rediss":
            # Verified against the system's trusted certificates, for the host
            # name in the URL (needs Twisted[tls]).
            from twisted.internet.ssl import optionsForClientTLS

            settings["ssl_context_factory"] = optionsForClientTLS(parts.hostname or "localhost")
        connection = txredisapi.lazyConnection(parts.hostname or "localhost", parts.port or 6379, **settings)
    else:
        raise ValueError(f"--redis {url}: use redis://, rediss:// or unix://")
    factory = connection._factory
    factory.initialDelay = 0.5
    factory.maxDelay = 5
    return connection


def checkRedisURL(url: str) -> None:
    """
    Raise L{ValueError} if C{url} is not a Redis URL L{redisConnection} takes.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"--redis {url!r}: use redis://, rediss:// or unix://")
    try:
        port = parts.port
        db = parts.path.strip("/") if parts.scheme != "unix" else ""
        if port is not None and not 0 < port < 65536:
            raise ValueError
        if db:
            int(db)
    except ValueError:
        raise ValueError(f"--redis {url!r}: bad port or database number") from None


def replyText(value: Any) -> str:
    """
    A Redis reply (bytes, as the connections give them) as text.
    """
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class RedisLink:
    """
    A node's two connections to one Redis, and whether Redis answers.

    @ivar redisUp: whether Redis answers.
    @ivar reconnects: times Redis answered again after being lost.
    @ivar upSince: when Redis last began to answer (C{clock.seconds()}).
    @ivar stopping: whether the node is stopping (failures are then quiet,
        and nothing is retried).
    @ivar redis: the connection for commands and scripts (C{None} until
        L{connect}, and after L{disconnect}).
    @ivar reader: the connection for blocking reads (likewise).
    """

    def __init__(
        self,
        clock: IReactorTime,
        url: str,
        prefix: str,
        whenUp: Callable[[], None],
        whenDown: Callable[[], None],
    ) -> None:
        """
        @param whenUp: called when Redis answers again (or first answers).
        @param whenDown: called each time Redis is found not to answer.
        """
        self.clock = clock
        self.url = url
        self.prefix = prefix
        self.redisUp = False
        self.reconnects = 0
        self.upSince = 0.0
        self.stopping = False
        self.redis: Any = None
        self.reader: Any = None
        self._whenUp = whenUp
        self._whenDown = whenDown
        self._everUp = False
        self._downLogged = False
        self._downTimer: Optional[IDelayedCall] = None

    def key(self, *parts: str) -> str:
        """
        A Redis key under this cluster's prefix.
        """
        return ":".join((self.prefix,) + parts)

    def connect(self) -> None:
        """
        Open both connections (they connect in the background).
        """
        self.stopping = False
        self.redis = redisConnection(self.url)
        self.reader = redisConnection(self.url)

    def stop(self) -> None:
        """
        The node is stopping: Redis no longer counts as down for want of
        answers, and failures are no longer logged.
        """
        self.stopping = True
        if self._downTimer is not None and self._downTimer.active():
            self._downTimer.cancel()

    def disconnect(self) -> Deferred[List[Any]]:
        """
        Close both connections.

        @return: fires once both are closed.
        """
        connections = [c for c in (self.redis, self.reader) if c is not None]
        self.redis = self.reader = None
        return DeferredList([c.disconnect() for c in connections], consumeErrors=True)

    @property
    def connected(self) -> bool:
        """
        Whether the command connection is open (it may still be connecting).
        """
        return self.redis is not None

    @property
    def canRead(self) -> bool:
        """
        Whether the connection for blocking reads is open.
        """
        return self.reader is not None

    def command(self, *args: Any) -> Deferred[Any]:
        """
        Run one Redis command on the command connection.
        """
        return self.redis.execute_command(*args)

    def blockingRead(self, *args: Any) -> Deferred[Any]:
        """
        Run one blocking Redis command (C{XREAD BLOCK}) on the connection for
        blocking reads.
        """
        return self.reader.execute_command(*args)

    def script(self, script: str, keys: List[str], args: List[Any]) -> Deferred[Any]:
        """
        Run a Lua C{script} on the command connection.
        """
        return self.redis.eval(script, keys, args)

    def expectAnswer(self) -> None:
        """
        A heartbeat is on its way: unless Redis answers something within
        L{DOWN_AFTER} seconds, it counts as down.
        """
        if self._downTimer is None:
            self._downTimer = self.clock.callLater(DOWN_AFTER, self.markDown, "no answer")

    def markUp(self) -> None:
        """
        Redis answered.
        """
        if self._downTimer is not None and self._downTimer.active():
            self._downTimer.cancel()
        self._downTimer = None
        if self.redisUp:
            return
        self.redisUp = True
        self.upSince = self.clock.seconds()
        if self._everUp:
            self.reconnects += 1
        if self._downLogged:
            log.info("Redis at {url} answers again: chat rooms are shared again", url=self.url)
        self._everUp = True
        self._downLogged = False
        self._whenUp()

    def markDown(self, why: str) -> None:
        """
        Redis does not answer, because of C{why}.
        """
        if self.stopping:
            return
        if self.redisUp or not self._downLogged:
            if not self._downLogged:
                if self._everUp:
                    log.warn(
                        "Redis at {url} lost ({why}): serving this server's members alone, reconnecting",
                        url=self.url,
                        why=why,
                    )
                else:
                    log.warn(
                        "Redis at {url} does not answer ({why}): starting anyway, "
                        "serving this server's members alone and retrying",
                        url=self.url,
                        why=why,
                    )
                self._downLogged = True
        self.redisUp = False
        self._whenDown()

    def failed(self, failure: Failure, what: str) -> None:
        """
        A command (C{what}) failed: Redis is down if it was for want of a
        connection; anything else is logged (unless the node is stopping).
        """
        if failure.check(txredisapi.ConnectionError):
            self.markDown(str(failure.value) or "connection lost")
        elif not self.stopping:
            log.failure("Redis {what} failed", failure, what=what)
