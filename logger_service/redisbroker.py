"""
Chat rooms shared by every linelogger on one Redis (C{--redis URL}).

Each room is a Redis stream (C{PREFIX:room:#name}, trimmed to about
C{max(20000, 10 * --history)} entries): a node publishes what its members
say with one script call per room per reactor turn (C{_PUBLISH}, which adds
the entries and drops any it already added, so a batch retried after a lost
reply is never added twice), and every node delivers a room to its own
members by reading the stream (C{XREAD BLOCK} on a connection of its own),
so every node shows a room in the stream's order.  A node remembers the
last entry it delivered per room and resumes from there after Redis comes
back.  History is the stream's tail, read when a node's first member joins
a room.

Nicknames are keys (C{PREFIX:nick:NAME}, C{SET NX}) that live 15 seconds
unless their node's heartbeat (every 3 seconds) renews them.  A node that
misses its heartbeats for 9 seconds is reaped by the next heartbeat of any
other node: its members leave their rooms (with a "left" line) and their
nicknames are freed, at most 15 seconds after the node died.

If Redis cannot be reached (at start or later), the node keeps serving its
own members, logs one line per episode and reconnects (after 0.5 seconds,
then e times longer each try, at most every 5 seconds); lines said
meanwhile wait in a bounded queue (L{MAX_PENDING}) and are published on
reconnection; beyond it the sender is told that its line was not relayed.

Nothing here blocks the reactor: txredisapi speaks to Redis from it.
"""

from __future__ import annotations

import os
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Set, Tuple
from urllib.parse import unquote, urlsplit

import txredisapi  # type: ignore[import-untyped]
from twisted.application.service import Service
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from .broadcast import LocalBroadcast
from .broker import IBroker
from .chat import LOBBY, NICK_CONTROLS, NICK_PATTERN, ChatState, Event, Member, Room, ToMember, foldName
from .chatservice import ChatService, encode

log = Logger()

HEARTBEAT = 3.0
"""Seconds between a node's heartbeats."""

DEAD_AFTER = 9.0
"""Seconds without a heartbeat after which a node is reaped."""

NICK_TTL = 15.0
"""Seconds a nickname key lives unless a heartbeat renews it."""

MAX_PENDING = 10000
"""Lines that may wait for Redis; beyond, senders are told."""

DOWN_AFTER = 3.0
"""Seconds a heartbeat may go unanswered before Redis counts as down."""

STREAM_LENGTH = 20000
"""Entries a room's stream keeps at least (about: C{MAXLEN ~}), so that a
burst is still there when a busy node reads it; and ten times C{--history}."""

STOP_WAIT = 5.0
"""At shutdown, the longest wait for this node's members to have left."""

READ_BLOCK_MS = 5000
"""How long one C{XREAD} waits for new entries, in milliseconds."""

_PUBLISH = """
local last = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
for i = 3, #ARGV, 4 do
  local seq = tonumber(ARGV[i])
  if seq > last then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*',
               'n', ARGV[1], 's', ARGV[i], 'm', ARGV[i + 1], 'k', ARGV[i + 2], 'd', ARGV[i + 3])
    last = seq
  end
end
redis.call('HSET', KEYS[2], ARGV[1], last)
redis.call('EXPIRE', KEYS[2], 86400)
return last
"""
"""Add a node's entries to one room, skipping those already added."""

_REAP = """
local function reap(p, d, why, maxlen)
  local members = redis.call('HGETALL', p .. ':node:' .. d)
  for j = 1, #members, 2 do
    local nf, nick, rf = string.match(members[j + 1], '^([^\\t]*)\\t([^\\t]*)\\t([^\\t]*)\\t')
    if nf then
      local who = redis.call('HGET', p .. ':who:' .. rf, nf)
      if who and string.sub(who, 1, #d + 1) == d .. '\\t' then
        redis.call('HDEL', p .. ':who:' .. rf, nf)
      end
      local holder = redis.call('GET', p .. ':nick:' .. nf)
      if holder and string.sub(holder, 1, #d + 1) == d .. '\\t' then
        redis.call('DEL', p .. ':nick:' .. nf)
      end
      redis.call('XADD', p .. ':room:' .. rf, 'MAXLEN', '~', maxlen, '*',
                 'n', '', 's', '0', 'm', '0', 'k', 'e', 'd', '* ' .. nick .. ' left (' .. why .. ')\\r\\n')
    end
  end
  redis.call('DEL', p .. ':node:' .. d, p .. ':inbox:' .. d)
  redis.call('ZREM', p .. ':nodes', d)
end
"""

