"""
The shared file sink: worker processes append to one file, each batch whole, and rotate it together.

With C{--workers N} each worker writes its own records to C{--output FILE}
(L{SharedFileSink}, under the worker's own L{Recorder}) instead of sending
them to the supervisor, which then writes nothing (L{WorkersWriteSink}).

Every write, and everything that decides where it goes, happens while the
writer holds an exclusive C{flock} on the file's directory (not on the file,
which a rotation replaces): a batch is one C{write} (resumed after a short
one) to a descriptor opened with C{O_APPEND}, so batches of different
workers never interleave.  Under the lock a writer first catches up with
what the others did:

  - the file at the path is no longer the one it has open (another worker
    rotated it, or reopened it after C{logrotate} moved it): it C{fsync}s
    the old one (when C{durable}) and closes it, and opens the path;
  - the file's size is what the others left, so that the rotation by size
    (L{_AppendingLogFile.writeSome}, which splits the batch after the record
    that reaches the limit) sees the file as it is: a file grows past the
    limit by less than one record, whoever wrote it;
  - a file that ends part way through a record (a worker was killed while
    writing) gets that record ended by a newline, as at start.

A short write (a full disk) keeps the lock until the rest of its record is
written, so no other writer glues a record onto it.  An C{fsync} covers the
file whoever wrote it, so a worker's own L{Durability} makes its lines
durable: C{ok N} still means on disk.
"""

from __future__ import annotations

import errno
import fcntl
import os
from typing import Callable, Optional

from zope.interface import implementer

from .filesink import FileSink, _AppendingLogFile
from .sinks import IRecordSink, syncDescriptor


class _SharedLogFile(_AppendingLogFile):
    """
    An L{_AppendingLogFile} that follows the file other processes rotate.

    @ivar end: the file's size after this writer's last write, or C{-1}.
    """

    end = -1
    tornCause = "a writer was killed while writing?"

    def catchUp(self) -> None:
        """
        Under the lock: follow the file at the path if it is another one,
        take the file's size as the others left it, and end a torn record.
        """
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            # Moved away and not replaced yet: go on writing to the old
            # one, as one process does until SIGHUP or its next rotation.
            current = None
        mine = os.fstat(self.file.fileno())
        if current is not None and (current.st_ino, current.st_dev) != (mine.st_ino, mine.st_dev):
            self.follow()
            return
        self.size = mine.st_size
        if self.size != self.end:
            self.mend()

    def follow(self) -> None:
        """
        Open the file another writer put at the path, closing the old one
        (synced first, when C{durable}: its lines may wait for a sync).
        """
        old = self.file
        if self.durable:
            syncDescriptor(old.fileno())
        self.openFile()
        old.close()
        self.mend()

    def writeSome(self, data: bytes) -> int:
        """
        Write C{data}, rotating the file as one writer would; see
        L{_AppendingLogFile.writeSome}.
        """
        written = _AppendingLogFile.writeSome(self, data)
        self.end = self.size
        return written


@implementer(IRecordSink)
class SharedFileSink(FileSink):
    """
    A L{FileSink} for a file that other processes append to and rotate
    too, each holding the directory's C{flock} while it writes, rotates or
    reopens.
    """

    def __init__(
        self, path: str, rotateSize: Optional[int] = None, rotateKeep: Optional[int] = None, durable: bool = False
    ) -> None:
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        self._lock = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._locked = False
        try:
            self._acquire()
            try:
                self._file = _SharedLogFile.fromFullPath(
                    path, rotateLength=rotateSize, maxRotatedFiles=rotateKeep, durable=durable
                )
            finally:
                self._release()
        except BaseException:
            os.close(self._lock)
            raise

    def _acquire(self) -> None:
        if not self._locked:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
            self._locked = True

    def _release(self) -> None:
        """
        Let the other writers go on, unless a record is part written.
        """
        if self._locked and not self._file.midRecord:
            self._locked = False
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def write(self, data: bytes) -> int:
        """
        Write C{data} as one batch, after catching up with the others; see
        L{IRecordSink.write}.
        """
        file = self._file
        assert isinstance(file, _SharedLogFile)
        # Still locked if the last write stopped part way through a record:
        # nobody else wrote since.
        resuming = self._locked
        self._acquire()
        try:
            if not resuming:
                file.catchUp()
            return file.writeSome(data)
        finally:
            self._release()

    def reopen(self) -> None:
        """
        Open the path again (SIGHUP), under the lock.
        """
        self._acquire()
        try:
            self._file.reopen()
        finally:
            self._release()

    def close(self) -> None:
        """
        Close the file and the lock.
        """
        FileSink.close(self)
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1
            self._locked = False


@implementer(IRecordSink)
class WorkersWriteSink:
    """
    The supervisor's sink when its workers write the file themselves: it
    writes nothing, ends a record the last run left torn (once, before any
    worker starts), and passes a reopen (SIGHUP) on to the workers.

    @ivar reopenWorkers: called, from the writer's thread, to have every
        worker reopen the file.
    """

    def __init__(self, path: str) -> None:
        FileSink(path).close()
        self.path = path
        self.writeError: Optional[OSError] = None
        self.reopenWorkers: Callable[[], None] = lambda: None

    def write(self, data: bytes) -> int:
        """
        Nothing comes here: the workers write.
        """
        raise OSError(errno.EBADF, "the workers write this output themselves")

    def sync(self) -> None:
        """
        Nothing to sync: each worker syncs what it wrote.
        """

    def reopen(self) -> None:
        """
        Have every worker reopen the file.
        """
        self.reopenWorkers()

    def close(self) -> None:
        """
        Nothing to close.
        """
