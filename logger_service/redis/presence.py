"""
Presence in Redis: nicknames claimed cluster-wide, heartbeats, and the members of dead nodes leaving.

Nicknames are keys (C{PREFIX:nick:NAME}, C{SET NX}) that live
L{NICK_TTL} seconds unless their node's heartbeat (every L{HEARTBEAT}
seconds) renews them.  A node that misses its heartbeats for
L{DEAD_AFTER} seconds is reaped by the next heartbeat of any other node:
its members leave their rooms (with a "left" line) and their nicknames are
freed, at most L{NICK_TTL} seconds after the node died.  Who is in which
room (C{PREFIX:who:#room}), which rooms exist (C{PREFIX:rooms}) and each
node's members (C{PREFIX:node:ID}) are hashes that answer C{/who} and
C{/rooms} for the whole cluster; C{/msg} goes to the inbox stream of the
node holding the nickname.
"""

from __future__ import annotations

from typing import Any, Callable, List, Optional

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from ..chatstate import LOBBY, Member, Room, foldName
from .connection import replyText
from .node import Node, NodePart

log = Logger()

HEARTBEAT = 3.0
"""Seconds between a node's heartbeats."""

DEAD_AFTER = 9.0
"""Seconds without a heartbeat after which a node is reaped."""

NICK_TTL = 15.0
"""Seconds a nickname key lives unless a heartbeat renews it."""

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


