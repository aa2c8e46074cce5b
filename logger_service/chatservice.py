"""
The former name of L{logger_service.chatsession}, for the modules that
still build the chat from here.
"""

from .chatsession import Chat, encode

ChatService = Chat
"""The former name of L{Chat}."""

__all__ = ["ChatService", "encode"]
