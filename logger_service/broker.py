"""
Brokers: how a chat's rooms reach their members, in one process or in many.

An L{IBroker} is an L{IBroadcast} that also learns which chat it serves
(L{IBroker.attach}), so that it can deliver what it receives from elsewhere
(another process, through a message bus) to the chat's own members.
L{LocalBroker} is the broker of a chat that lives in one process: it is
L{LocalBroadcast}, unchanged.  L{logger_service.redis} holds the
broker whose rooms span every process sharing one Redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import implementer

from .broadcast import IBroadcast, LocalBroadcast

if TYPE_CHECKING:
    from .chatsession import Chat


class IBroker(IBroadcast):
    """
    Delivers a chat's room messages to the members of those rooms, wherever
    they are connected.
    """

    def attach(chat: Chat) -> None:
        """
        Serve C{chat}: deliver what other processes publish to its members.
        """


@implementer(IBroker)
class LocalBroker(LocalBroadcast):
    """
    The broker of a chat in one process: rooms are this process's alone.
    """

    def attach(self, chat: Chat) -> None:
        """
        Nothing to do: every member is local.
        """
