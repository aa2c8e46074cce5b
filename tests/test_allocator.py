"""
Tests for L{logger_service.allocator}: after L{keepLargeBuffers}, a buffer
of a batch's size comes from the heap, not from a mapping of its own.
"""

from __future__ import annotations

import ctypes
import platform

from twisted.trial.unittest import SynchronousTestCase

from logger_service.allocator import keepLargeBuffers


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks")
    ] + [("keepcost", ctypes.c_size_t)]


def mappedBlocks() -> int:
    """
    How many blocks malloc serves from mappings of their own (glibc's
    C{mallinfo2().hblks}).
    """
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = _MallInfo2
    return int(mallinfo2().hblks)


class KeepLargeBuffersTests(SynchronousTestCase):
    """
    L{keepLargeBuffers} on this machine's glibc.
    """

    def setUp(self) -> None:
        if platform.libc_ver()[0] != "glibc":
            raise self.failureException("these tests need glibc, as the service's hosts have")

    def test_batchFromHeap(self) -> None:
        """
        Once set, a 600 KB buffer (more than glibc's first mmap threshold
        of 128 KiB) is not a mapping of its own.
        """
        self.assertTrue(keepLargeBuffers())
        before = mappedBlocks()
        buffer = bytearray(600_000)
        self.assertEqual(mappedBlocks(), before)
        del buffer

    def test_largerStillMapped(self) -> None:
        """
        Above the threshold set, malloc maps as before: a 4 MB buffer is a
        mapping of its own.
        """
        self.assertTrue(keepLargeBuffers())
        before = mappedBlocks()
        buffer = bytearray(4_000_000)
        self.assertEqual(mappedBlocks(), before + 1)
        del buffer
