"""
Chat rooms: nicknames, rooms, history and commands, as plain state.

This module does no I/O.  L{ChatState} takes what members type and returns
events saying who should see which text; L{logger_service.chatsession}
turns the events into bytes on sockets.  Every text it produces is safe to
show on a terminal: relayed text passes through L{displayText}.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Deque, Dict, Iterable, List, Optional, Union

from .text import plural

if TYPE_CHECKING:
    from .interfaces import IChatMember

LOBBY = "#lobby"
"""The room every member starts in; it always exists."""

NICK_PATTERN = re.compile(r"[A-Za-z_\[\]\\^{}|`][A-Za-z0-9_\-\[\]\\^{}|`]{0,15}\Z")
"""A valid nickname: 1 to 16 characters, as IRC allows them."""

ROOM_PATTERN = re.compile(r"#[A-Za-z0-9_\-]{1,31}\Z")
"""A valid room name: C{#} and 1 to 31 letters, digits, C{_} or C{-}."""

MAX_REASON = 100
"""The longest quit reason shown to others, in characters."""

# Characters that are never relayed as they are, by their code point: they
# are shown in their place as visible text.
#
#   - C0 controls (which start terminal escape sequences) in caret notation,
#     ESC as ^[; a tab becomes a space; DEL is ^?.
#   - C1 controls (U+0080 to U+009F, e.g. CSI U+009B) in the meta notation of
#     cat -v: "M-" and the caret notation of the C0 control 0x80 below it
#     (CSI as M-^[).
#   - Invisible format characters (Unicode category Cf: bidirectional
#     overrides, embeddings and isolates, zero-width space, word joiner,
#     byte order mark, tag characters...) and the line and paragraph
#     separators U+2028 and U+2029, as <U+XXXX>: they would let one member
#     reorder or hide text in others' terminals.  Two Cf characters are kept:
#     the zero-width non-joiner and joiner (U+200C, U+200D), which Persian,
#     Indic scripts and emoji sequences need and which cannot reorder text.
_DISPLAY: Dict[int, str] = {c: "^" + chr(c + 0x40) for c in range(0x20)}
_DISPLAY[0x09] = " "
_DISPLAY[0x7F] = "^?"
_DISPLAY.update({c: "M-^" + chr(c - 0x40) for c in range(0x80, 0xA0)})
_FORMAT_RANGES = [
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200B),
    (0x200E, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
]
_DISPLAY.update({c: f"<U+{c:04X}>" for start, end in _FORMAT_RANGES for c in range(start, end + 1)})

# Most lines are printable: then str.isprintable (one loop in C, ASCII or
# not) says so, as it is false for every character _DISPLAY maps.  It is also
# false for a few harmless ones (spaces other than " ", unassigned code
# points).  Otherwise, ASCII text goes through str.translate, fast for ASCII;
# other text is split around the characters _DISPLAY maps, which are then
# replaced one by one, as str.translate would look up every character of it.
_SPLIT_DISPLAYED = re.compile(
    "([\x00-\x1f\x7f-\x9f"
    + "".join(chr(start) if start == end else f"{chr(start)}-{chr(end)}" for start, end in _FORMAT_RANGES)
    + "])"
)

# Control characters a nickname was typed with (before they were made
# visible): C0 but tab (shown as a space, it never ends up in a nickname),
# DEL, and C1 in UTF-8.
NICK_CONTROLS = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]|\xc2[\x80-\x9f]")

HELP = [
    "* Commands:",
    "*   /nick NAME       change your nickname",
    "*   /who             who is in this room",
    "*   /rooms           list the rooms",
    "*   /join #ROOM      leave this room and join (or create) another",
    "*   /msg NICK TEXT   a private message",
    "*   /me ACTION       say what you are doing",
    "*   /quit [REASON]   leave",
    "*   /help            this list",
    "* Anything else is said to the room; start a line with // to say one starting with /.",
]


def displayText(line: bytes) -> str:
    """
    Turn a received line into text that is safe to show on a terminal.

    Invalid UTF-8 becomes U+FFFD; control characters (which start terminal
    escape sequences) are shown in caret notation, e.g. ESC as C{^[}, C1
    controls in the meta notation of C{cat -v}, e.g. CSI (U+009B) as
    C{M-^[}; invisible format characters, such as the bidirectional override
    U+202E, and the line and paragraph separators as C{<U+202E>}.
    """
    text = line.decode("utf-8", "replace")
    if text.isprintable():
        return text
    if text.isascii():
        return text.translate(_DISPLAY)
    pieces = _SPLIT_DISPLAYED.split(text)
    if len(pieces) == 1:
        return text
    pieces[1::2] = [_DISPLAY[ord(char)] for char in pieces[1::2]]
    return "".join(pieces)


