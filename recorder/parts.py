"""Tables to partition files: split rows by date and symbol, write each part crash-safely.

A part holds the rows of one (dataset, date, symbol) in delivery order; its name is a pure
function of its rows (:func:`recorder.layout.partition_path`). Two sets of rows can share a
name only when their receive-time ranges are identical (e.g. one REST response cut by a
rotation); the second is then merged into the first, keyed on ``(session_id, seq)``, so
writing the same rows twice (a recovery replaying a journal) never duplicates a row.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recorder.files import publish_file, storage_errors, tmp_path
from recorder.layout import parse_part_name, partition_dir, partition_path
from recorder.schema import DATE_ONLY_DATASETS, schema_for

__all__ = [
    "COMPRESSIONS",
    "Partition",
    "existing_keys",
    "publish_table",
    "read_part",
    "split_partitions",
    "write_parquet",
    "write_part",
]

COMPRESSIONS: Final = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")
"""Parquet compressions the recorder writes (``none``: uncompressed)."""

_NS_PER_DAY: Final = 86_400_000_000_000
_EPOCH: Final = date(1970, 1, 1)
_KEY: Final = ("session_id", "seq")


@dataclass(frozen=True, slots=True)
class Partition:
    """The rows of one partition: ``symbol`` is ``None`` for date-only datasets."""

    dataset: str
    day: date
    symbol: str | None
    table: pa.Table


def split_partitions(dataset: str, table: pa.Table) -> Iterator[Partition]:
    """Yield the partitions of ``table`` (rows of ``dataset``), by UTC receive date and symbol.

    Rows keep their relative order inside each partition. Partitions are built one at a
    time: write each before asking for the next to keep memory to one partition.
    """
    if table.num_rows == 0:
        return
    days = pc.divide(table["received_ns"], _NS_PER_DAY)
    low, high = pc.min_max(days).values()
    for day_number in range(low.as_py(), high.as_py() + 1):
        rows = table if low == high else table.filter(pc.equal(days, day_number))
        if rows.num_rows == 0:
            continue
        day = _EPOCH + timedelta(days=day_number)
        if dataset in DATE_ONLY_DATASETS:
            yield Partition(dataset, day, None, rows)
            continue
        # A stable sort by symbol; each partition then takes only its own rows, so the
        # memory needed is one partition's, not the whole table's again.
        order = pc.sort_indices(rows, [("symbol", "ascending")])
        runs = pc.run_end_encode(rows["symbol"].take(order).combine_chunks())
        start = 0
        for end, symbol in zip(runs.run_ends.to_pylist(), runs.values.to_pylist(), strict=True):
            yield Partition(dataset, day, symbol, rows.take(order.slice(start, end - start)))
            start = end


def write_parquet(path: Path, table: pa.Table, compression: str) -> None:
    """Write ``table`` to ``path`` and fsync it (the caller publishes it)."""
    codec = None if compression == "none" else compression
    with open(path, "wb") as handle:
        pq.write_table(table, handle, compression=codec)
        handle.flush()
        os.fsync(handle.fileno())


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read one part file in its dataset's schema (no hive columns added)."""
    return pq.read_table(path, columns=columns, partitioning=None)


def existing_keys(directory: Path, first_ns: int, last_ns: int) -> pa.Table:
    """Return the ``(session_id, seq)`` keys already stored in ``directory``'s parts whose
    receive-time range overlaps ``[first_ns, last_ns]``.

    A part that vanishes while being read (a compaction replaced it) restarts the listing.
    """
    for _ in range(10):
        try:
            return _keys_once(directory, first_ns, last_ns)
        except FileNotFoundError:
            continue
    return _keys_once(directory, first_ns, last_ns)


def _keys_once(directory: Path, first_ns: int, last_ns: int) -> pa.Table:
    keys: list[pa.Table] = []
    if directory.is_dir():
        for entry in directory.iterdir():
            interval = parse_part_name(entry.name)
            if interval is None or interval.last_ns < first_ns or interval.first_ns > last_ns:
                continue
            keys.append(read_part(entry, list(_KEY)))
    if not keys:
        return pa.table({"session_id": pa.array([], pa.string()), "seq": pa.array([], pa.int64())})
    return pa.concat_tables(keys)


def _without(table: pa.Table, keys: pa.Table) -> pa.Table:
    # Rows of ``table`` whose (session_id, seq) is not in ``keys``.
    for session in pc.unique(table["session_id"]).to_pylist():
        known = keys.filter(pc.equal(keys["session_id"], session))["seq"]
        if len(known) == 0:
            continue
        stale = pc.and_(
            pc.equal(table["session_id"], session), pc.is_in(table["seq"], value_set=known)
        )
        table = table.filter(pc.invert(stale))
    return table


def write_part(
    root: Path, part: Partition, *, compression: str, dedupe: bool = False
) -> Path | None:
    """Write one partition's rows into their part file and return its path.

    With ``dedupe=True`` (recovery), rows whose ``(session_id, seq)`` is already in an
    overlapping part of the partition are skipped; ``None`` is returned when none is left.

    Raises:
        StorageError: the disk refused the write; no partial file is left under a final name.
    """
    table = part.table
    received = pc.min_max(table["received_ns"])
    first_ns, last_ns = received["min"].as_py(), received["max"].as_py()
    directory = partition_dir(root, part.dataset, part.day, part.symbol)
    with storage_errors("writing a part under", directory):
        if dedupe:
            table = _without(table, existing_keys(directory, first_ns, last_ns))
            if table.num_rows == 0:
                return None
            received = pc.min_max(table["received_ns"])
            first_ns, last_ns = received["min"].as_py(), received["max"].as_py()
        final = partition_path(root, part.dataset, part.symbol, first_ns, last_ns)
        table = table.cast(schema_for(part.dataset))
        tmp = tmp_path(root, ".parquet.tmp")
        try:
            write_parquet(tmp, table, compression)
            if not publish_file(tmp, final, replace=False):
                # Same receive-time range as an existing part: merge, never overwrite.
                merged = _merge(read_part(final), table)
                if merged is None:
                    return final
                write_parquet(tmp, merged, compression)
                publish_file(tmp, final, replace=True)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return final


def _merge(existing: pa.Table, new: pa.Table) -> pa.Table | None:
    existing = existing.cast(new.schema)
    fresh = _without(new, existing.select(list(_KEY)))
    return pa.concat_tables([existing, fresh]) if fresh.num_rows else None


def publish_table(
    root: Path, dataset: str, table: pa.Table, *, compression: str, dedupe: bool = False
) -> list[Path]:
    """Write ``table`` (rows of ``dataset`` in delivery order) into one part per partition.

    Return the parts written.

    Raises:
        StorageError: the disk refused a write; parts already written stay valid.
    """
    written: list[Path] = []
    for part in split_partitions(dataset, table):
        path = write_part(root, part, compression=compression, dedupe=dedupe)
        if path is not None:
            written.append(path)
    return written
