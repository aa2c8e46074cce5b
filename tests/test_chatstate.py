"""
Tests for L{logger_service.chatstate}: nicknames, rooms, history and commands as
plain state, and L{displayText}.
"""

from __future__ import annotations

import re
import unicodedata
from typing import List, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from logger_service.chatstate import (
    HELP,
    LOBBY,
    MAX_REASON,
    NICK_PATTERN,
    ROOM_PATTERN,
    ChatState,
    Disconnect,
    Event,
    Member,
    Room,
    ToMember,
    ToRoom,
    displayText,
)

from .chatclients import RecordingClient

PROPERTY = settings(max_examples=200, deadline=None)

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
"""Any C0 control, DEL or C1 control."""

JOINERS = "\u200c\u200d"
"""The two invisible format characters the chat relays as they are."""

UNSAFE = re.compile(
    "["
    + "".join(
        chr(c)
        for c in range(0x110000)
        if unicodedata.category(chr(c)) in ("Cc", "Zl", "Zp")
        or (unicodedata.category(chr(c)) == "Cf" and chr(c) not in JOINERS)
    )
    + "]"
)
"""
Any character no relayed text may hold: a control character (C0, DEL, C1),
a line or paragraph separator, or an invisible format character (Unicode
category Cf, as this Python knows it) but the zero-width (non-)joiner.
"""


def shown(text: str) -> str:
    """
    How the chat shows C{text}, character by character, as README.rst says:
    the reference L{displayText} must agree with.
    """
    out = []
    for char in text:
        code = ord(char)
        if char == "\t":
            out.append(" ")
        elif code < 0x20:
            out.append("^" + chr(code + 0x40))
        elif code == 0x7F:
            out.append("^?")
        elif 0x80 <= code < 0xA0:
            out.append("M-^" + chr(code - 0x40))
        elif UNSAFE.match(char):
            out.append(f"<U+{code:04X}>")
        else:
            out.append(char)
    return "".join(out)


def seen(events: Sequence[Event], member: Member) -> List[str]:
    """
    The texts C{member} sees from C{events}, in order: those sent to it, and
    those sent to a room it is in now (the state after the call, which is
    when the I/O layer delivers them) unless it is excluded.
    """
    texts = []
    for event in events:
        if isinstance(event, ToMember) and event.member is member:
            texts.append(event.text)
        elif isinstance(event, ToRoom) and event.exclude is not member and member.id in event.room.members:
            texts.append(event.text)
    return texts


def roomTexts(events: Sequence[Event], room: Room) -> List[str]:
    """
    The texts of the L{ToRoom} events addressed to C{room}.
    """
    return [event.text for event in events if isinstance(event, ToRoom) and event.room is room]


def eventTexts(events: Sequence[Event]) -> List[str]:
    """
    Every text (and reason) carried by C{events}.
    """
    texts = []
    for event in events:
        if isinstance(event, Disconnect):
            texts.append(event.reason)
        else:
            texts.append(event.text)
    return texts


class ChatTestCase(SynchronousTestCase):
    """
    Helpers for tests that drive a L{ChatState}.
    """

    def setUp(self) -> None:
        self.state = ChatState(historySize=5)
        self.nextID = 0

    def connect(self, state: ChatState | None = None) -> Member:
        """
        Connect a new member to C{state} (by default C{self.state}).
        """
        self.nextID += 1
        member, _ = (state or self.state).connect(self.nextID, client=RecordingClient())
        return member

    def members(self, count: int) -> List[Member]:
        """
        Connect C{count} new members.
        """
        return [self.connect() for _ in range(count)]

    def lobby(self) -> Room:
        """
        The lobby of C{self.state}.
        """
        return self.state.rooms[LOBBY]

    def assertError(self, events: Sequence[Event], member: Member) -> str:
        """
        Assert that C{events} is one error line sent to C{member} alone, and
        return it.
        """
        self.assertEqual(len(events), 1, events)
        [event] = events
        assert isinstance(event, ToMember), event
        self.assertIs(event.member, member)
        self.assertTrue(event.text.startswith("!"), event.text)
        return event.text


class PatternTests(SynchronousTestCase):
    """
    L{NICK_PATTERN} and L{ROOM_PATTERN}.
    """

    def test_validNicks(self) -> None:
        """
        Letters, digits (after the first character) and C{_-[]\\^{}|`}, up to 16
        characters, are a valid nickname.
        """
        for nick in ["a", "Bob", "x1", "_under", "[away]", "a-b", "{x}|y^z`", "\\o", "a" * 16]:
            self.assertTrue(NICK_PATTERN.match(nick), nick)

    def test_invalidNicks(self) -> None:
        """
        Empty, too long, starting with a digit or C{-}, containing spaces,
        punctuation or non-ASCII letters: not a nickname.
        """
        for nick in ["", "a" * 17, "1abc", "-bob", "bob smith", "bob!", "b\u00f8b", "bob\n", "#bob", "b\x1b"]:
            self.assertIsNone(NICK_PATTERN.match(nick), nick)

    def test_validRooms(self) -> None:
        """
        C{#} and 1 to 31 letters, digits, C{_} or C{-} is a room name.
        """
        for name in ["#a", "#lobby", "#Room_1", "#-", "#" + "x" * 31]:
            self.assertTrue(ROOM_PATTERN.match(name), name)

    def test_invalidRooms(self) -> None:
        """
        No C{#}, nothing after it, too long, spaces or other characters: not
        a room name.
        """
        for name in ["#", "lobby", "#" + "x" * 32, "#a b", "#a.b", "##a", "#caf\u00e9", "#a\n"]:
            self.assertIsNone(ROOM_PATTERN.match(name), name)