class Presence(NodePart):
    """
    Who this node's members are, for the whole cluster: their nicknames,
    rooms and node, kept alive by a heartbeat that also reaps dead nodes.
    """

    def __init__(self, node: Node, renamed: Callable[[Member, str], None]) -> None:
        """
        @param node: the node whose members these are.
        @param renamed: called when the cluster gave a member the nickname
            it asked for (L{rename}).
        """
        NodePart.__init__(self, node)
        self._renamed = renamed
        self._heartbeat: Optional[LoopingCall] = None
        self._beating: Optional[Deferred[Any]] = None

    # Heartbeat

    def start(self) -> None:
        """
        Beat now, then every L{HEARTBEAT} seconds.
        """
        self._heartbeat = LoopingCall(self._beat)
        self._heartbeat.clock = self.clock
        self._heartbeat.start(HEARTBEAT, now=True)

    def stop(self) -> None:
        """
        Stop beating.
        """
        if self._heartbeat is not None and self._heartbeat.running:
            self._heartbeat.stop()

    def bye(self) -> Deferred[Any]:
        """
        This node stops: its members still here leave (C{server stopped}),
        now rather than when reaped.
        """
        return self.link.script(_HEARTBEAT, [], [self.link.prefix, self.nodeID, 0, 0, "bye", self.maxlen])

    def _beat(self) -> None:
        link = self.link
        if self._beating is not None or not link.connected:
            return
        nickKeys = [link.key("nick", nick) for nick in self.state.members]
        reap = "1" if link.redisUp and self.clock.seconds() - link.upSince >= DEAD_AFTER else "0"
        args = [link.prefix, self.nodeID, int(DEAD_AFTER * 1000), int(NICK_TTL * 1000), reap, self.maxlen]
        self._beating = d = link.script(_HEARTBEAT, [], args + nickKeys)
        link.expectAnswer()
        d.addCallbacks(self._beaten, link.failed, errbackArgs=("heartbeat",))
        d.addBoth(self._beatDone)

    def _beatDone(self, result: object) -> None:
        self._beating = None

    def _beaten(self, result: List[Any]) -> None:
        wasUp = self.link.redisUp
        self.link.markUp()
        if wasUp and not int(result[0]):
            # This node was reaped (or Redis lost its data): say who is here again.
            self.resync()

    # Members

    def resync(self) -> None:
        """
        Record every member of this node, replacing what Redis held.
        """
        self.register(list(self.members), resync=True)

    def register(self, members: List[Member], resync: bool = False) -> None:
        """
        Record C{members} of this node, their nicknames and rooms.
        """
        link = self.link
        if not link.connected or not (link.redisUp or resync):
            return
        args: List[Any] = [link.prefix, self.nodeID, int(NICK_TTL * 1000), "1" if resync else "0"]
        for member in members:
            room = member.room
            args += [
                member.id,
                foldName(member.nick),
                member.nick,
                foldName(room.name) if room is not None else "",
                room.name if room is not None else "",
            ]
        d = link.script(_REGISTER, [], args)
        d.addCallbacks(self._registered, link.failed, errbackArgs=("register",))

    def _registered(self, conflicts: List[Any]) -> None:
        if conflicts:
            log.warn("{count} nicknames of this server are held by another one", count=len(conflicts))

    def removed(self, member: Member, room: Optional[Room], gone: bool) -> None:
        """
        C{member} left C{room} (if any), and the chat if C{gone}.
        """
        link = self.link
        if not link.connected or not link.redisUp:
            return
        mine = f"{self.nodeID}\t{member.id}\t{member.nick}"
        rf = foldName(room.name) if room is not None else ""
        args = [link.prefix, self.nodeID, member.id, foldName(member.nick), rf, "1" if gone else "0", mine]
        link.script(_LEAVE, [], args).addErrback(link.failed, "leave")

    def rename(self, member: Member, nick: str) -> None:
        """
        Claim C{nick} for C{member} cluster-wide; if that works, C{renamed}.
        """
        room = member.room
        assert room is not None
        old = member.nick
        args = [
            self.link.prefix,
            self.nodeID,
            member.id,
            foldName(old),
            foldName(nick),
            nick,
            foldName(room.name),
            room.name,
            int(NICK_TTL * 1000),
        ]

        def claimed(won: Any) -> None:
            if not self.members.here(member) or member.nick != old:
                return
            if not int(won):
                self.members.tell(member, f"! The nickname {nick} is taken.")
                return
            self._renamed(member, nick)

        def failed(failure: Failure) -> None:
            self.link.failed(failure, "nick")
            self.members.tell(member, f"! The nickname {nick} could not be checked: try again soon.")

        self.link.script(_RENAME, [], args).addCallbacks(claimed, failed)

    # Questions about the whole cluster

    def who(self, member: Member, room: Room) -> None:
        """
        Tell C{member} who is in C{room}, on every node.
        """

        def answer(values: List[bytes]) -> None:
            nicks = sorted((replyText(v).partition("\t")[2] for v in values), key=foldName)
            self.members.tell(member, f"* In {room.name} ({len(nicks)}): {', '.join(nicks)}")

        d = self.link.command("HVALS", self.link.key("who", foldName(room.name)))
        d.addCallbacks(answer, self.link.failed, errbackArgs=("who",))

    def rooms(self, member: Member) -> None:
        """
        Tell C{member} which rooms exist, on every node.
        """

        def answer(values: List[Any]) -> None:
            rooms = sorted(zip(map(replyText, values[::2]), map(int, values[1::2])), key=lambda r: foldName(r[0]))
            if not any(foldName(name) == foldName(LOBBY) for name, _ in rooms):
                rooms.insert(0, (LOBBY, 0))
            listing = ", ".join(f"{name} ({count})" for name, count in rooms)
            self.members.tell(member, f"* Rooms: {listing}")

        d = self.link.script(_ROOMS, [], [self.link.prefix, foldName(LOBBY)])
        d.addCallbacks(answer, self.link.failed, errbackArgs=("rooms",))

    def privateMessage(self, member: Member, nick: str, data: bytes, text: str) -> None:
        """
        Send C{data} to whoever holds C{nick}, on whichever node.
        """

        def sent(target: Any) -> None:
            if target is None:
                self.members.tell(member, f"! No one is called {nick}.")
            else:
                self.members.tell(member, f"-> *{replyText(target)}* {text}")

        d = self.link.script(_MSG, [self.link.key("nick", foldName(nick))], [self.link.prefix, data])
        d.addCallbacks(sent, self.link.failed, errbackArgs=("msg",))
