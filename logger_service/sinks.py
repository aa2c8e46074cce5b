"""
Sinks: where formatted records go.

A sink takes whole batches of record bytes.  It is the only place that
touches the output, so a new destination (a second file, a network
collector) is a new class providing L{IRecordSink}, not a change elsewhere.

Sinks do blocking I/O; the recorder calls them through an
L{logger_service.writer.IWriter}, never from the reactor thread directly.
"""

from __future__ import annotations

import errno
import os
from typing import BinaryIO, Optional

from twisted.python.logfile import LogFile
from zope.interface import Interface, implementer


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


class _AppendingLogFile(LogFile):
    """
    L{LogFile}'s size-based rotation over a file opened with C{O_APPEND},
    whose writes report how much they wrote instead of losing a short write.
    """

    def _openFile(self) -> None:
        self.closed = False
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self.defaultMode or 0o644)
        self._file = os.fdopen(fd, "ab", 0)
        self.size = os.fstat(fd).st_size

    def writeSome(self, data: bytes) -> int:
        """
        Rotate if due, then write C{data}; see L{IRecordSink.write}.
        """
        if self.shouldRotate():
            self.rotate()
        written = _writeSome(self._file.fileno(), data)
        self.size += written
        return written

    def fileno(self) -> int:
        """
        The descriptor of the current file.
        """
        return self._file.fileno()


@implementer(IRecordSink)
class FileSink:
    """
    Append records to a file, creating it if missing, and rotate it by size.

    Records are written whole batches at a time, so rotation never splits
    a record between two files.

    @ivar path: the file's path.
    """

    def __init__(self, path: str, rotateSize: Optional[int] = None, rotateKeep: Optional[int] = None) -> None:
        self.path = path
        self._file = _AppendingLogFile.fromFullPath(path, rotateLength=rotateSize, maxRotatedFiles=rotateKeep)

    def write(self, data: bytes) -> int:
        """
        Write C{data}; see L{IRecordSink.write}.
        """
        return self._file.writeSome(data)

    def sync(self) -> None:
        """
        C{fsync} the current file.
        """
        _sync(self._file.fileno())

    def reopen(self) -> None:
        """
        Open the path again: after C{logrotate} renamed the file, records go
        to a new file at the same path.
        """
        self._file.reopen()

    def close(self) -> None:
        """
        Close the file.
        """
        if not self._file.closed:
            self._file.close()


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

    def write(self, data: bytes) -> int:
        """
        Write C{data}; see L{IRecordSink.write}.
        """
        assert self._fd is not None, "write after close"
        return _writeSome(self._fd, data)

    def sync(self) -> None:
        """
        C{fsync} the stream if it is a file; pipes and terminals have nothing
        to sync.
        """
        assert self._fd is not None, "sync after close"
        _sync(self._fd)

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


def _sync(fd: int) -> None:
    """
    C{fsync} C{fd}, ignoring descriptors that cannot be synced.
    """
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):
            raise


def _writeSome(fd: int, data: bytes) -> int:
    """
    Write C{data} to C{fd}, resuming after short writes.

    @return: the number of bytes written, less than C{len(data)} only if an
        error came after some bytes were written.
    @raise OSError: if the first write fails.
    """
    view = memoryview(data)
    total = 0
    while total < len(view):
        try:
            total += os.write(fd, view[total:])
        except OSError:
            if total:
                return total
            raise
    return total
