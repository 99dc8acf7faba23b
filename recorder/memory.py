"""Keeping a long capture's memory flat: give freed memory back, warm the writer up early.

Publishing a journal segment builds Arrow tables and Parquet files on the publish thread and
frees them again. Left alone, the allocators keep what was freed for reuse (Arrow's memory
pool, and the C library's per-thread malloc arenas that the Parquet writer and the codecs
allocate from), and the first publish also pages in the writer's code: the resident set
steps up at the first rotation and stays there. :func:`release_memory`, called after every
publish, hands the freed pages back to the operating system; :func:`warm_up`, called when a
sink opens, writes one row of every dataset to memory, so the writer's code is resident (and
the codec known to work) before any record arrives.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from recorder.parts import ROW_GROUP_ROWS, write_options
from recorder.schema import DATASETS, schema_for

__all__ = ["lower_thread_priority", "release_memory", "warm_up"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    # glibc only; elsewhere there is nothing to call and only Arrow's pool is released.
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_memory() -> None:
    """Return the memory Arrow's pool and the C library's malloc hold but no longer use to
    the operating system (a few milliseconds; call it after a large piece of work)."""
    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _sample(type_: pa.DataType) -> Any:
    if pa.types.is_decimal(type_):
        return Decimal(1)
    if pa.types.is_string(type_):
        return "KRW-BTC"
    if pa.types.is_binary(type_):
        return b"{}"
    if pa.types.is_list(type_):
        return [_sample(type_.value_type)]
    return 0  # integers, timestamps, dates


def warm_up(compression: str) -> None:
    """Write one synthetic row of every dataset to memory as the recorder writes parts.

    Raises:
        pyarrow.ArrowException: the codec or the writer does not work here (say so and stop
            before recording anything).
    """
    for dataset in DATASETS:
        schema = schema_for(dataset)
        table = pa.table([pa.array([_sample(f.type)], f.type) for f in schema], schema=schema)
        sink = pa.BufferOutputStream()
        options = write_options(schema, compression, key_sorted=True)
        pq.write_table(table, sink, row_group_size=ROW_GROUP_ROWS, **options)
        pq.read_table(pa.BufferReader(sink.getvalue()))
    release_memory()


def lower_thread_priority(niceness: int) -> None:
    """Raise the calling thread's nice value by ``niceness`` (Linux: per thread), so the
    event loop's thread wins the core when both want it. Does nothing where unsupported."""
    if niceness <= 0 or not hasattr(os, "setpriority"):
        return
    thread_id = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread_id)
        os.setpriority(os.PRIO_PROCESS, thread_id, min(19, current + niceness))
    except OSError:
        return
