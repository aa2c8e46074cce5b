"""
Room streams in Redis: publishing this node's lines, reading rooms from the last entry delivered, and history.

Each room is a stream (C{PREFIX:room:#name}, trimmed to about C{maxlen}
entries).  A node publishes what its members say with one script call per
room per reactor turn (L{_PUBLISH}, which adds the entries and drops any it
already added, so a batch retried after a lost reply is never added
twice), and delivers a room to its own members by reading the stream
(C{XREAD BLOCK} on a connection of its own), so every node shows a room in
the stream's order.  It remembers the last entry it delivered per room
(L{Feed}) and resumes from there after Redis comes back.  Lines said while
Redis is out of reach are delivered here at once, wait in a bounded queue
(L{MAX_PENDING}) and are published on reconnection, and are not delivered
here again when read back; beyond the queue, the sender is told.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Deque, Dict, List, Optional, Set, Tuple

from twisted.internet.defer import DeferredList
from twisted.internet.interfaces import IDelayedCall
from twisted.python.failure import Failure

from ..broadcast import LocalBroadcast
from ..chatsession import encode
from ..chatstate import Member, Room, foldName
from .connection import replyText
from .node import Node, NodePart

MAX_PENDING = 10000
"""Lines that may wait for Redis; beyond, senders are told."""

STREAM_LENGTH = 20000
"""Entries a room's stream keeps at least (about: C{MAXLEN ~}), so that a
burst is still there when a busy node reads it; and ten times C{--history}."""

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

Entry = Tuple[str, int, int, bytes, bytes]
"""A line to publish: room (folded), this node's sequence number, sender
id (0 for none), kind (C{m} said by a member, C{e} an event) and data."""


def _streamID(value: bytes) -> Tuple[int, int]:
    ms, _, seq = value.partition(b"-")
    return int(ms), int(seq or 0)


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


class RoomStreams(NodePart):
    """
    The rooms this node's members are in, as Redis streams: what they say
    goes out in batches, what anyone says comes back in the stream's order.

    @ivar notRelayed: lines not relayed because too many waited for Redis.
    """

    def __init__(self, node: Node, local: LocalBroadcast, historySize: int) -> None:
        """
        @param node: the node whose members' rooms are delivered here.
        @param local: delivers to this node's members.
        @param historySize: the messages a room replays to who joins it.
        """
        NodePart.__init__(self, node)
        self.local = local
        self.historySize = historySize
        self.notRelayed = 0
        self._seq = 0
        self._pending: Deque[Entry] = deque()
        self._inflight: Optional[List[Entry]] = None
        self._call: Optional[IDelayedCall] = None
        self._feeds: Dict[str, Feed] = {}
        self._localOnly: Set[int] = set()
        self._ownDelivered: Dict[str, int] = {}
        self._inboxID = b"0-0"
        self._reading = False

    @property
    def busy(self) -> bool:
        """
        Whether lines wait to be published, or are on their way.
        """
        return bool(self._pending) or self._inflight is not None

    # Following rooms

    def follow(self, room: Room, member: Member) -> Feed:
        """
        C{member} is entering C{room} here: deliver the room here (reading
        its history first, then replaying it to those waiting for it).
        """
        fold = foldName(room.name)
        feed = self._feeds.get(fold)
        if feed is None:
            feed = self._feeds[fold] = Feed(self.historySize)
            self._loadHistory(fold, feed)
        if feed.lastID is None:
            feed.waiting.append(member)
        return feed

    def forget(self, member: Member, room: Room) -> None:
        """
        Stop delivering C{room} here once no member here is in it.
        """
        if member in self._feeds.get(foldName(room.name), Feed(0)).waiting:
            self._feeds[foldName(room.name)].waiting.remove(member)
        if not room.members:
            self._feeds.pop(foldName(room.name), None)

    def _loadHistory(self, fold: str, feed: Feed) -> None:
        if not self.link.connected:
            return
        d = self.link.script(_HISTORY, [self.link.key("room", fold)], [self.historySize])

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
            self.wake()

        def failed(failure: Failure) -> None:
            self.link.failed(failure, "history")
            if self._feeds.get(fold) is feed and not self.link.stopping:
                self.clock.callLater(0.5, self._loadHistory, fold, feed)

        d.addCallbacks(loaded, failed)

    def _replay(self, member: Member, room: Room, feed: Feed) -> None:
        if not feed.history:
            return
        lines = [f"* Last {len(feed.history)} messages in {room.name}:"]
        lines.extend(feed.history)
        self.members.send(member, b"".join(map(encode, lines)))

    # Publishing

    def enqueue(self, room: Room, kind: bytes, data: bytes, sender: Optional[Member]) -> None:
        """
        Publish C{data} to C{room} soon, said by C{sender} (kind C{m}) or an
        event (kind C{e}, leaving out C{sender} if any).
        """
        if len(self._pending) >= MAX_PENDING:
            self.notRelayed += 1
            if sender is not None and kind == b"m":
                self.members.tell(sender, "! Not relayed: the chat cluster is out of reach and too much waits for it.")
            return
        self._seq += 1
        entry = (foldName(room.name), self._seq, sender.id if sender is not None else 0, kind, data)
        self._pending.append(entry)
        if not self.link.redisUp:
            self._deliverLocally(entry)
        self.schedule()

    def schedule(self) -> None:
        """
        Publish what waits at the end of this reactor turn.
        """
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
        if self._inflight is not None or not self._pending or not self.link.connected:
            return
        batch = self._inflight = list(self._pending)
        self._pending.clear()
        byRoom: Dict[str, List[Any]] = {}
        for fold, seq, memberID, kind, data in batch:
            args = byRoom.get(fold)
            if args is None:
                args = byRoom[fold] = [self.nodeID, self.maxlen]
            args += [seq, memberID, kind, data]
        sent = [
            self.link.script(_PUBLISH, [self.link.key("room", fold), self.link.key("seq", fold)], args)
            for fold, args in byRoom.items()
        ]
        DeferredList(sent, consumeErrors=True).addCallback(self._published, batch)

    def _published(self, results: List[Tuple[bool, Any]], batch: List[Entry]) -> None:
        self._inflight = None
        failures = [result for ok, result in results if not ok]
        if failures:
            self.link.failed(failures[0], "publish")
            # Retried whole: the script skips what was already added.
            self._pending.extendleft(reversed(batch))
            while len(self._pending) > MAX_PENDING:
                self._pending.pop()
                self.notRelayed += 1
            if not self.link.stopping:
                self.clock.callLater(0.1, self._send)
            return
        self.link.markUp()
        self.schedule()

    def deliverWaiting(self) -> None:
        """
        Redis is out of reach: this node's members hear what waits for it
        (and what is on its way, unless read back already) meanwhile.
        """
        for entry in (self._inflight or []) + list(self._pending):
            if entry[1] > self._ownDelivered.get(entry[0], 0):
                self._deliverLocally(entry)

    def _deliverLocally(self, entry: Entry) -> None:
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
            self.local.publish(room, data, self.members.get(memberID))

    # Reading

    def wake(self) -> None:
        """
        End the reader's current wait, so that its next read covers every
        room delivered here.
        """
        if self.link.connected:
            d = self.link.command("XADD", self.link.key("inbox", self.nodeID), "MAXLEN", "~", 1000, "*", "k", "w")
            d.addErrback(self.link.failed, "wake")

    def read(self) -> None:
        """
        Read what is new in this node's inbox and in every room delivered
        here, then again, until the node stops.
        """
        if self.link.stopping or not self.link.canRead or self._reading:
            return
        keys = [self.link.key("inbox", self.nodeID)]
        ids = [self._inboxID]
        for fold, feed in self._feeds.items():
            if feed.lastID is not None:
                keys.append(self.link.key("room", fold))
                ids.append(feed.lastID)
        self._reading = True
        d = self.link.blockingRead("XREAD", "COUNT", 5000, "BLOCK", READ_BLOCK_MS, "STREAMS", *keys, *ids)
        d.addCallbacks(self._gotEntries, self._readFailed)

    def _readFailed(self, failure: Failure) -> None:
        self._reading = False
        self.link.failed(failure, "read")
        if not self.link.stopping:
            self.clock.callLater(0.2, self.read)

    def _gotEntries(self, reply: Optional[List[Any]]) -> None:
        self._reading = False
        try:
            for key, entries in reply or ():
                self._deliver(replyText(key), entries)
            self.local.flush()
        finally:
            self.read()

    def _deliver(self, key: str, entries: List[Any]) -> None:
        inbox = self.link.key("inbox", self.nodeID)
        if key == inbox:
            for entryID, fields in entries:
                self._inboxID = entryID
                values = dict(zip(fields[::2], fields[1::2]))
                if values.get(b"k") == b"p":
                    target = self.members.get(int(values[b"t"]))
                    if target is not None:
                        self.members.send(target, values[b"d"])
            return
        fold = key[len(self.link.prefix) + len(":room:") :]
        feed = self._feeds.get(fold)
        if feed is None or feed.lastID is None:
            return
        last = _streamID(feed.lastID)
        room = self.state.rooms.get(fold)
        node = self.nodeID.encode("ascii")
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
                exclude = self.members.get(int(values[b"m"]))
            if room is not None:
                self.local.publish(room, data, exclude)