_HEARTBEAT = (
    _REAP
    + """
local p, node, dead, ttl, reapOthers, maxlen = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local known = redis.call('ZSCORE', p .. ':nodes', node)
if reapOthers == 'bye' then
  reap(p, node, 'server stopped', maxlen)
  return {1, 0}
end
redis.call('ZADD', p .. ':nodes', now, node)
for i = 7, #ARGV do redis.call('PEXPIRE', ARGV[i], ttl) end
local reaped = 0
if reapOthers == '1' then
  for _, d in ipairs(redis.call('ZRANGEBYSCORE', p .. ':nodes', '-inf', now - dead)) do
    if d ~= node then
      reap(p, d, 'server lost', maxlen)
      reaped = reaped + 1
    end
  end
end
if known then return {1, reaped} end
return {0, reaped}
"""
)
"""Renew a node and its nicknames; reap nodes that stopped renewing."""

_REGISTER = """
local p, node, ttl, resync = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if resync == '1' then
  redis.call('DEL', p .. ':node:' .. node)
  for _, rf in ipairs(redis.call('HKEYS', p .. ':rooms')) do
    local who = redis.call('HGETALL', p .. ':who:' .. rf)
    for j = 1, #who, 2 do
      if string.sub(who[j + 1], 1, #node + 1) == node .. '\\t' then redis.call('HDEL', p .. ':who:' .. rf, who[j]) end
    end
  end
end
local conflicts = {}
for i = 5, #ARGV, 5 do
  local id, nf, nick, rf, room = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
  local mine = node .. '\\t' .. id .. '\\t' .. nick
  local key = p .. ':nick:' .. nf
  if not redis.call('SET', key, mine, 'NX', 'PX', ttl) then
    if redis.call('GET', key) == mine then redis.call('PEXPIRE', key, ttl) else conflicts[#conflicts + 1] = id end
  end
  redis.call('HSET', p .. ':node:' .. node, id, nf .. '\\t' .. nick .. '\\t' .. rf .. '\\t' .. room)
  if rf ~= '' then
    redis.call('HSET', p .. ':who:' .. rf, nf, node .. '\\t' .. nick)
    redis.call('HSET', p .. ':rooms', rf, room)
  end
end
return conflicts
"""
"""Record members of a node (all of them, replacing what was, on resync)."""

_LEAVE = """
local p, node, id, nf, rf, gone, mine = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local who = redis.call('HGET', p .. ':who:' .. rf, nf)
if who and string.sub(who, 1, #node + 1) == node .. '\\t' then redis.call('HDEL', p .. ':who:' .. rf, nf) end
if gone == '1' then
  redis.call('HDEL', p .. ':node:' .. node, id)
  if redis.call('GET', p .. ':nick:' .. nf) == mine then redis.call('DEL', p .. ':nick:' .. nf) end
end
return 1
"""
"""A member left a room (and, if gone, the chat)."""

_RENAME = """
local p, node, id, oldf, newf, nick, rf, room, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7],
  ARGV[8], ARGV[9]
local mine = node .. '\\t' .. id .. '\\t' .. nick
if not redis.call('SET', p .. ':nick:' .. newf, mine, 'NX', 'PX', ttl) then return 0 end
local old = redis.call('GET', p .. ':nick:' .. oldf)
if old and string.sub(old, 1, #node + #id + 2) == node .. '\\t' .. id .. '\\t' then
  redis.call('DEL', p .. ':nick:' .. oldf)
end
redis.call('HSET', p .. ':node:' .. node, id, newf .. '\\t' .. nick .. '\\t' .. rf .. '\\t' .. room)
local who = redis.call('HGET', p .. ':who:' .. rf, oldf)
if who and string.sub(who, 1, #node + 1) == node .. '\\t' then redis.call('HDEL', p .. ':who:' .. rf, oldf) end
redis.call('HSET', p .. ':who:' .. rf, newf, node .. '\\t' .. nick)
return 1
"""
"""Claim a nickname for a member, cluster-wide, and free its old one."""