class DisplayTextTests(SynchronousTestCase):
    """
    L{displayText} makes received bytes safe to show on a terminal.
    """

    def test_plainText(self) -> None:
        """
        Printable ASCII is unchanged.
        """
        self.assertEqual(displayText(b"Hello, world! <> [] ~"), "Hello, world! <> [] ~")

    def test_utf8(self) -> None:
        """
        Valid UTF-8 is decoded.
        """
        self.assertEqual(displayText("caf\u00e9 \u2603".encode()), "caf\u00e9 \u2603")

    def test_invalidUTF8(self) -> None:
        """
        Invalid UTF-8 becomes U+FFFD.
        """
        self.assertEqual(displayText(b"a\xffb"), "a\ufffdb")
        self.assertEqual(displayText(b"\xc3"), "\ufffd")

    def test_escape(self) -> None:
        """
        ESC is shown as C{^[}, so an escape sequence is shown, not obeyed.
        """
        self.assertEqual(displayText(b"\x1b[2Jgone"), "^[[2Jgone")

    def test_everyC0Control(self) -> None:
        """
        Every C0 control but tab is shown in caret notation.
        """
        for code in range(0x20):
            if code == 0x09:
                continue
            self.assertEqual(displayText(bytes([code])), "^" + chr(code + 0x40), code)

    def test_namedControls(self) -> None:
        """
        NUL, BEL, BS, LF, CR and the unit separator in caret notation.
        """
        self.assertEqual(displayText(b"\x00\x07\x08\n\r\x1f"), "^@^G^H^J^M^_")

    def test_tab(self) -> None:
        """
        A tab becomes a space.
        """
        self.assertEqual(displayText(b"a\tb"), "a b")

    def test_delete(self) -> None:
        """
        DEL is shown as C{^?}.
        """
        self.assertEqual(displayText(b"a\x7fb"), "a^?b")

    def test_c1Controls(self) -> None:
        """
        C1 controls (U+0080 to U+009F, e.g. CSI U+009B) are shown in the
        meta notation of C{cat -v}: C{M-} and the caret notation of the C0
        control 0x80 below.
        """
        self.assertEqual(displayText("\u009b2J".encode()), "M-^[2J")
        self.assertEqual(displayText("a\u0085b".encode()), "aM-^Eb")
        for code in range(0x80, 0xA0):
            self.assertEqual(displayText(chr(code).encode("utf-8")), "M-^" + chr(code - 0x40), hex(code))

    def test_invalidUTF8NotAControl(self) -> None:
        """
        The raw byte 0x9B (not UTF-8) is invalid UTF-8, shown as U+FFFD, not
        as the control U+009B.
        """
        self.assertEqual(displayText(b"\x9b2J"), "\ufffd2J")

    def test_justAboveC1(self) -> None:
        """
        U+00A0 and above are not controls and are kept.
        """
        self.assertEqual(displayText("\u00a0\u00ff".encode()), "\u00a0\u00ff")

    def test_bidiControls(self) -> None:
        """
        Bidirectional embeddings, overrides and isolates (U+202A to U+202E,
        U+2066 to U+2069) and marks are shown as C{<U+XXXX>}, so no one can
        reorder text on others' screens.
        """
        self.assertEqual(displayText("invoice\u202egpj.exe".encode()), "invoice<U+202E>gpj.exe")
        for code in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]:
            self.assertEqual(displayText(chr(code).encode()), f"<U+{code:04X}>", hex(code))

    def test_invisibleCharacters(self) -> None:
        """
        Zero-width space, word joiner, soft hyphen, byte order mark and tag
        characters are shown as C{<U+XXXX>}.
        """
        self.assertEqual(displayText("a\u200bb\u2060c\u00add\ufeffe".encode()), "a<U+200B>b<U+2060>c<U+00AD>d<U+FEFF>e")
        self.assertEqual(displayText("\U000e0041\U000e007f".encode()), "<U+E0041><U+E007F>")

    def test_lineAndParagraphSeparators(self) -> None:
        """
        U+2028 and U+2029, which some terminals and clients treat as line
        breaks, are shown as C{<U+2028>} and C{<U+2029>}.
        """
        self.assertEqual(displayText("a\u2028b\u2029c".encode()), "a<U+2028>b<U+2029>c")

    def test_everyFormatCharacter(self) -> None:
        """
        Every invisible format character this Python's Unicode database
        knows (category Cf), and every line or paragraph separator, is
        shown as C{<U+XXXX>}, but the zero-width non-joiner and joiner.
        """
        codes = [
            c for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cf", "Zl", "Zp") and chr(c) not in JOINERS
        ]
        self.assertGreater(len(codes), 150)
        for code in codes:
            self.assertEqual(displayText(chr(code).encode("utf-8")), f"<U+{code:04X}>", hex(code))

    def test_joinersKept(self) -> None:
        """
        The zero-width non-joiner and joiner, which scripts such as Persian
        and emoji sequences need, are relayed as they are.
        """
        family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
        persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
        self.assertEqual(displayText(family.encode()), family)
        self.assertEqual(displayText(persian.encode()), persian)

    def test_chinese(self) -> None:
        """
        Chinese text, with its full-width punctuation, is relayed as it is;
        a control character in it is still shown in caret notation.
        """
        text = "\u4f8b\u5982\uff0c\u5c0d\u65bc\u4e00\u500b\u804a\u5929\u5ba4\u4f86\u8aaa\u3002"
        self.assertEqual(displayText(text.encode()), text)
        self.assertEqual(displayText((text + "\x1b[2J").encode()), text + "^[[2J")
        self.assertEqual(displayText((text + "\u202e").encode()), text + "<U+202E>")
        self.assertEqual(displayText(text.encode()[:-1]), text[:-1] + "\ufffd")

    @PROPERTY
    @given(st.binary(max_size=200))
    def test_neverControls(self, data: bytes) -> None:
        """
        Whatever the bytes, the text has no C0 control, DEL, C1 control,
        line or paragraph separator or invisible format character.
        """
        self.assertIsNone(UNSAFE.search(displayText(data)))

    @PROPERTY
    @given(st.text(max_size=100))
    def test_neverUnsafe(self, text: str) -> None:
        """
        Whatever the text, what is shown has no unsafe character.
        """
        self.assertIsNone(UNSAFE.search(displayText(text.encode("utf-8", "surrogatepass"))))

    @PROPERTY
    @given(st.text(max_size=100))
    def test_everyCharacterShown(self, text: str) -> None:
        """
        Any valid text is shown character by character as L{shown} says:
        the fast paths for clean ASCII and clean UTF-8 lines and the
        character-by-character one agree.
        """
        text = text.encode("utf-8", "replace").decode("utf-8")
        self.assertEqual(displayText(text.encode("utf-8")), shown(text))

    @PROPERTY
    @given(
        st.lists(
            st.sampled_from(
                ["a", " ", "\u4e2d", "\u00e9", "\x1b", "\t", "\x7f", "\u009b", "\u202e", "\u200d", "\ufeff"]
            ),
            max_size=30,
        ).map("".join)
    )
    def test_mixtures(self, text: str) -> None:
        """
        Lines mixing ASCII, Chinese, accented Latin, controls and format
        characters are shown as L{shown} says.
        """
        self.assertEqual(displayText(text.encode("utf-8")), shown(text))

    @PROPERTY
    @given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200))
    def test_printableASCIIUnchanged(self, text: str) -> None:
        """
        Printable ASCII passes unchanged.
        """
        self.assertEqual(displayText(text.encode("ascii")), text)

    @PROPERTY
    @given(st.text(max_size=100))
    def test_textWithoutControlsUnchanged(self, text: str) -> None:
        """
        Any text that has no controls, no tab, no separators and no
        invisible format characters but the joiners comes back as it was
        sent in UTF-8.
        """
        text = UNSAFE.sub("", text.encode("utf-8", "replace").decode("utf-8"))
        self.assertEqual(displayText(text.encode("utf-8")), text)


