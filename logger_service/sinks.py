"""
Sinks: where formatted records go.

A sink takes whole batches of record bytes.  It is the only place that
touches the output, so a new destination (a second file, a network
collector) is a new class providing L{IRecordSink}, not a change elsewhere.
"""

from __future__ import annotations

import os
from typing import BinaryIO, Optional

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

    def close() -> None:
        """
        Release the destination.  No write follows.
        """


@implementer(IRecordSink)
class FileSink:
    """
    Append records to a file, creating it if missing.

    @ivar path: the file's path.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: Optional[int] = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def write(self, data: bytes) -> int:
        """
        Write C{data}; see L{IRecordSink.write}.
        """
        assert self._fd is not None, "write after close"
        return _writeSome(self._fd, data)

    def close(self) -> None:
        """
        Close the file.
        """
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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

    def close(self) -> None:
        """
        Close our copy of the descriptor; the stream stays open.
        """
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


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