_ROOMS = """
local p, lobby = ARGV[1], ARGV[2]
local out = {}
local rooms = redis.call('HGETALL', p .. ':rooms')
for j = 1, #rooms, 2 do
  local n = redis.call('HLEN', p .. ':who:' .. rooms[j])
  if n == 0 and rooms[j] ~= lobby then
    redis.call('HDEL', p .. ':rooms', rooms[j])
  else
    out[#out + 1] = rooms[j + 1]
    out[#out + 1] = n
  end
end
return out
"""
"""The rooms that have members (and the lobby), with their sizes."""

_MSG = """
local holder = redis.call('GET', KEYS[1])
if not holder then return false end
local node, id, nick = string.match(holder, '^([^\\t]*)\\t([^\\t]*)\\t(.*)$')
redis.call('XADD', ARGV[1] .. ':inbox:' .. node, 'MAXLEN', '~', '1000', '*', 'k', 'p', 't', id, 'd', ARGV[2])
redis.call('EXPIRE', ARGV[1] .. ':inbox:' .. node, 3600)
return nick
"""
"""Send a private message to whoever holds a nickname, on its node."""


_HISTORY = """
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #top == 0 then return {'0-0', {}} end
local want, out, newest, found, cursor = tonumber(ARGV[1]), {}, top[1][1], 0, '+'
while found < want do
  local batch = redis.call('XREVRANGE', KEYS[1], cursor, '-', 'COUNT', 200)
  for _, entry in ipairs(batch) do
    local fields, kind, data = entry[2], nil, nil
    for j = 1, #fields, 2 do
      if fields[j] == 'k' then kind = fields[j + 1] elseif fields[j] == 'd' then data = fields[j + 1] end
    end
    if kind == 'm' and found < want then
      out[#out + 1] = data
      found = found + 1
    end
  end
  if #batch < 200 then break end
  cursor = '(' .. batch[#batch][1]
end
return {newest, out}
"""
"""A room's newest entry id, and its last messages, newest first."""


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


def _streamID(value: bytes) -> Tuple[int, int]:
    ms, _, seq = value.partition(b"-")
    return int(ms), int(seq or 0)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _line(data: bytes) -> str:
    """
    The text of a line as published (UTF-8, ending with CRLF).
    """
    return data.decode("utf-8", "replace").rstrip("\r\n")


class Feed:
    """
    A room this node delivers: where it is in the room's stream.

    @ivar lastID: the last entry delivered (C{None} until history is read).
    @ivar history: the room's last messages, as delivered.
    @ivar waiting: members who joined before the history was read.
    """

    def __init__(self, historySize: int) -> None:
        self.lastID: Optional[bytes] = None
        self.history: Deque[str] = deque(maxlen=historySize)
        self.waiting: List[Member] = []


