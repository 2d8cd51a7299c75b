"""Giving memory back: commands that walk a million objects free large arrays often.

glibc serves allocations above its mmap threshold with mmap, so freeing them returns the
memory to the system. But the threshold moves up (to 32 MiB) each time such a block is
freed, after which arrays of a few MiB come from the heap and stay in the process's RSS
once freed: measured, a fetch of a million 1 KiB objects kept ~85 MB of freed index and
id arrays. Fixing the threshold at its default keeps it from moving.

Each thread that allocates may get a heap (an arena) of its own, up to eight per core, and
what a heap frees stays in it for that heap's next use: downloads on eight threads spread
their span buffers over as many heaps. Two heaps keep what the threads free reusable by
the others (measured: a fetch of a million 1 KiB objects peaked ~20-50 MB lower), and
``trim`` hands back what a finished phase freed before the next begins.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_MMAP_THRESHOLD = -3  # mallopt parameters (malloc.h)
M_ARENA_MAX = -8
THRESHOLD = 128 << 10  # glibc's own default
ARENAS = 2


@functools.cache
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


@functools.cache
def return_large_frees() -> bool:
    """Fix the mmap threshold and bound the heaps (once per process); False where the C
    library has no mallopt (not glibc), which only means freed memory may stay in the
    process."""
    libc = _libc()
    try:
        return bool(libc is not None and libc.mallopt(M_MMAP_THRESHOLD, THRESHOLD)
                    and libc.mallopt(M_ARENA_MAX, ARENAS))
    except AttributeError:
        return False


def trim() -> None:
    """Return the free memory of every heap to the system now (glibc's malloc_trim); a
    no-op elsewhere."""
    libc = _libc()
    trim_fn = getattr(libc, "malloc_trim", None) if libc is not None else None
    if trim_fn is not None:
        trim_fn(0)