class ConnectTests(ChatTestCase):
    """
    L{ChatState.connect} names a newcomer and puts it in the lobby.
    """

    def test_guestNicks(self) -> None:
        """
        Newcomers are called guest1, guest2, ...
        """
        self.assertEqual([m.nick for m in self.members(3)], ["guest1", "guest2", "guest3"])

    def test_inLobby(self) -> None:
        """
        A newcomer is a member of the lobby and known by its nick.
        """
        member = self.connect()
        self.assertIs(member.room, self.lobby())
        self.assertIn(member.id, self.lobby().members)
        self.assertIs(self.state.members["guest1"], member)

    def test_idAndClient(self) -> None:
        """
        The member carries the id and client it was connected with.
        """
        client = RecordingClient()
        member, _ = self.state.connect(42, client)
        self.assertEqual(member.id, 42)
        self.assertIs(member.client, client)

    def test_skipsTakenNicks(self) -> None:
        """
        A guest nick someone has taken with C{/nick} is skipped.
        """
        first = self.connect()
        self.state.say(first, b"/nick guest2")
        self.assertEqual(self.connect().nick, "guest3")

    def test_skipsTakenNicksCaseInsensitively(self) -> None:
        """
        A taken guest nick is skipped whatever its case.
        """
        first = self.connect()
        self.state.say(first, b"/nick GUEST2")
        self.assertEqual(first.nick, "GUEST2")
        self.assertEqual(self.connect().nick, "guest3")

    def test_welcome(self) -> None:
        """
        The newcomer alone gets one line naming its nick, the lobby and
        C{/help}.
        """
        self.connect()
        member, events = self.state.connect(99, RecordingClient())
        texts = seen(events, member)
        self.assertEqual(len(texts), 1, texts)
        welcome = texts[0]
        self.assertNotIn("\n", welcome)
        for word in ["guest2", "#lobby", "/help"]:
            self.assertIn(word, welcome)
        self.assertIsInstance(events[0], ToMember)

    def test_joinNotice(self) -> None:
        """
        The room hears C{* NICK joined}, and the newcomer is excluded.
        """
        old = self.connect()
        member, events = self.state.connect(99, RecordingClient())
        self.assertEqual(seen(events, old), ["* guest2 joined"])
        self.assertIn(ToRoom(self.lobby(), "* guest2 joined", exclude=member), events)

    def test_noHistoryNoHeader(self) -> None:
        """
        In a room with no messages there is nothing to replay.
        """
        member, events = self.state.connect(1, RecordingClient())
        self.assertFalse(any("Last" in text for text in seen(events, member)))

    def test_historyReplayBeforeJoinNotice(self) -> None:
        """
        The newcomer gets a header and the room's messages after the welcome
        and before the join notice goes to the room.
        """
        old = self.connect()
        self.state.say(old, b"one")
        self.state.say(old, b"two")
        member, events = self.state.connect(99, RecordingClient())
        self.assertEqual(
            seen(events, member)[1:],
            ["* Last 2 messages in #lobby:", "<guest1> one", "<guest1> two"],
        )
        self.assertEqual(len(events), 5)
        self.assertEqual(events[4], ToRoom(self.lobby(), "* guest2 joined", exclude=member))


