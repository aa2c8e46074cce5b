"""
Sinks: where formatted records go (L{IRecordSink}), and standard output.

A sink takes whole batches of record bytes.  It is the only place that
touches the output, so a new destination (a second file, a network
collector) is a new class providing L{IRecordSink}, not a change elsewhere:
L{StreamSink} here, L{logger_service.filesink.FileSink} for files.  This
module also holds what sinks share: writing and syncing a descriptor, and
logging from the writer thread.

Sinks do blocking I/O; the recorder calls them through an
L{logger_service.writer.IWriter}, never from the reactor thread directly.
"""

from __future__ import annotations

import errno
import os
from typing import Any, BinaryIO, Callable, Optional, Tuple, cast

from twisted.internet.interfaces import IReactorFromThreads
from twisted.logger import Logger, LogLevel
from twisted.python import threadable
from zope.interface import Attribute, Interface, implementer

log = Logger()


def _callInReactor(f: Callable[..., object], *args: Any, **kwargs: Any) -> None:
    """
    Call C{f(*args, **kwargs)} in the reactor thread.
    """
    from twisted.internet import reactor

    cast(IReactorFromThreads, reactor).callFromThread(f, *args, **kwargs)


def logFromAnyThread(level: LogLevel, format: str, **kwargs: object) -> None:
    """
    Log an event from any thread: sinks run in the writer thread, and
    log observers (twistd's log file) are not thread-safe, so an event from
    another thread is handed to the reactor thread.
    """
    if threadable.ioThread is None or threadable.isInIOThread():
        # No reactor runs yet (start-up), or this is its thread.
        log.emit(level, format, **kwargs)
    else:
        _callInReactor(log.emit, level, format, **kwargs)


class IRecordSink(Interface):
    """
    A destination for records.
    """

    def write(data: bytes) -> int:
        """
        Write C{data}, one or more whole records, to the destination.

        @return: how many bytes of C{data} were written: all of them, unless
            an error stopped the write part way.  The rest may be offered
            again later.
        @raise OSError: if not one byte could be written.
        """

    writeError = Attribute(
        "The C{OSError} that stopped the last L{write} short (after some bytes were written), or C{None}."
    )

    def sync() -> None:
        """
        Make what was written durable (C{fsync}), where that means anything.
        """

    def reopen() -> None:
        """
        Close and open the destination again (after an outside rotation).
        """

    def close() -> None:
        """
        Release the destination.  No write follows.
        """


@implementer(IRecordSink)
class StreamSink:
    """
    Write records to an already open binary stream, such as standard output.

    The stream is used through its file descriptor, so its Python-level
    buffer (and anything that replaces C{sys.stdout} later, as twistd's
    logging does) never sees the records.
    """

    def __init__(self, stream: BinaryIO) -> None:
        stream.flush()
        self._fd: Optional[int] = os.dup(stream.fileno())
        self.writeError: Optional[OSError] = None

    def write(self, data: bytes) -> int:
        """
        Write C{data}; see L{IRecordSink.write}.
        """
        assert self._fd is not None, "write after close"
        written, self.writeError = writeFully(self._fd, data)
        return written

    def sync(self) -> None:
        """
        C{fsync} the stream if it is a file; pipes and terminals have nothing
        to sync.
        """
        assert self._fd is not None, "sync after close"
        syncDescriptor(self._fd)

    def reopen(self) -> None:
        """
        A stream cannot be reopened; nothing to do.
        """

    def close(self) -> None:
        """
        Close our copy of the descriptor; the stream stays open.
        """
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def syncDescriptor(fd: int) -> None:
    """
    C{fsync} C{fd}, ignoring descriptors that cannot be synced.
    """
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):
            raise


def writeFully(fd: int, data: bytes) -> Tuple[int, Optional[OSError]]:
    """
    Write C{data} to C{fd}, resuming after short writes.

    @return: the number of bytes written, less than C{len(data)} only if an
        error came after some bytes were written, and that error.
    @raise OSError: if the first write fails.
    """
    view = memoryview(data)
    total = 0
    while total < len(view):
        try:
            total += os.write(fd, view[total:])
        except OSError as e:
            if total:
                return total, e
            raise
    return total, None