def foldName(name: str) -> str:
    """
    The key under which a nickname or room name is unique.
    """
    return name.casefold()


class Member:
    """
    One person in the chat.

    @ivar id: the connection id.
    @ivar nick: the current nickname.
    @ivar room: the room the member is in.
    @ivar client: the member's client, to which the chat sends text.
    """

    __slots__ = ("id", "nick", "room", "client")

    def __init__(self, id: int, nick: str, client: IChatMember) -> None:
        self.id = id
        self.nick = nick
        self.room: Optional[Room] = None
        self.client = client

    def __repr__(self) -> str:
        return f"<Member {self.id} {self.nick}>"


class Room:
    """
    A room: its members, in order of arrival, and its recent messages.
    """

    __slots__ = ("name", "members", "history")

    def __init__(self, name: str, historySize: int) -> None:
        self.name = name
        self.members: Dict[int, Member] = {}
        self.history: Deque[str] = deque(maxlen=historySize)

    def __repr__(self) -> str:
        return f"<Room {self.name} ({len(self.members)})>"


@dataclass(frozen=True)
class ToRoom:
    """
    Everyone in C{room} but C{exclude} sees C{text}.
    """

    room: Room
    text: str
    exclude: Optional[Member] = None


@dataclass(frozen=True)
class ToMember:
    """
    C{member} alone sees C{text}.
    """

    member: Member
    text: str


@dataclass(frozen=True)
class Disconnect:
    """
    C{member} has left (by C{/quit}); its connection should be closed.
    """

    member: Member
    reason: str


Event = Union[ToRoom, ToMember, Disconnect]


