"""
A recorder of the system calls that make records durable, and a check that
no line is acknowledged before it is on disk.

L{SyscallLog.install} wraps C{os.write}, C{os.fsync}, C{os.fdatasync} and
C{os.rename} so that each call on a file in one directory (the output's) is
noted, in order, with the inode it touched: writes with how many records
(LFs) they carried.  Acknowledgements are noted by the test (unit tests) or
by L{installInTwistd}, which also wraps C{LineLoggerProtocol.acknowledge} and
appends each event to a file as one JSON line, for a real C{twistd}.

L{unsyncedAcks} replays the events of one client: an C{ack N} is sound only
if at least C{N} records were C{fsync}ed (each in the file it was written to) and every
rename before it was followed by an C{fsync} of the directory.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence

Event = List[Any]
"""C{["write", inode, records]}, C{["fsync", inode]}, C{["fsyncdir"]},
C{["rename", source, destination]} or C{["ack", total]}."""


class SyscallLog:
    """
    Events, in the order they happened, from any thread.

    @ivar directory: only calls on files in this directory are noted.
    @ivar events: the events so far.
    """

    def __init__(self, directory: str, sink: Optional[Callable[[Event], None]] = None) -> None:
        self.directory = os.path.realpath(directory)
        self.events: List[Event] = []
        self._sink = sink
        self._lock = threading.Lock()

    def note(self, event: Event) -> None:
        """
        Note one event.
        """
        with self._lock:
            self.events.append(event)
            if self._sink is not None:
                self._sink(event)

    def _watched(self, fd: int) -> Optional[os.stat_result]:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
            st = os.fstat(fd)
        except OSError:
            return None
        if path == self.directory or os.path.dirname(path) == self.directory:
            return st
        return None

    def install(self, patch: Callable[[Any, str, Any], None]) -> None:
        """
        Wrap the calls, with C{patch(module, name, value)} (a test case's
        C{patch}, which undoes it after the test, or L{setattr}).
        """
        realWrite, realFsync, realFdatasync, realRename = os.write, os.fsync, os.fdatasync, os.rename

        def write(fd: int, data: Any) -> int:
            written = realWrite(fd, data)
            st = self._watched(fd)
            if st is not None and stat.S_ISREG(st.st_mode):
                self.note(["write", st.st_ino, bytes(data[:written]).count(b"\n")])
            return written

        def syncWith(real: Callable[[int], None]) -> Callable[[int], None]:
            def sync(fd: int) -> None:
                st = self._watched(fd)
                real(fd)
                if st is not None:
                    self.note(["fsyncdir"] if stat.S_ISDIR(st.st_mode) else ["fsync", st.st_ino])

            return sync

        def rename(source: str, destination: str, *args: Any, **kwargs: Any) -> None:
            realRename(source, destination, *args, **kwargs)
            if os.path.dirname(os.path.realpath(destination)) == self.directory:
                self.note(["rename", source, destination])

        patch(os, "write", write)
        patch(os, "fsync", syncWith(realFsync))
        patch(os, "fdatasync", syncWith(realFdatasync))
        patch(os, "rename", rename)


def unsyncedAcks(events: Sequence[Event]) -> List[str]:
    """
    Replay C{events}: return a description of every acknowledgement made
    before the records it covers were durable (none, if all is well).

    For one client only: an C{["ack", N]} (one connection's C{ok N}) is
    compared with the records of every connection, so with several clients
    writing it could pass while one of them was told too early.
    """
    written: Dict[int, int] = {}
    synced: Dict[int, int] = {}
    renamedSinceDirSync = False
    problems: List[str] = []
    for index, event in enumerate(events):
        kind = event[0]
        if kind == "write":
            written[event[1]] = written.get(event[1], 0) + event[2]
        elif kind == "fsync":
            synced[event[1]] = written.get(event[1], 0)
        elif kind == "fsyncdir":
            renamedSinceDirSync = False
        elif kind == "rename":
            renamedSinceDirSync = True
        elif kind == "ack":
            durable = sum(synced.values())
            if event[1] > durable:
                problems.append(f"event {index}: ok {event[1]} with only {durable} records fsynced")
            if renamedSinceDirSync:
                problems.append(f"event {index}: ok {event[1]} after a rename, before the directory was fsynced")
    return problems


def installInTwistd(directory: str, eventsPath: str) -> None:
    """
    In a twistd process: note the calls on files in C{directory}, and each
    C{ok N} sent, as JSON lines appended to C{eventsPath}.
    """
    events = open(eventsPath, "a", buffering=1)

    def sink(event: Event) -> None:
        events.write(json.dumps(event) + "\n")

    log = SyscallLog(directory, sink)
    log.install(setattr)

    from logger_service.protocol import LineLoggerProtocol

    acknowledge = LineLoggerProtocol.acknowledge

    def noted(self: LineLoggerProtocol, count: int) -> None:
        acknowledge(self, count)
        log.note(["ack", self.acknowledged])

    LineLoggerProtocol.acknowledge = noted  # type: ignore[method-assign]


def readEvents(eventsPath: str) -> List[Event]:
    """
    The events L{installInTwistd} wrote.
    """
    with open(eventsPath) as f:
        return [json.loads(line) for line in f if line.endswith("\n")]