class MessageTests(ChatTestCase):
    """
    What is not a command is said to the room.
    """

    def test_plain(self) -> None:
        """
        A line goes to the room as C{<nick> text}, excluding the sender.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"hello there")
        self.assertEqual(events, [ToRoom(self.lobby(), "<guest1> hello there", exclude=a)])
        self.assertEqual(seen(events, b), ["<guest1> hello there"])
        self.assertEqual(seen(events, a), [])

    def test_otherRoomsDoNotHear(self) -> None:
        """
        A member in another room does not see the message.
        """
        a, b = self.members(2)
        self.state.say(b, b"/join #elsewhere")
        self.assertEqual(seen(self.state.say(a, b"hello"), b), [])

    def test_empty(self) -> None:
        """
        An empty line says nothing.
        """
        a, _ = self.members(2)
        self.assertEqual(self.state.say(a, b""), [])

    def test_blank(self) -> None:
        """
        A line of spaces and tabs says nothing.
        """
        a, _ = self.members(2)
        self.assertEqual(self.state.say(a, b"  \t  "), [])

    def test_doubleSlash(self) -> None:
        """
        C{//text} says C{/text}.
        """
        a, _ = self.members(2)
        self.assertEqual(self.state.say(a, b"//nick bob"), [ToRoom(self.lobby(), "<guest1> /nick bob", exclude=a)])
        self.assertEqual(a.nick, "guest1")

    def test_controlsShownSafely(self) -> None:
        """
        Control characters in a message are shown in caret notation.
        """
        a, _ = self.members(2)
        [event] = self.state.say(a, b"\x1b[2Jhi\x07")
        self.assertEqual(event, ToRoom(self.lobby(), "<guest1> ^[[2Jhi^G", exclude=a))

    def test_unknownCommand(self) -> None:
        """
        An unknown command is an error, to the sender alone, naming C{/help}.
        """
        a, _ = self.members(2)
        text = self.assertError(self.state.say(a, b"/dance wildly"), a)
        self.assertIn("/dance", text)
        self.assertIn("/help", text)

    def test_slashAlone(self) -> None:
        """
        C{/} alone is an unknown command.
        """
        a, _ = self.members(2)
        self.assertIn("/help", self.assertError(self.state.say(a, b"/"), a))

    def test_slashSpace(self) -> None:
        """
        C{/ text} is an unknown command too, not a message.
        """
        a, _ = self.members(2)
        self.assertIn("/help", self.assertError(self.state.say(a, b"/ hello"), a))

    def test_commandsCaseInsensitive(self) -> None:
        """
        C{/NICK} is C{/nick}.
        """
        a = self.connect()
        self.state.say(a, b"/NICK bob")
        self.assertEqual(a.nick, "bob")

    def test_help(self) -> None:
        """
        C{/help} sends the sender alone the command list.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/help")
        self.assertEqual(seen(events, a), HELP)
        self.assertEqual(seen(events, b), [])
        self.assertTrue(all(isinstance(event, ToMember) for event in events))


class NickTests(ChatTestCase):
    """
    C{/nick NAME} changes a member's nickname.
    """

    def test_change(self) -> None:
        """
        The room hears C{* OLD is now NEW} (not the changer); the changer gets
        a confirmation; the new nick is known.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/nick alice")
        self.assertEqual(a.nick, "alice")
        self.assertIn(ToRoom(self.lobby(), "* guest1 is now alice", exclude=a), events)
        self.assertEqual(seen(events, b), ["* guest1 is now alice"])
        [confirmation] = seen(events, a)
        self.assertIn("alice", confirmation)
        self.assertIs(self.state.members["alice"], a)
        self.assertNotIn("guest1", self.state.members)

    def test_surroundingSpaces(self) -> None:
        """
        Spaces around the name are ignored.
        """
        a = self.connect()
        self.state.say(a, b"/nick   alice  ")
        self.assertEqual(a.nick, "alice")

    def test_messagesUseNewNick(self) -> None:
        """
        After the change, messages carry the new nick.
        """
        a, _ = self.members(2)
        self.state.say(a, b"/nick alice")
        self.assertEqual(eventTexts(self.state.say(a, b"hi")), ["<alice> hi"])

    def test_taken(self) -> None:
        """
        A nick someone has is refused, whatever its case.
        """
        a, b = self.members(2)
        for name in [b"guest2", b"GUEST2", b"Guest2"]:
            self.assertIn("taken", self.assertError(self.state.say(a, b"/nick " + name), a))
            self.assertEqual(a.nick, "guest1")
        self.assertIs(self.state.members["guest2"], b)

    def test_invalid(self) -> None:
        """
        Too long, starting with a digit, with spaces or non-ASCII: refused
        with an error, and the nick is unchanged.
        """
        a, _ = self.members(2)
        for name in ["a" * 17, "1abc", "-abc", "bob smith", "b\u00f8b", "bob!", "bob\x7f"]:
            self.assertError(self.state.say(a, b"/nick " + name.encode("utf-8")), a)
            self.assertEqual(a.nick, "guest1")
        self.assertEqual(set(self.state.members), {"guest1", "guest2"})

    def test_controlsNeverInNick(self) -> None:
        """
        Whatever happens to a nick sent with control characters, the nick
        holds none (the room is never told a nick containing ESC).
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/nick \x1b[31mred\x00")
        self.assertIsNone(CONTROL.search(a.nick), repr(a.nick))
        for text in eventTexts(events):
            self.assertIsNone(CONTROL.search(text), repr(text))

    def test_controlRefused(self) -> None:
        """
        A nick typed with a control character is refused with an error that
        says so, though the character shown in caret notation would be a
        valid nick (ESC is C{^[}, CSI C{M-^[}): the room never sees it.
        """
        a, b = self.members(2)
        for line in [b"/nick bob\x1b", b"/nick \x1b", b"/nick a\x7f", b"/nick x\xc2\x9b", b"/nick \x00bob"]:
            events = self.state.say(a, line)
            self.assertIn("control characters", self.assertError(events, a), line)
            self.assertEqual(a.nick, "guest1")
        self.assertEqual(set(self.state.members), {"guest1", "guest2"})

    def test_formatCharacterRefused(self) -> None:
        """
        A nick with a bidirectional override is refused.
        """
        a, _ = self.members(2)
        self.assertError(self.state.say(a, "/nick bob\u202e".encode()), a)
        self.assertEqual(a.nick, "guest1")

    def test_tabBeforeNick(self) -> None:
        """
        A tab between C{/nick} and the name is a space, not part of the nick.
        """
        a, _ = self.members(2)
        self.state.say(a, b"/nick\tbob")
        self.assertEqual(a.nick, "bob")

    def test_longestValid(self) -> None:
        """
        Sixteen characters is allowed.
        """
        a = self.connect()
        self.state.say(a, b"/nick " + b"x" * 16)
        self.assertEqual(a.nick, "x" * 16)

    def test_noArgument(self) -> None:
        """
        C{/nick} alone tells the member its nick and changes nothing.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/nick")
        self.assertEqual(len(seen(events, a)), 1)
        self.assertIn("guest1", seen(events, a)[0])
        self.assertEqual(seen(events, b), [])
        self.assertEqual(a.nick, "guest1")

    def test_ownNickCase(self) -> None:
        """
        A member may change the case of its own nick.
        """
        a, b = self.members(2)
        self.state.say(a, b"/nick alice")
        events = self.state.say(a, b"/nick ALICE")
        self.assertEqual(a.nick, "ALICE")
        self.assertEqual(seen(events, b), ["* alice is now ALICE"])
        self.assertEqual(eventTexts(self.state.say(a, b"hi")), ["<ALICE> hi"])
        self.assertIn("taken", self.assertError(self.state.say(b, b"/nick alice"), b))

    def test_sameNick(self) -> None:
        """
        Changing to the nick one has tells the room nothing.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/nick guest1")
        self.assertEqual(seen(events, b), [])
        self.assertEqual(a.nick, "guest1")

    def test_oldNickFreed(self) -> None:
        """
        After a change, someone else may take the old nick.
        """
        a, b = self.members(2)
        self.state.say(a, b"/nick alice")
        self.state.say(b, b"/nick guest1")
        self.assertEqual(b.nick, "guest1")
        self.assertIs(self.state.members["guest1"], b)
        self.assertIs(self.state.members["alice"], a)


class WhoAndRoomsTests(ChatTestCase):
    """
    C{/who} and C{/rooms}.
    """

    def test_who(self) -> None:
        """
        C{/who} lists the members of the current room to the asker alone.
        """
        a, b, c = self.members(3)
        self.state.say(c, b"/join #other")
        events = self.state.say(a, b"/who")
        [text] = seen(events, a)
        self.assertEqual(seen(events, b), [])
        self.assertIn("guest1", text)
        self.assertIn("guest2", text)
        self.assertNotIn("guest3", text)
        self.assertIn("#lobby", text)

    def test_whoInOtherRoom(self) -> None:
        """
        C{/who} in another room lists that room's members.
        """
        a, b, c = self.members(3)
        self.state.say(b, b"/join #other")
        self.state.say(c, b"/join #other")
        [text] = seen(self.state.say(c, b"/who"), c)
        self.assertIn("#other", text)
        self.assertIn("guest2", text)
        self.assertIn("guest3", text)
        self.assertNotIn("guest1", text)

    def test_whoUsesCurrentNicks(self) -> None:
        """
        C{/who} shows nicks as they are now.
        """
        a, b = self.members(2)
        self.state.say(b, b"/nick bob")
        [text] = seen(self.state.say(a, b"/who"), a)
        self.assertIn("bob", text)
        self.assertNotIn("guest2", text)

    def test_rooms(self) -> None:
        """
        C{/rooms} lists every room with its member count, sorted regardless of
        case.
        """
        a, b, c, d = self.members(4)
        self.state.say(b, b"/join #beta")
        self.state.say(c, b"/join #Alpha")
        self.state.say(d, b"/join #beta")
        self.assertEqual(
            seen(self.state.say(a, b"/rooms"), a),
            ["* Rooms: #Alpha (1), #beta (2), #lobby (1)"],
        )


class JoinTests(ChatTestCase):
    """
    C{/join #ROOM} moves a member between rooms.
    """

    def test_join(self) -> None:
        """
        The old room hears C{* NICK left (joined #room)}, the new room C{* NICK
        joined}, and the member gets a confirmation.
        """
        a, b, c = self.members(3)
        self.state.say(c, b"/join #games")
        events = self.state.say(a, b"/join #games")
        games = self.state.rooms["#games"]
        self.assertIs(a.room, games)
        self.assertNotIn(a.id, self.lobby().members)
        self.assertIn(a.id, games.members)
        self.assertEqual(seen(events, b), ["* guest1 left (joined #games)"])
        self.assertEqual(seen(events, c), ["* guest1 joined"])
        self.assertEqual(roomTexts(events, games), ["* guest1 joined"])
        [confirmation] = seen(events, a)
        self.assertIn("#games", confirmation)

    def test_createsRoom(self) -> None:
        """
        Joining a room that does not exist creates it.
        """
        a = self.connect()
        self.assertNotIn("#new", self.state.rooms)
        self.state.say(a, b"/join #new")
        self.assertEqual(self.state.rooms["#new"].name, "#new")
        self.assertIn("#new", set(self.state.roomNames()))

    def test_history(self) -> None:
        """
        The member gets the new room's history after the confirmation.
        """
        a, b = self.members(2)
        self.state.say(b, b"/join #games")
        self.state.say(b, b"gg")
        self.state.say(b, b"/me cheers")
        events = self.state.say(a, b"/join #games")
        self.assertEqual(seen(events, a)[1:], ["* Last 2 messages in #games:", "<guest2> gg", "* guest2 cheers"])

    def test_caseInsensitive(self) -> None:
        """
        Room names are case-insensitive; the room keeps the name it was created
        with.
        """
        a, b = self.members(2)
        self.state.say(a, b"/join #Games")
        events = self.state.say(b, b"/join #GAMES")
        self.assertIs(b.room, a.room)
        self.assertEqual(seen(events, a), ["* guest2 joined"])
        self.assertIn("#Games", seen(events, b)[0])
        self.assertEqual([r.name for r in self.state.rooms.values()], ["#lobby", "#Games"])

    def test_lobbyCaseInsensitive(self) -> None:
        """
        C{/join #LOBBY} goes back to the lobby.
        """
        a = self.connect()
        self.state.say(a, b"/join #games")
        self.state.say(a, b"/join #LOBBY")
        self.assertIs(a.room, self.lobby())

    def test_invalid(self) -> None:
        """
        Invalid room names are refused, and the member stays put.
        """
        a = self.connect()
        for name in [b"", b"#", b"#a b", b"#" + b"x" * 32, b"#caf\xc3\xa9", b"#a.b", b"#\x1b[2J"]:
            self.assertError(self.state.say(a, b"/join " + name), a)
            self.assertIs(a.room, self.lobby())
        self.assertEqual(list(self.state.rooms), ["#lobby"])

    def test_longestName(self) -> None:
        """
        A name of 31 characters after C{#} is allowed.
        """
        a = self.connect()
        name = "#" + "x" * 31
        self.state.say(a, b"/join " + name.encode())
        assert a.room is not None
        self.assertEqual(a.room.name, name)

    def test_currentRoom(self) -> None:
        """
        Joining the room one is in only says so.
        """
        a, b = self.members(2)
        for name in [b"#lobby", b"#Lobby"]:
            events = self.state.say(a, b"/join " + name)
            self.assertEqual(len(events), 1)
            self.assertEqual(len(seen(events, a)), 1)
            self.assertEqual(seen(events, b), [])
            self.assertIs(a.room, self.lobby())

    def test_emptyRoomDisappears(self) -> None:
        """
        A room other than the lobby goes away when its last member leaves.
        """
        a = self.connect()
        self.state.say(a, b"/join #games")
        self.state.say(a, b"/join #lobby")
        self.assertNotIn("#games", self.state.rooms)
        [text] = seen(self.state.say(a, b"/rooms"), a)
        self.assertNotIn("#games", text)

    def test_emptyRoomLosesHistory(self) -> None:
        """
        A room that went away starts afresh when created again.
        """
        a, b = self.members(2)
        self.state.say(a, b"/join #games")
        self.state.say(a, b"secret")
        self.state.say(a, b"/join #lobby")
        events = self.state.say(b, b"/join #games")
        self.assertFalse(any("secret" in text for text in seen(events, b)))

    def test_roomWithMembersStays(self) -> None:
        """
        A room stays while anyone is in it.
        """
        a, b = self.members(2)
        self.state.say(a, b"/join #games")
        self.state.say(b, b"/join #games")
        self.state.say(a, b"/join #lobby")
        self.assertIn("#games", self.state.rooms)

    def test_lobbyNeverDisappears(self) -> None:
        """
        The lobby stays when everyone leaves it, by C{/join} or by leaving.
        """
        a, b = self.members(2)
        lobby = self.lobby()
        self.state.say(a, b"/join #games")
        self.state.say(b, b"/quit")
        self.assertIs(self.state.rooms["#lobby"], lobby)
        self.state.say(a, b"/quit")
        self.assertIs(self.state.rooms["#lobby"], lobby)
        self.assertEqual(list(self.state.roomNames()), ["#lobby"])
        c = self.connect()
        self.assertIs(c.room, lobby)


class MsgTests(ChatTestCase):
    """
    C{/msg NICK TEXT} sends a private message.
    """

    def test_private(self) -> None:
        """
        Only the target gets C{*SENDER* text}; the sender gets a confirmation;
        the room hears nothing.
        """
        a, b, c = self.members(3)
        events = self.state.say(a, b"/msg guest2 hello  there")
        self.assertEqual(seen(events, b), ["*guest1* hello  there"])
        self.assertEqual(seen(events, c), [])
        [confirmation] = seen(events, a)
        self.assertIn("guest2", confirmation)
        self.assertIn("hello  there", confirmation)
        self.assertFalse(any(isinstance(event, ToRoom) for event in events))

    def test_otherRoom(self) -> None:
        """
        A private message reaches a member in another room.
        """
        a, b = self.members(2)
        self.state.say(b, b"/join #games")
        self.assertEqual(seen(self.state.say(a, b"/msg guest2 psst"), b), ["*guest1* psst"])

    def test_targetCaseInsensitive(self) -> None:
        """
        The target's nick may be given in any case.
        """
        a, b = self.members(2)
        self.assertEqual(seen(self.state.say(a, b"/msg GUEST2 hi"), b), ["*guest1* hi"])

    def test_notInHistory(self) -> None:
        """
        Private messages are not replayed to newcomers.
        """
        a, b = self.members(2)
        self.state.say(a, b"/msg guest2 secret")
        newcomer, events = self.state.connect(99, RecordingClient())
        self.assertFalse(any("secret" in text for text in seen(events, newcomer)))

    def test_unknownNick(self) -> None:
        """
        A message to no one is an error.
        """
        a, _ = self.members(2)
        self.assertIn("nobody", self.assertError(self.state.say(a, b"/msg nobody hi"), a))

    def test_missingText(self) -> None:
        """
        A message without text, or without anything, is an error.
        """
        a, b = self.members(2)
        for line in [b"/msg guest2", b"/msg guest2    ", b"/msg", b"/msg  "]:
            self.assertError(self.state.say(a, line), a)


class MeTests(ChatTestCase):
    """
    C{/me ACTION}.
    """

    def test_action(self) -> None:
        """
        C{/me waves} tells the room C{* NICK waves}, excluding the sender.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/me waves")
        self.assertEqual(events, [ToRoom(self.lobby(), "* guest1 waves", exclude=a)])
        self.assertEqual(seen(events, b), ["* guest1 waves"])

    def test_empty(self) -> None:
        """
        C{/me} with nothing is an error.
        """
        a, _ = self.members(2)
        self.assertError(self.state.say(a, b"/me"), a)
        self.assertError(self.state.say(a, b"/me    "), a)


class QuitTests(ChatTestCase):
    """
    C{/quit [REASON]} and L{ChatState.disconnect}.
    """

    def test_quit(self) -> None:
        """
        The room hears C{* NICK left (quit)}; a L{Disconnect} says to close the
        connection; the member is gone.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/quit")
        self.assertEqual(seen(events, b), ["* guest1 left (quit)"])
        self.assertIn(Disconnect(a, "quit"), events)
        self.assertNotIn("guest1", self.state.members)
        self.assertNotIn(a.id, self.lobby().members)
        self.assertIsNone(a.room)

    def test_reason(self) -> None:
        """
        A reason given with C{/quit} is shown.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/quit  gone fishing ")
        self.assertEqual(seen(events, b), ["* guest1 left (gone fishing)"])
        self.assertIn(Disconnect(a, "gone fishing"), events)

    def test_blankReason(self) -> None:
        """
        A blank reason is C{quit}.
        """
        a, b = self.members(2)
        self.assertEqual(seen(self.state.say(a, b"/quit \t "), b), ["* guest1 left (quit)"])

    def test_hostileReason(self) -> None:
        """
        Control characters in a reason are shown in caret notation.
        """
        a, b = self.members(2)
        self.assertEqual(seen(self.state.say(a, b"/quit \x1b[2J\x07"), b), ["* guest1 left (^[[2J^G)"])

    def test_longReason(self) -> None:
        """
        A long reason is cut to L{MAX_REASON} characters.
        """
        a, b = self.members(2)
        events = self.state.say(a, b"/quit " + b"x" * 500)
        [text] = seen(events, b)
        reason = text[len("* guest1 left (") : -1]
        self.assertEqual(len(reason), MAX_REASON)
        self.assertTrue(reason.startswith("x" * (MAX_REASON - 1)), reason)
        [disconnect] = [event for event in events if isinstance(event, Disconnect)]
        self.assertEqual(len(disconnect.reason), MAX_REASON)

    def test_reasonAtLimit(self) -> None:
        """
        A reason of exactly L{MAX_REASON} characters is kept whole.
        """
        a, b = self.members(2)
        reason = "y" * MAX_REASON
        self.assertEqual(seen(self.state.say(a, b"/quit " + reason.encode()), b), [f"* guest1 left ({reason})"])

    def test_nickFreed(self) -> None:
        """
        After C{/quit}, the nick may be taken by someone else.
        """
        a, b = self.members(2)
        self.state.say(a, b"/quit")
        self.state.say(b, b"/nick guest1")
        self.assertEqual(b.nick, "guest1")

    def test_saysNothingAfterQuit(self) -> None:
        """
        A member who quit can say nothing more.
        """
        a, _ = self.members(2)
        self.state.say(a, b"/quit")
        self.assertEqual(self.state.say(a, b"hello"), [])
        self.assertEqual(self.state.say(a, b"/who"), [])

    def test_quitEmptiesRoom(self) -> None:
        """
        Quitting the last member of a room removes it.
        """
        a = self.connect()
        self.state.say(a, b"/join #games")
        self.state.say(a, b"/quit")
        self.assertNotIn("#games", self.state.rooms)

    def test_disconnect(self) -> None:
        """
        L{ChatState.disconnect} tells the room why, and frees the nick.
        """
        a, b = self.members(2)
        events = self.state.disconnect(a, "connection lost")
        self.assertEqual(seen(events, b), ["* guest1 left (connection lost)"])
        self.assertFalse(any(isinstance(event, Disconnect) for event in events))
        self.assertNotIn("guest1", self.state.members)
        self.assertNotIn(a.id, self.lobby().members)
        self.state.say(b, b"/nick guest1")
        self.assertEqual(b.nick, "guest1")

    def test_disconnectLongReason(self) -> None:
        """
        L{ChatState.disconnect} also cuts long reasons to L{MAX_REASON}.
        """
        a, b = self.members(2)
        [text] = seen(self.state.disconnect(a, "z" * 300), b)
        self.assertEqual(len(text[len("* guest1 left (") : -1]), MAX_REASON)

    def test_disconnectTwice(self) -> None:
        """
        Disconnecting after C{/quit} (as the connection closes) says nothing
        more and leaves others alone.
        """
        a, b = self.members(2)
        self.state.say(a, b"/quit")
        self.state.say(b, b"/nick guest1")
        self.assertEqual(self.state.disconnect(a, "connection closed"), [])
        self.assertIs(self.state.members["guest1"], b)

    def test_disconnectInOtherRoom(self) -> None:
        """
        The member's current room hears of it, not the lobby.
        """
        a, b, c = self.members(3)
        self.state.say(a, b"/join #games")
        self.state.say(b, b"/join #games")
        events = self.state.disconnect(a, "bye")
        self.assertEqual(seen(events, b), ["* guest1 left (bye)"])
        self.assertEqual(seen(events, c), [])


class HistoryTests(SynchronousTestCase):
    """
    Each room remembers its last C{historySize} messages.
    """

    def replay(self, state: ChatState) -> List[str]:
        """
        What a newcomer to the lobby of C{state} is shown, after the welcome
        and before it joins.
        """
        member, events = state.connect(1000 + len(state.members), RecordingClient())
        return seen(events, member)[1:]

    def test_keepsLast(self) -> None:
        """
        Only the last C{historySize} messages are replayed.
        """
        state = ChatState(historySize=3)
        a, _ = state.connect(1, RecordingClient())
        for n in range(5):
            state.say(a, b"m%d" % n)
        self.assertEqual(
            self.replay(state), ["* Last 3 messages in #lobby:", "<guest1> m2", "<guest1> m3", "<guest1> m4"]
        )

    def test_onlyMessages(self) -> None:
        """
        Plain messages and C{/me} are remembered; joins, leaves, nick changes,
        private messages and other commands are not.
        """
        state = ChatState(historySize=10)
        a, _ = state.connect(1, RecordingClient())
        b, _ = state.connect(2, RecordingClient())
        state.say(a, b"hello")
        state.say(b, b"/nick bob")
        state.say(a, b"/who")
        state.say(a, b"/msg bob psst")
        state.say(a, b"/me waves")
        state.say(a, b"/bogus")
        state.say(a, b"")
        state.say(b, b"/join #games")
        state.say(b, b"/join #lobby")
        state.say(b, b"/quit")
        self.assertEqual(self.replay(state), ["* Last 2 messages in #lobby:", "<guest1> hello", "* guest1 waves"])

    def test_perRoom(self) -> None:
        """
        A room's history has only that room's messages.
        """
        state = ChatState(historySize=10)
        a, _ = state.connect(1, RecordingClient())
        b, _ = state.connect(2, RecordingClient())
        state.say(b, b"/join #games")
        state.say(b, b"in games")
        state.say(a, b"in lobby")
        self.assertEqual(self.replay(state), ["* Last 1 message in #lobby:", "<guest1> in lobby"])

    def test_zero(self) -> None:
        """
        With C{historySize=0} nothing is replayed, not even a header.
        """
        state = ChatState(historySize=0)
        a, _ = state.connect(1, RecordingClient())
        state.say(a, b"hello")
        self.assertEqual(self.replay(state), [])
        state.say(a, b"/join #games")
        state.say(a, b"there")
        b, _ = state.connect(2, RecordingClient())
        self.assertEqual([text for text in seen(state.say(b, b"/join #games"), b) if "there" in text], [])


# Lines that exercise commands with hostile arguments, and raw bytes.
_PREFIXES = st.sampled_from(
    [b"", b"/", b"//", b"/nick ", b"/join ", b"/join #", b"/me ", b"/msg guest1 ", b"/msg ", b"/quit ", b"/who", b"/x"]
)
_HOSTILE = st.lists(
    st.one_of(
        st.binary(max_size=8),
        st.sampled_from(
            [
                b"\x1b",
                b"\x1b[2J",
                b"\x9b",
                b"\xc2\x9b",
                b"\x00",
                b"\x7f",
                b"\xe2\x80\xae",
                b"\xe2\x81\xa6",
                b"\xe2\x80\xa8",
            ]
        ),
    ),
    max_size=6,
).map(b"".join)
LINES = st.tuples(_PREFIXES, _HOSTILE).map(b"".join)


class HostileInputTests(SynchronousTestCase):
    """
    No text the chat produces contains a control character, whatever members
    send.
    """

    def assertSafe(self, events: Sequence[Event]) -> None:
        """
        Fail if any text in C{events}, or any room name they refer to, has a
        control character.
        """
        for event in events:
            for text in eventTexts([event]):
                self.assertIsNone(UNSAFE.search(text), repr(text))
            if isinstance(event, ToRoom):
                self.assertIsNone(UNSAFE.search(event.room.name), repr(event.room.name))

    @PROPERTY
    @given(st.lists(st.tuples(st.integers(min_value=0, max_value=2), LINES), max_size=25))
    def test_noControlCharacters(self, script: List[Tuple[int, bytes]]) -> None:
        """
        Three members send hostile lines (reconnecting when they quit); every
        event's text is free of control characters, and every nick and room
        name is valid.
        """
        state = ChatState(historySize=3)
        members: List[Member] = []
        for n in range(3):
            member, events = state.connect(n, RecordingClient())
            self.assertSafe(events)
            members.append(member)
        for index, line in script:
            if members[index].room is None:
                members[index], events = state.connect(100 + len(members), RecordingClient())
                self.assertSafe(events)
            self.assertSafe(state.say(members[index], line))
            for member in members:
                self.assertTrue(NICK_PATTERN.match(member.nick), member.nick)
            for name in state.roomNames():
                self.assertTrue(ROOM_PATTERN.match(name), name)
        for member in members:
            self.assertSafe(state.disconnect(member, "connection lost"))

    @PROPERTY
    @given(st.binary(max_size=60))
    def test_historyReplaySafe(self, line: bytes) -> None:
        """
        Hostile messages replayed from history are safe too.
        """
        state = ChatState(historySize=5)
        a, _ = state.connect(1, RecordingClient())
        state.say(a, line)
        state.say(a, b"/me " + line)
        _, events = state.connect(2, RecordingClient())
        self.assertSafe(events)
