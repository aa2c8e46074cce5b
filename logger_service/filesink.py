"""
The file sink: records appended to a file, rotated, synced and mended.

It appends to a file, rotates it by size, syncs it durably, and ends a
record that a killed run left torn.

L{FileSink} is the L{IRecordSink} for C{--output}; it writes through
L{_AppendingLogFile}, Twisted's L{LogFile} with C{O_APPEND}, short writes
that are reported, rotation between records, and (when C{durable}) an
C{fsync} of the old file before it is rotated or reopened away.
"""

from __future__ import annotations

import errno
import os
from typing import Optional

from twisted.logger import LogLevel
from twisted.python.logfile import LogFile
from zope.interface import implementer

from .sinks import IRecordSink, logFromAnyThread, syncDescriptor, writeFully
from .twistedprivate import OpenableLogFile

_LF = ord("\n")


class _AppendingLogFile(OpenableLogFile):
    """
    L{LogFile}'s size-based rotation over a file opened with C{O_APPEND},
    whose writes report how much they wrote instead of losing a short write.

    The file rotates once it has reached C{rotateLength}: a batch is split
    after the record that reaches it, so a file grows past the limit by
    less than one record.

    When C{durable}, the current file is C{fsync}ed before it is renamed
    away or closed, and the directory after a file was renamed or opened:
    an C{fsync} that follows covers every record written to any file.

    A short write (a full disk) leaves the file part way through a record
    (C{midRecord}) until the rest of it is offered again: the file neither
    rotates nor reopens before that record is whole, so no record is split
    between two files.

    @ivar tornRecords: how many times the file was found ending in the
        middle of a record when first opened, and ended with a newline.
    @ivar midRecord: whether the last byte written was not the end of a
        record.
    """

    def __init__(
        self,
        name: str,
        directory: str,
        rotateLength: Optional[int] = None,
        maxRotatedFiles: Optional[int] = None,
        durable: bool = False,
    ) -> None:
        self.durable = durable
        self.tornRecords = 0
        self._directoryDirty = False
        self._cannotRotate = False
        self.midRecord = False
        self._opened = False
        self._reopenPending = False
        self.writeError: Optional[OSError] = None
        LogFile.__init__(self, name, directory, rotateLength=rotateLength, maxRotatedFiles=maxRotatedFiles)

    def openFile(self) -> None:
        """
        Open the path for appending, and end a record the last run left
        part way written.
        """
        self.closed = False
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self.defaultMode or 0o644)
        self.file = os.fdopen(fd, "ab", 0)
        self.size = os.fstat(fd).st_size
        # The file may be new: its name is durable once the directory is.
        self._directoryDirty = True
        first, self._opened = not self._opened, True
        if first:
            self.mend()

    tornCause = "the last run was killed while writing?"
    """Why a file ends part way through a record, as the warning says."""

    def mend(self) -> None:
        """
        If the file ends part way through a record (its writer was killed
        while writing it: kill -9, a crash), end that record with a newline,
        or the next one would be glued onto it.
        """
        fd = self.file.fileno()
        if self.size and _lastByte(self.path) not in (b"\n", None):
            self.tornRecords += 1
            try:
                self.size += writeFully(fd, b"\n")[0]
            except OSError as e:
                logFromAnyThread(
                    LogLevel.error,
                    "{path} ends part way through a record; cannot end it: {error}",
                    path=self.path,
                    error=e,
                )
            else:
                logFromAnyThread(
                    LogLevel.warn,
                    "{path} ended part way through a record ({cause}): ended that record with a newline",
                    path=self.path,
                    cause=self.tornCause,
                )

    def writeSome(self, data: bytes) -> int:
        """
        Write C{data}, rotating when the file has reached the size limit,
        before the write or part way through it; see L{IRecordSink.write}.

        The error that stopped a write short is kept in C{writeError}.
        """
        self.writeError = None
        limit = self.rotateLength
        if not (self.midRecord or self._reopenPending) and (not limit or self.size + len(data) < limit):
            written, self.writeError = writeFully(self.file.fileno(), data)
            self.size += written
            if written < len(data):
                self.midRecord = data[written - 1] != _LF
            return written
        done = 0
        try:
            while done < len(data):
                if not self.midRecord:
                    if self._reopenPending:
                        self._deferredReopen()
                    if limit and self.size >= limit:
                        self.rotate()
                room = limit - self.size if limit else len(data)
                if self.midRecord:
                    # The rest of a record cut short: it ends in this file.
                    end = data.find(b"\n", done) + 1 or len(data)
                elif room <= 0 or len(data) - done <= room:
                    # All fits, or the file cannot rotate.
                    end = len(data)
                else:
                    # Up to the end of the record that reaches the limit.
                    end = data.find(b"\n", done + room - 1) + 1 or len(data)
                written, self.writeError = writeFully(self.file.fileno(), data[done:end])
                self.size += written
                done += written
                if written:
                    self.midRecord = data[done - 1] != _LF
                if done < end:
                    break
            if self._reopenPending and not self.midRecord:
                # The record it waited for is whole.
                self._deferredReopen()
        except OSError as e:
            if not done:
                raise
            self.writeError = e
        return done

    def rotate(self) -> None:
        """
        Rename FILE to FILE.1 (FILE.1 to FILE.2 and so on, dropping the
        oldest beyond C{maxRotatedFiles}) and open a new FILE.  If FILE is
        gone (removed), only a new FILE is opened.

        Without write permission it says so once, and writing goes on to
        the same file.

        @raise OSError: if syncing, renaming or opening failed; FILE is then
            still the current file, and rotating may be tried again.
        """
        if not os.path.exists(self.path):
            self._reopen()
            return
        if not (os.access(self.directory, os.W_OK) and os.access(self.path, os.W_OK)):
            if not self._cannotRotate:
                self._cannotRotate = True
                logFromAnyThread(
                    LogLevel.error,
                    "Cannot rotate {path}: no write permission; writing on past the limit",
                    path=self.path,
                )
            return
        self._cannotRotate = False
        old = self.file
        if self.durable:
            syncDescriptor(old.fileno())
        for i in reversed(self.listLogs()):
            if self.maxRotatedFiles is not None and i >= self.maxRotatedFiles:
                os.remove(f"{self.path}.{i}")
            else:
                os.rename(f"{self.path}.{i}", f"{self.path}.{i + 1}")
        rotated = f"{self.path}.1"
        os.rename(self.path, rotated)
        size = self.size
        try:
            self.openFile()
        except OSError:
            # Out of descriptors, or of space: the old file stays FILE.
            os.rename(rotated, self.path)
            raise
        old.close()
        logFromAnyThread(
            LogLevel.info, "Rotated {path} to {rotated} at {size} bytes", path=self.path, rotated=rotated, size=size
        )
        if self.durable:
            self.syncDirectory()

    def reopen(self) -> None:
        """
        Open the path again; close the old file (synced first, when
        C{durable}) only once the new one is open.

        Part way through a record (a short write), the reopening waits
        until the rest of that record is written, to the old file.
        """
        if self.midRecord:
            self._reopenPending = True
            logFromAnyThread(LogLevel.info, "Reopening {path} once the record being written is whole", path=self.path)
            return
        self._reopen()

    def _deferredReopen(self) -> None:
        """
        The reopen that waited for a record to be whole: if it fails, say
        so and go on writing to the old file, as a reopen that fails at once
        does.
        """
        self._reopenPending = False
        try:
            self._reopen()
        except OSError as e:
            logFromAnyThread(
                LogLevel.error, "Cannot reopen {path}; still writing to the old one: {error}", path=self.path, error=e
            )

    def _reopen(self) -> None:
        self._reopenPending = False
        old = self.file
        previous = _nameOf(old.fileno())
        if self.durable:
            syncDescriptor(old.fileno())
        self.openFile()
        old.close()
        logFromAnyThread(
            LogLevel.info, "Reopened {path}; the records before are in {previous}", path=self.path, previous=previous
        )
        if self.durable:
            self.syncDirectory()

    def syncDirectory(self) -> None:
        """
        C{fsync} the directory, if a file in it was renamed or opened since
        it last was.
        """
        if self._directoryDirty:
            try:
                fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError as e:
                if e.errno not in (errno.EACCES, errno.EPERM):
                    raise
                # A directory we may write to but not read: nothing to be done.
                logFromAnyThread(
                    LogLevel.warn, "Cannot fsync the directory {directory}: {error}", directory=self.directory, error=e
                )
                self._directoryDirty = False
                return
            try:
                syncDescriptor(fd)
            finally:
                os.close(fd)
            self._directoryDirty = False

    def fileno(self) -> int:
        """
        The descriptor of the current file.
        """
        return self.file.fileno()


