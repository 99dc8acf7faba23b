"""Keeping a long capture's memory flat: give freed memory back, warm the writer up early.

Publishing a journal segment builds Arrow tables and Parquet files on the publish thread and
frees them again. Left alone, the allocators keep what was freed for reuse (Arrow's memory
pool, and the C library's per-thread malloc arenas that the Parquet writer and the codecs
allocate from), and the first publish also pages in the writer's code: the resident set
steps up at the first rotation and stays there. :func:`release_memory`, called after every
publish, hands the freed pages back to the operating system; :func:`warm_up`, called when a
sink opens on the thread that publishes, runs a few rows of every dataset through the steps of
a publish in memory (journal round trip, split into partitions, Parquet write and read back),
so the code those steps run is resident, and the codec known to work, before any record
arrives.
"""

from __future__ import annotations

import os
import threading
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from backbone.memory import release_freed_memory
from recorder.parts import key_sorted, row_group_rows, split_partitions, write_options
from recorder.schema import DATASETS, schema_for

__all__ = ["lower_thread_priority", "release_memory", "warm_up"]


def release_memory() -> None:
    """Return the memory Arrow's pool and the C library's malloc hold but no longer use to
    the operating system (a few milliseconds; call it after a large piece of work)."""
    pa.default_memory_pool().release_unused()
    release_freed_memory()


def _sample(type_: pa.DataType, row: int) -> Any:
    if pa.types.is_decimal(type_):
        return Decimal(row + 1)
    if pa.types.is_string(type_):
        return _SYMBOLS[row % 2]
    if pa.types.is_binary(type_):
        return b"{}"
    if pa.types.is_list(type_):
        return [_sample(type_.value_type, row)] * 2
    return row  # integers, timestamps, dates


_SYMBOLS = ("KRW-BTC", "KRW-ETH")
_NS_PER_DAY = 86_400_000_000_000


def _warm_table(dataset: str) -> pa.Table:
    # Four rows over two symbols and two receive dates, in delivery order: publishing them
    # takes the general path (sort by date and symbol, one slice per partition).
    schema = schema_for(dataset)
    columns = []
    for field in schema:
        if field.name == "received_ns":
            values: list[Any] = [(row // 2) * _NS_PER_DAY + row for row in range(4)]
        else:
            values = [_sample(field.type, row) for row in range(4)]
        columns.append(pa.array(values, field.type))
    return pa.table(columns, schema=schema)


def warm_up(compression: str) -> None:
    """Run a small table of every dataset through the steps of a publish, in memory: an
    Arrow IPC round trip as through the journal, the split into partitions, and a
    partition written as a Parquet part and read back. The code and the allocator paths of
    the first real publish are then in place before any record arrives.

    Raises:
        pyarrow.ArrowException: the codec or the writer does not work here (say so and stop
            before recording anything).
    """
    for dataset in DATASETS:
        schema = schema_for(dataset)
        batch = _warm_table(dataset).to_batches()[0]
        journaled = pa.ipc.read_record_batch(batch.serialize(), schema)
        table = pa.Table.from_batches([journaled], schema=schema)
        # Every partition is cut; one is enough to write (the others take the same path).
        part = next(split_partitions(dataset, table)).table.cast(schema)
        pc.min_max(part["received_ns"])
        sink = pa.BufferOutputStream()
        options = write_options(schema, compression, key_sorted=key_sorted(part))
        pq.write_table(part, sink, row_group_size=row_group_rows(schema), **options)
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
