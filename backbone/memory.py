"""Handing memory the C allocator holds, freed, back to the operating system.

A long-running backbone allocates and frees many short-lived buffers (frames, REST pages of
500 trades, records). glibc's malloc keeps freed memory for reuse; after bursts of large
blocks it keeps more than it needs, and the resident set creeps up although the live data
does not. ``malloc_trim(0)`` returns those free pages. Only glibc has it; elsewhere
:func:`can_release` is False and nothing is done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

__all__ = ["can_release", "release_freed_memory"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def can_release() -> bool:
    """True where the C library can hand freed memory back (glibc)."""
    return _malloc_trim() is not None


def release_freed_memory() -> bool:
    """Return the free memory malloc holds to the operating system (a few milliseconds; it
    releases the GIL, so run it in a worker thread). True if anything was returned."""
    trim = _malloc_trim()
    return trim is not None and trim(0) == 1