@implementer(IRecordSink)
class FileSink:
    """
    Append records to a file, creating it if missing, and rotate it by size.

    A file rotates once it has reached C{rotateSize}, part way through a
    batch if need be: it grows past the size by less than one record, and
    no record is split between two files.

    @ivar path: the file's path.
    """

    def __init__(
        self, path: str, rotateSize: Optional[int] = None, rotateKeep: Optional[int] = None, durable: bool = False
    ) -> None:
        """
        @param durable: whether records must survive a crash once L{sync}
            returns, whatever rotated or reopened since: set it when the
            output is C{fsync}ed.
        """
        self.path = path
        self._file = _AppendingLogFile.fromFullPath(
            path, rotateLength=rotateSize, maxRotatedFiles=rotateKeep, durable=durable
        )

    @property
    def writeError(self) -> Optional[OSError]:
        """
        The error that stopped the last write short, or C{None}.
        """
        return self._file.writeError

    @property
    def tornRecords(self) -> int:
        """
        How many times the file ended part way through a record when opened.
        """
        return self._file.tornRecords

    def write(self, data: bytes) -> int:
        """
        Write C{data}; see L{IRecordSink.write}.
        """
        return self._file.writeSome(data)

    def sync(self) -> None:
        """
        C{fsync} the current file, and its directory if a file in it was
        renamed or created since.
        """
        syncDescriptor(self._file.fileno())
        self._file.syncDirectory()

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


def _lastByte(path: str) -> Optional[bytes]:
    """
    The last byte of the file at C{path}, or C{None} if it cannot be read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, 1, size - 1) if size else None
    except OSError:
        return None
    finally:
        os.close(fd)


def _nameOf(fd: int) -> str:
    """
    The path the open file C{fd} has now (it may have been renamed since it
    was opened), as far as the system says.
    """
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "the previous file"
