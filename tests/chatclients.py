"""
Chat members' clients for tests: they remember what the chat sends them.
"""

from __future__ import annotations

from typing import List, Optional

from zope.interface import implementer

from logger_service.broadcast import Encoder
from logger_service.interfaces import IChatMember


@implementer(IChatMember)
class RecordingClient:
    """
    A member's client that remembers each C{deliver} call.

    @ivar received: the data of each call, in order.
    @ivar quits: the reason of each C{quit} call, in order.
    @ivar changes: how many times it was told the member changed.
    """

    encoder: Optional[Encoder] = None

    def __init__(self) -> None:
        self.received: List[bytes] = []
        self.quits: List[str] = []
        self.changes = 0

    def deliver(self, data: bytes) -> None:
        """
        Remember C{data}.
        """
        self.received.append(data)

    def deliverEncoded(self, data: bytes, encoded: bytes) -> None:
        """
        Remember C{data} (without an encoder, never called).
        """
        self.received.append(data)

    def quit(self, reason: str) -> None:
        """
        Remember C{reason}.
        """
        self.quits.append(reason)

    def changed(self) -> None:
        """
        Count the change.
        """
        self.changes += 1