class ChatState:
    """
    All rooms and members of one chat.

    @ivar rooms: rooms by folded name.
    @ivar members: members by folded nickname.
    @ivar historySize: how many messages each room remembers.
    """

    def __init__(self, historySize: int = 20) -> None:
        self.historySize = historySize
        self.rooms: Dict[str, Room] = {}
        self.members: Dict[str, Member] = {}
        self._guests = 0
        self._room(LOBBY)

    def _room(self, name: str) -> Room:
        key = foldName(name)
        room = self.rooms.get(key)
        if room is None:
            room = self.rooms[key] = Room(name, self.historySize)
        return room

    def _guestNick(self) -> str:
        while True:
            self._guests += 1
            nick = f"guest{self._guests}"
            if foldName(nick) not in self.members:
                return nick

    def connect(self, id: int, client: IChatMember) -> tuple[Member, List[Event]]:
        """
        A new member arrives: name it C{guestN} and put it in the lobby.
        """
        member = Member(id, self._guestNick(), client)
        self.members[foldName(member.nick)] = member
        lobby = self._room(LOBBY)
        events: List[Event] = [
            ToMember(member, f"* Welcome, {member.nick}! You are in {lobby.name}. Type /help for commands.")
        ]
        events.extend(self._enter(member, lobby))
        return member, events

    def _enter(self, member: Member, room: Room) -> List[Event]:
        events: List[Event] = []
        if room.history:
            count = len(room.history)
            events.append(ToMember(member, f"* Last {plural(count, 'message')} in {room.name}:"))
            events.extend(ToMember(member, text) for text in room.history)
        room.members[member.id] = member
        member.room = room
        events.append(ToRoom(room, f"* {member.nick} joined", exclude=member))
        return events

    def _leave(self, member: Member, reason: str) -> List[Event]:
        room = member.room
        if room is None:
            return []
        member.room = None
        room.members.pop(member.id, None)
        if not room.members and foldName(room.name) != foldName(LOBBY):
            del self.rooms[foldName(room.name)]
            return []
        return [ToRoom(room, f"* {member.nick} left ({reason})")]

    def disconnect(self, member: Member, reason: str) -> List[Event]:
        """
        C{member}'s connection is gone: the room hears why.
        """
        if self.members.get(foldName(member.nick)) is member:
            del self.members[foldName(member.nick)]
        return self._leave(member, _reason(reason))

    def say(self, member: Member, line: bytes) -> List[Event]:
        """
        C{member} typed C{line}: a message, or a command.
        """
        if member.room is None:
            return []
        text = displayText(line)
        if text.startswith("//"):
            return self._message(member, text[1:])
        if text.startswith("/"):
            command, _, argument = text[1:].partition(" ")
            handler = getattr(self, "_cmd_" + command.lower(), None)
            if handler is None or not command:
                return [ToMember(member, f"! Unknown command /{command}. Type /help for the list.")]
            # Each command gets the line as received too: what it shows
            # was made safe to show, and may hide what was sent.
            result: List[Event] = handler(member, argument.strip(), line)
            return result
        if not text.strip():
            return []
        return self._message(member, text)

    def _message(self, member: Member, text: str) -> List[Event]:
        return self._toRoom(member, f"<{member.nick}> {text}")

    def _toRoom(self, member: Member, text: str) -> List[Event]:
        room = member.room
        assert room is not None
        room.history.append(text)
        return [ToRoom(room, text, exclude=member)]

    def _cmd_help(self, member: Member, argument: str, line: bytes) -> List[Event]:
        return [ToMember(member, text) for text in HELP]

    def _cmd_nick(self, member: Member, argument: str, line: bytes) -> List[Event]:
        if NICK_CONTROLS.search(line):
            # Shown, ESC would be ^[, two characters a nickname may hold.
            return [ToMember(member, "! Nicknames cannot hold control characters.")]
        if not argument:
            return [ToMember(member, f"* You are {member.nick}. Usage: /nick NAME")]
        if not NICK_PATTERN.match(argument):
            return [
                ToMember(
                    member,
                    "! Nicknames are 1 to 16 letters, digits or _-[]\\^{}|` and do not start with a digit or -.",
                )
            ]
        key = foldName(argument)
        holder = self.members.get(key)
        if holder is not None and holder is not member:
            return [ToMember(member, f"! The nickname {argument} is taken.")]
        old = member.nick
        if old == argument:
            return [ToMember(member, f"* You are already {old}.")]
        del self.members[foldName(old)]
        member.nick = argument
        self.members[key] = member
        assert member.room is not None
        return [
            ToMember(member, f"* You are now {argument}."),
            ToRoom(member.room, f"* {old} is now {argument}", member),
        ]

    def _cmd_who(self, member: Member, argument: str, line: bytes) -> List[Event]:
        room = member.room
        assert room is not None
        nicks = ", ".join(m.nick for m in room.members.values())
        return [ToMember(member, f"* In {room.name} ({len(room.members)}): {nicks}")]

    def _cmd_rooms(self, member: Member, argument: str, line: bytes) -> List[Event]:
        rooms = sorted(self.rooms.values(), key=lambda r: foldName(r.name))
        listing = ", ".join(f"{r.name} ({len(r.members)})" for r in rooms)
        return [ToMember(member, f"* Rooms: {listing}")]

    def _cmd_join(self, member: Member, argument: str, line: bytes) -> List[Event]:
        name = argument if argument.startswith("#") else "#" + argument
        if not ROOM_PATTERN.match(name):
            return [ToMember(member, "! Usage: /join #ROOM (1 to 31 letters, digits, _ or -)")]
        current = member.room
        assert current is not None
        if foldName(name) == foldName(current.name):
            return [ToMember(member, f"* You are already in {current.name}.")]
        events = self._leave(member, f"joined {name}")
        room = self._room(name)
        events.append(ToMember(member, f"* You are now in {room.name}."))
        events.extend(self._enter(member, room))
        return events

    def _cmd_msg(self, member: Member, argument: str, line: bytes) -> List[Event]:
        nick, _, text = argument.partition(" ")
        text = text.strip()
        if not nick or not text:
            return [ToMember(member, "! Usage: /msg NICK TEXT")]
        target = self.members.get(foldName(nick))
        if target is None:
            return [ToMember(member, f"! No one is called {nick}.")]
        return [ToMember(target, f"*{member.nick}* {text}"), ToMember(member, f"-> *{target.nick}* {text}")]

    def _cmd_me(self, member: Member, argument: str, line: bytes) -> List[Event]:
        if not argument:
            return [ToMember(member, "! Usage: /me ACTION")]
        return self._toRoom(member, f"* {member.nick} {argument}")

    def _cmd_quit(self, member: Member, argument: str, line: bytes) -> List[Event]:
        reason = _reason(argument or "quit")
        events: List[Event] = [ToMember(member, "* Bye.")]
        events.extend(self.disconnect(member, reason))
        events.append(Disconnect(member, reason))
        return events

    def roomNames(self) -> Iterable[str]:
        """
        The names of the rooms that exist.
        """
        return (room.name for room in self.rooms.values())


def _reason(reason: str) -> str:
    """
    A reason as others see it: one short line.
    """
    reason = reason.strip() or "quit"
    return reason if len(reason) <= MAX_REASON else reason[: MAX_REASON - 1] + "\u2026"
