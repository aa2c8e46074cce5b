"""
An in-memory L{IRecordSink} for tests, which can be told to fail, and
other stand-ins that keep what they are told.
"""

from __future__ import annotations

import errno
from typing import Callable, Dict, List, Optional

from zope.interface import implementer

from logger_service.factory import LineLoggerFactory
from logger_service.hub import Hub
from logger_service.interfaces import IRecordListener
from logger_service.sinks import IRecordSink


@implementer(IRecordSink)
class MemorySink:
    """
    Keep written records in memory.

    @ivar writes: each successful write's bytes, in order.
    @ivar failWith: an errno to fail the next writes with, or C{None}.
    @ivar acceptOnly: if set, the next write takes only this many bytes.
    @ivar closed: whether L{close} was called.
    """

    def __init__(self) -> None:
        self.writes: List[bytes] = []
        self.failWith: Optional[int] = None
        self.failSyncWith: Optional[int] = None
        self.acceptOnly: Optional[int] = None
        self.writeError: Optional[OSError] = None
        self.closed = False
        self.syncs = 0
        self.reopens = 0

    @property
    def data(self) -> bytes:
        """
        Everything written so far.
        """
        return b"".join(self.writes)

    def write(self, data: bytes) -> int:
        """
        Keep C{data}, or fail as told.
        """
        assert not self.closed, "write after close"
        if self.failWith is not None:
            raise OSError(self.failWith, "injected failure")
        if self.acceptOnly is not None:
            data, self.acceptOnly = data[: self.acceptOnly], None
        self.writes.append(data)
        return len(data)

    def sync(self) -> None:
        """
        Count a sync, or fail as told.
        """
        if self.failSyncWith is not None:
            raise OSError(self.failSyncWith, "injected sync failure")
        self.syncs += 1

    def reopen(self) -> None:
        """
        Count a reopen.
        """
        self.reopens += 1

    def close(self) -> None:
        """
        Note that the sink was closed.
        """
        self.closed = True


ENOSPC = errno.ENOSPC


@implementer(IRecordListener)
class RecordListener:
    """
    A recorder's listener that passes what it hears to callables.
    """

    def __init__(
        self,
        pressure: Callable[[bool], object] = lambda paused: None,
        durable: Callable[[Dict[int, int]], object] = lambda counts: None,
    ) -> None:
        self._pressure = pressure
        self._durable = durable

    def pressure(self, paused: bool) -> None:
        """
        Pass C{paused} on.
        """
        self._pressure(paused)

    def durable(self, counts: Dict[int, int]) -> None:
        """
        Pass C{counts} on.
        """
        self._durable(counts)


def hubOf(factory: LineLoggerFactory) -> Hub:
    """
    The L{Hub} of C{factory} (which knows it only as an C{IHub}).
    """
    hub = factory.hub
    assert isinstance(hub, Hub)
    return hub