class ClusterChatState(ChatState):
    """
    L{ChatState} whose nicknames, rooms and messages are the cluster's:
    it tells its L{RedisBroker} what changes, and asks it for what other
    nodes know.  Rooms keep no history here: the broker replays it.
    """

    def __init__(self, broker: RedisBroker, historySize: int) -> None:
        self.broker = broker
        ChatState.__init__(self, 0)
        self.replaySize = historySize

    def _guestNick(self) -> str:
        while True:
            self._guests += 1
            nick = f"guest{self._guests}-{self.broker.tag}"
            if foldName(nick) not in self.members:
                return nick

    def _enter(self, member: Member, room: Room) -> List[Event]:
        feed = self.broker.entering(member, room)
        if feed.lastID is not None:
            # The room's history as this node delivered it: replayed in place.
            room.history = feed.history
        events = ChatState._enter(self, member, room)
        self.broker.entered(member, room)
        return events

    def _leave(self, member: Member, reason: str) -> List[Event]:
        room = member.room
        events = ChatState._leave(self, member, reason)
        if room is not None:
            self.broker.left(member, room)
        return events

    def disconnect(self, member: Member, reason: str) -> List[Event]:
        """
        C{member} is gone: free its nickname cluster-wide too.
        """
        events = ChatState.disconnect(self, member, reason)
        self.broker.gone(member)
        return events

    def _toRoom(self, member: Member, text: str) -> List[Event]:
        room = member.room
        assert room is not None
        self.broker.publishMessage(room, encode(text), member)
        return []

    def _cmd_nick(self, member: Member, argument: str, line: bytes) -> List[Event]:
        if (
            not argument
            or NICK_CONTROLS.search(line)
            or not NICK_PATTERN.match(argument)
            or argument == member.nick
            or self.members.get(foldName(argument), member) is not member
        ):
            return ChatState._cmd_nick(self, member, argument, line)
        if foldName(argument) == foldName(member.nick):
            return ChatState._cmd_nick(self, member, argument, line)
        if not self.broker.redisUp:
            return [ToMember(member, "! Nickname changes wait for the chat cluster, out of reach now: try again soon.")]
        self.broker.rename(member, argument)
        return []

    def applyNick(self, member: Member, nick: str) -> List[Event]:
        """
        The cluster gave C{member} the nickname C{nick}: take it here.
        """
        return ChatState._cmd_nick(self, member, nick, nick.encode("utf-8"))

    def _cmd_who(self, member: Member, argument: str, line: bytes) -> List[Event]:
        if not self.broker.redisUp:
            return self._local(ChatState._cmd_who(self, member, argument, line))
        assert member.room is not None
        self.broker.who(member, member.room)
        return []

    def _cmd_rooms(self, member: Member, argument: str, line: bytes) -> List[Event]:
        if not self.broker.redisUp:
            return self._local(ChatState._cmd_rooms(self, member, argument, line))
        self.broker.rooms(member)
        return []

    def _cmd_msg(self, member: Member, argument: str, line: bytes) -> List[Event]:
        nick, _, text = argument.partition(" ")
        text = text.strip()
        if not nick or not text or foldName(nick) in self.members or not self.broker.redisUp:
            return ChatState._cmd_msg(self, member, argument, line)
        self.broker.privateMessage(member, nick, encode(f"*{member.nick}* {text}"), text)
        return []

    def _local(self, events: List[Event]) -> List[Event]:
        return [
            ToMember(e.member, e.text + " (this server only: the chat cluster is out of reach)")
            if isinstance(e, ToMember)
            else e
            for e in events
        ]


