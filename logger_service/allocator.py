"""
Keeping the large buffers of batches on the heap, where glibc would map and unmap each one (a page fault per 4 KiB).

A batch of records (up to 256 KiB), a 64 KiB read joined to what was held,
the records of a read's lines: each is allocated and freed many times a
second.  glibc's malloc serves a request above its mmap threshold (128 KiB
at first, raised as such blocks are freed) with a fresh C{mmap} and gives it
back with C{munmap}, and it gives free memory at the top of the heap back
above its trim threshold; either way the next buffer starts on pages the
kernel must fault in again.  Measured in one process, formatting batches of
1,300 lines of 200 bytes took 242 ns a line with glibc's defaults and 54
with the thresholds below (a trim threshold of 1 MiB was not enough: 260);
a whole server spends about 5 % less CPU per line.  The cost: up to
C{trimThreshold} bytes of freed heap kept between bursts.

This sets the two thresholds with C{mallopt}, through C{ctypes}; elsewhere
than glibc it does nothing.
"""

from __future__ import annotations

import ctypes

__all__ = ["keepLargeBuffers"]

# mallopt's parameters, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def keepLargeBuffers(mmapThreshold: int = 1 << 20, trimThreshold: int = 2 << 20) -> bool:
    """
    Have malloc serve requests up to C{mmapThreshold} bytes from the heap,
    and keep up to C{trimThreshold} free bytes at its top.

    @return: whether the C library took both settings (C{False} where there
        is no glibc C{mallopt}).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmapThreshold)) & bool(mallopt(M_TRIM_THRESHOLD, trimThreshold))
