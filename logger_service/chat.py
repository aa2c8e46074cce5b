"""
The former name of L{logger_service.chatstate}, for the modules that still
import the chat state from here.
"""

from .chatstate import LOBBY, NICK_CONTROLS, NICK_PATTERN, ChatState, Event, Member, Room, ToMember, foldName

__all__ = ["LOBBY", "NICK_CONTROLS", "NICK_PATTERN", "ChatState", "Event", "Member", "Room", "ToMember", "foldName"]