@implementer(IBroker)
class RedisBroker(Service):
    """
    Rooms shared through Redis by every node with the same URL and prefix.

    @ivar state: the chat state to give the L{ChatService}.
    @ivar node: this node's id, new at each start.
    @ivar tag: this node's part of guest nicknames.
    @ivar redisUp: whether Redis answers.
    @ivar reconnects: times Redis answered again after being lost.
    @ivar notRelayed: lines not relayed because too many waited for Redis.
    """

    def __init__(self, clock: IReactorTime, url: str, prefix: str = "linelogger", history: int = 20) -> None:
        self.clock = clock
        self.url = url
        self.prefix = prefix
        self.historySize = history
        self.maxlen = max(STREAM_LENGTH, 10 * history)
        self.node = os.urandom(6).hex()
        self.tag = os.urandom(2).hex()
        self.state = ClusterChatState(self, history)
        self.local = LocalBroadcast(clock)
        self.chat: Optional[ChatService] = None
        self.redisUp = False
        self.reconnects = 0
        self.notRelayed = 0
        self._everUp = False
        self._downLogged = False
        self._upSince = 0.0
        self._seq = 0
        self._pending: Deque[Tuple[str, int, int, bytes, bytes]] = deque()
        self._inflight: Optional[List[Tuple[str, int, int, bytes, bytes]]] = None
        self._call: Optional[IDelayedCall] = None
        self._feeds: Dict[str, Feed] = {}
        self._localOnly: Set[int] = set()
        self._ownDelivered: Dict[str, int] = {}
        self._byID: Dict[int, Member] = {}
        self._inboxID = b"0-0"
        self._heartbeat: Optional[LoopingCall] = None
        self._beating: Optional[Deferred[Any]] = None
        self._downTimer: Optional[IDelayedCall] = None
        self._stopping = False
        self._reading = False
        self._redis: Any = None
        self._reader: Any = None

    @property
    def deliveries(self) -> int:
        """
        Messages delivered to this node's members.
        """
        return self.local.deliveries

    def key(self, *parts: str) -> str:
        """
        A Redis key under this cluster's prefix.
        """
        return ":".join((self.prefix,) + parts)

    # Service

    def attach(self, chat: ChatService) -> None:
        """
        Serve C{chat}, whose state must be L{state}.
        """
        self.chat = chat

    def startService(self) -> None:
        """
        Connect (in the background) and start the heartbeat and the reader.
        """
        Service.startService(self)
        self._stopping = False
        self._redis = redisConnection(self.url)
        self._reader = redisConnection(self.url)
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = self.clock
        self._heartbeat.start(HEARTBEAT, now=True)
        self._read()

    def stopService(self) -> Deferred[None]:
        """
        Publish what this node's members say as they leave (the listeners
        and the drain stop at the same time, and close their connections),
        for up to L{STOP_WAIT} seconds; then say goodbye (members still here
        leave, C{server stopped}) and disconnect.
        """
        Service.stopService(self)
        self._stopping = True
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()
        if self._downTimer is not None and self._downTimer.active():
            self._downTimer.cancel()
        done: Deferred[None] = Deferred()
        if not self.redisUp:
            self._disconnect(done)
            return done
        deadline = self.clock.seconds() + STOP_WAIT

        def step() -> None:
            busy = self._byID or self._pending or self._inflight is not None
            if busy and self.redisUp and self.clock.seconds() < deadline:
                self.flush()
                self.clock.callLater(0.02, step)
                return
            bye = self._script(_HEARTBEAT, [], [self.prefix, self.node, 0, 0, "bye", self.maxlen])
            bye.addErrback(lambda f: None)
            timeout = self.clock.callLater(2.0, bye.cancel)
            bye.addBoth(lambda _: timeout.cancel() if timeout.active() else None)
            bye.addBoth(lambda _: self._disconnect(done))

        step()
        return done

    def _disconnect(self, done: Deferred[None]) -> None:
        connections = [c for c in (self._redis, self._reader) if c is not None]
        self._redis = self._reader = None
        waits = [c.disconnect() for c in connections]
        DeferredList(waits, consumeErrors=True).addCallback(lambda _: done.callback(None))

    # Up and down

    def _markUp(self) -> None:
        if self._downTimer is not None and self._downTimer.active():
            self._downTimer.cancel()
        self._downTimer = None
        if self.redisUp:
            return
        self.redisUp = True
        self._upSince = self.clock.seconds()
        if self._everUp:
            self.reconnects += 1
        if self._downLogged:
            log.info("Redis at {url} answers again: chat rooms are shared again", url=self.url)
        self._everUp = True
        self._downLogged = False
        self._resync()
        self._schedule()

    def _markDown(self, why: str) -> None:
        if self._stopping:
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
        # This node's members keep hearing each other meanwhile.
        for entry in (self._inflight or []) + list(self._pending):
            if entry[1] > self._ownDelivered.get(entry[0], 0):
                self._deliverLocally(entry)

    def _deliverLocally(self, entry: Tuple[str, int, int, bytes, bytes]) -> None:
        """
        Deliver an entry not yet in Redis to this node's members now; it is
        not delivered again when read back from the room's stream.
        """
        fold, seq, memberID, kind, data = entry
        if seq in self._localOnly:
            return
        self._localOnly.add(seq)
        room = self.state.rooms.get(fold)
        if room is not None:
            self.local.publish(room, data, self._byID.get(memberID))

    def _failed(self, failure: Failure, what: str) -> None:
        if failure.check(txredisapi.ConnectionError):
            self._markDown(str(failure.value) or "connection lost")
        elif not self._stopping:
            log.failure("Redis {what} failed", failure, what=what)

    def _script(self, script: str, keys: List[str], args: List[Any]) -> Deferred[Any]:
        return self._redis.eval(script, keys, args)

    # Heartbeat

    def _beat(self) -> None:
        if self._beating is not None or self._redis is None:
            return
        nickKeys = [self.key("nick", nick) for nick in self.state.members]
        reap = "1" if self.redisUp and self.clock.seconds() - self._upSince >= DEAD_AFTER else "0"
        args = [self.prefix, self.node, int(DEAD_AFTER * 1000), int(NICK_TTL * 1000), reap, self.maxlen]
        self._beating = d = self._script(_HEARTBEAT, [], args + nickKeys)
        if self._downTimer is None:
            self._downTimer = self.clock.callLater(DOWN_AFTER, self._markDown, "no answer")
        d.addCallbacks(self._beaten, self._failed, errbackArgs=("heartbeat",))
        d.addBoth(self._beatDone)

    def _beatDone(self, result: object) -> None:
        self._beating = None

    def _beaten(self, result: List[Any]) -> None:
        wasUp = self.redisUp
        self._markUp()
        if wasUp and not int(result[0]):
            # This node was reaped (or Redis lost its data): say who is here again.
            self._resync()

    def _resync(self) -> None:
        members = list(self._byID.values())
        self._register(members, resync=True)

    def _register(self, members: List[Member], resync: bool = False) -> None:
        if self._redis is None or not (self.redisUp or resync):
            return
        args: List[Any] = [self.prefix, self.node, int(NICK_TTL * 1000), "1" if resync else "0"]
        for member in members:
            room = member.room
            args += [
                member.id,
                foldName(member.nick),
                member.nick,
                foldName(room.name) if room is not None else "",
                room.name if room is not None else "",
            ]
        d = self._script(_REGISTER, [], args)
        d.addCallbacks(self._registered, self._failed, errbackArgs=("register",))

    def _registered(self, conflicts: List[Any]) -> None:
        if conflicts:
            log.warn("{count} nicknames of this server are held by another one", count=len(conflicts))

    # Members

    def entering(self, member: Member, room: Room) -> Feed:
        """
        C{member} is entering C{room} here: deliver the room here (reading
        its history first, then replaying it to those waiting for it).
        """
        self._byID[member.id] = member
        fold = foldName(room.name)
        feed = self._feeds.get(fold)
        if feed is None:
            feed = self._feeds[fold] = Feed(self.historySize)
            self._loadHistory(fold, feed)
        if feed.lastID is None:
            feed.waiting.append(member)
        return feed

    def entered(self, member: Member, room: Room) -> None:
        """
        C{member} entered C{room} here: record it in Redis.
        """
        self._register([member])

    def _loadHistory(self, fold: str, feed: Feed) -> None:
        if self._redis is None:
            return
        d = self._script(_HISTORY, [self.key("room", fold)], [self.historySize])

        def loaded(reply: List[Any]) -> None:
            if self._feeds.get(fold) is not feed:
                return
            feed.lastID = reply[0]
            feed.history.extend(_line(data) for data in reversed(reply[1]))
            waiting, feed.waiting = feed.waiting, []
            room = self.state.rooms.get(fold)
            if room is not None:
                room.history = feed.history
            for member in waiting:
                if room is not None and member.room is room:
                    self._replay(member, room, feed)
            self._wake()

        def failed(failure: Failure) -> None:
            self._failed(failure, "history")
            if self._feeds.get(fold) is feed and not self._stopping:
                self.clock.callLater(0.5, self._loadHistory, fold, feed)

        d.addCallbacks(loaded, failed)

    def _replay(self, member: Member, room: Room, feed: Feed) -> None:
        if not feed.history:
            return
        lines = [f"* Last {len(feed.history)} messages in {room.name}:"]
        lines.extend(feed.history)
        member.client.deliver(b"".join(map(encode, lines)))  # type: ignore[attr-defined]

    def left(self, member: Member, room: Room) -> None:
        """
        C{member} left C{room}.
        """
        self.forget(member, room)
        self._removed(member, room, gone=False)

    def forget(self, member: Member, room: Room) -> None:
        """
        Stop delivering C{room} here once no member here is in it.
        """
        if member in self._feeds.get(foldName(room.name), Feed(0)).waiting:
            self._feeds[foldName(room.name)].waiting.remove(member)
        if not room.members:
            self._feeds.pop(foldName(room.name), None)

    def gone(self, member: Member) -> None:
        """
        C{member} left the chat.
        """
        self._byID.pop(member.id, None)
        self._removed(member, None, gone=True)

    def _removed(self, member: Member, room: Optional[Room], gone: bool) -> None:
        if self._redis is None or not self.redisUp:
            return
        mine = f"{self.node}\t{member.id}\t{member.nick}"
        rf = foldName(room.name) if room is not None else ""
        args = [self.prefix, self.node, member.id, foldName(member.nick), rf, "1" if gone else "0", mine]
        self._script(_LEAVE, [], args).addErrback(self._failed, "leave")

    def rename(self, member: Member, nick: str) -> None:
        """
        Claim C{nick} for C{member} cluster-wide; take it here if that works.
        """
        room = member.room
        assert room is not None
        old = member.nick
        args = [
            self.prefix,
            self.node,
            member.id,
            foldName(old),
            foldName(nick),
            nick,
            foldName(room.name),
            room.name,
            int(NICK_TTL * 1000),
        ]

        def claimed(won: Any) -> None:
            if self._byID.get(member.id) is not member or member.nick != old:
                return
            if not int(won):
                self._tell(member, f"! The nickname {nick} is taken.")
                return
            if self.chat is not None:
                self.chat.dispatch(self.state.applyNick(member, nick))
                update = getattr(member.client, "_updateContext", None)
                if update is not None:
                    update()

        def failed(failure: Failure) -> None:
            self._failed(failure, "nick")
            self._tell(member, f"! The nickname {nick} could not be checked: try again soon.")

        self._script(_RENAME, [], args).addCallbacks(claimed, failed)

    def _tell(self, member: Member, text: str) -> None:
        if self._byID.get(member.id) is member:
            member.client.deliver(encode(text))  # type: ignore[attr-defined]

    def who(self, member: Member, room: Room) -> None:
        """
        Tell C{member} who is in C{room}, on every node.
        """

        def answer(values: List[bytes]) -> None:
            nicks = sorted((_text(v).partition("\t")[2] for v in values), key=foldName)
            self._tell(member, f"* In {room.name} ({len(nicks)}): {', '.join(nicks)}")

        d = self._redis.execute_command("HVALS", self.key("who", foldName(room.name)))
        d.addCallbacks(answer, self._failed, errbackArgs=("who",))

    def rooms(self, member: Member) -> None:
        """
        Tell C{member} which rooms exist, on every node.
        """

        def answer(values: List[Any]) -> None:
            rooms = sorted(zip(map(_text, values[::2]), map(int, values[1::2])), key=lambda r: foldName(r[0]))
            if not any(foldName(name) == foldName(LOBBY) for name, _ in rooms):
                rooms.insert(0, (LOBBY, 0))
            listing = ", ".join(f"{name} ({count})" for name, count in rooms)
            self._tell(member, f"* Rooms: {listing}")

        d = self._script(_ROOMS, [], [self.prefix, foldName(LOBBY)])
        d.addCallbacks(answer, self._failed, errbackArgs=("rooms",))

    def privateMessage(self, member: Member, nick: str, data: bytes, text: str) -> None:
        """
        Send C{data} to whoever holds C{nick}, on whichever node.
        """

        def sent(target: Any) -> None:
            if target is None:
                self._tell(member, f"! No one is called {nick}.")
            else:
                self._tell(member, f"-> *{_text(target)}* {text}")

        d = self._script(_MSG, [self.key("nick", foldName(nick))], [self.prefix, data])
        d.addCallbacks(sent, self._failed, errbackArgs=("msg",))

    # Publishing

    def publish(self, room: Room, data: bytes, exclude: Optional[Member]) -> None:
        """
        Publish C{data} (an event such as a join) to C{room}, on every node.
        """
        self._enqueue(room, b"e", data, exclude)

    def publishMessage(self, room: Room, data: bytes, member: Member) -> None:
        """
        Publish what C{member} said to C{room}, on every node, and into its
        history.
        """
        self._enqueue(room, b"m", data, member)

    def _enqueue(self, room: Room, kind: bytes, data: bytes, sender: Optional[Member]) -> None:
        if len(self._pending) >= MAX_PENDING:
            self.notRelayed += 1
            if sender is not None and kind == b"m":
                self._tell(sender, "! Not relayed: the chat cluster is out of reach and too much waits for it.")
            return
        self._seq += 1
        entry = (foldName(room.name), self._seq, sender.id if sender is not None else 0, kind, data)
        self._pending.append(entry)
        if not self.redisUp:
            self._deliverLocally(entry)
        self._schedule()

    def _schedule(self) -> None:
        if self._call is None and self._pending and self._inflight is None:
            self._call = self.clock.callLater(0, self.flush)

    def flush(self) -> None:
        """
        Publish what waits, now, unless a batch is already on its way.
        """
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None
        self._send()

    def _send(self) -> None:
        if self._inflight is not None or not self._pending or self._redis is None:
            return
        batch = self._inflight = list(self._pending)
        self._pending.clear()
        byRoom: Dict[str, List[Any]] = {}
        for fold, seq, memberID, kind, data in batch:
            args = byRoom.get(fold)
            if args is None:
                args = byRoom[fold] = [self.node, self.maxlen]
            args += [seq, memberID, kind, data]
        sent = [
            self._script(_PUBLISH, [self.key("room", fold), self.key("seq", fold)], args)
            for fold, args in byRoom.items()
        ]
        DeferredList(sent, consumeErrors=True).addCallback(self._published, batch)

    def _published(self, results: List[Tuple[bool, Any]], batch: List[Any]) -> None:
        self._inflight = None
        failures = [result for ok, result in results if not ok]
        if failures:
            self._failed(failures[0], "publish")
            # Retried whole: the script skips what was already added.
            self._pending.extendleft(reversed(batch))
            while len(self._pending) > MAX_PENDING:
                self._pending.pop()
                self.notRelayed += 1
            if not self._stopping:
                self.clock.callLater(0.1, self._send)
            return
        self._markUp()
        self._schedule()

    # Reading

    def _wake(self) -> None:
        if self._redis is not None:
            d = self._redis.execute_command("XADD", self.key("inbox", self.node), "MAXLEN", "~", 1000, "*", "k", "w")
            d.addErrback(self._failed, "wake")

    def _read(self) -> None:
        if self._stopping or self._reader is None or self._reading:
            return
        keys = [self.key("inbox", self.node)]
        ids = [self._inboxID]
        for fold, feed in self._feeds.items():
            if feed.lastID is not None:
                keys.append(self.key("room", fold))
                ids.append(feed.lastID)
        self._reading = True
        d = self._reader.execute_command("XREAD", "COUNT", 5000, "BLOCK", READ_BLOCK_MS, "STREAMS", *keys, *ids)
        d.addCallbacks(self._gotEntries, self._readFailed)

    def _readFailed(self, failure: Failure) -> None:
        self._reading = False
        self._failed(failure, "read")
        if not self._stopping:
            self.clock.callLater(0.2, self._read)

    def _gotEntries(self, reply: Optional[List[Any]]) -> None:
        self._reading = False
        try:
            for key, entries in reply or ():
                self._deliver(_text(key), entries)
            self.local.flush()
        finally:
            self._read()

    def _deliver(self, key: str, entries: List[Any]) -> None:
        inbox = self.key("inbox", self.node)
        if key == inbox:
            for entryID, fields in entries:
                self._inboxID = entryID
                values = dict(zip(fields[::2], fields[1::2]))
                if values.get(b"k") == b"p":
                    target = self._byID.get(int(values[b"t"]))
                    if target is not None:
                        target.client.deliver(values[b"d"])  # type: ignore[attr-defined]
            return
        fold = key[len(self.prefix) + len(":room:") :]
        feed = self._feeds.get(fold)
        if feed is None or feed.lastID is None:
            return
        last = _streamID(feed.lastID)
        room = self.state.rooms.get(fold)
        node = self.node.encode("ascii")
        for entryID, fields in entries:
            if _streamID(entryID) <= last:
                continue
            feed.lastID = entryID
            values = dict(zip(fields[::2], fields[1::2]))
            data = values[b"d"]
            if values.get(b"k") == b"m":
                feed.history.append(_line(data))
            exclude = None
            if values.get(b"n") == node:
                seq = int(values[b"s"])
                self._ownDelivered[fold] = seq
                if seq in self._localOnly:
                    # Delivered here while Redis was out of reach.
                    self._localOnly.discard(seq)
                    continue
                exclude = self._byID.get(int(values[b"m"]))
            if room is not None:
                self.local.publish(room, data, exclude)
