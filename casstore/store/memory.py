"""Giving memory back: commands that walk a million objects free large arrays often.

glibc serves allocations above its mmap threshold with mmap, so freeing them returns the
memory to the system. But the threshold moves up (to 32 MiB) each time such a block is
freed, after which arrays of a few MiB come from the heap and stay in the process's RSS
once freed: measured, a fetch of a million 1 KiB objects kept ~85 MB of freed index and
id arrays. Fixing the threshold at its default keeps it from moving.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)
THRESHOLD = 128 << 10  # glibc's own default


@functools.cache
def return_large_frees() -> bool:
    """Fix the mmap threshold (once per process); False where the C library has no mallopt
    (not glibc), which only means freed memory may stay in the process."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD))
    except (OSError, AttributeError):
        return False
