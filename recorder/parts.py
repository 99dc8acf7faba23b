"""Tables to partition files: split rows by date and symbol, write each part crash-safely.

A part holds the rows of one (dataset, date, symbol) in delivery order; its name is a pure
function of its rows (:func:`recorder.layout.partition_path`). Two sets of rows can share a
name only when their receive-time ranges are identical (e.g. one REST response cut by a
rotation); the second is then merged into the first, keyed on ``(session_id, seq)``, so
writing the same rows twice (a recovery replaying a journal) never duplicates a row.

How the Parquet files are written (:func:`write_options`), for readers that want to rely on it:

- row groups hold at most :func:`row_group_rows` rows (65,536; 4,096 with list columns), so
  a reader needs one row group's memory at a time and a time window skips the row groups
  outside it;
- statistics (min/max) are kept for the key columns (``session_id``, ``seq``,
  ``received_ns``), the exchange times, ``symbol`` and ``sequential_id``; not for prices and
  sizes, whose min/max nobody filters on and which cost as much to compute as the rest;
- dictionary encoding is used for string columns only; ``seq`` and ``received_ns`` are
  delta-encoded;
- data pages hold at most :data:`DATA_PAGE_BYTES` (256 KiB) before compression, a quarter of
  Parquet's usual 1 MiB: a reader keeps the current page of every column of every file it
  has open decoded, and a replay holds a file of every market and dataset open at once (an
  open orderbook file: 1.6 instead of 4.4 MiB of Arrow memory), while zstd compresses
  orderbooks about 5 % less well in pages this size (``benchmarks/bench_storage.py``);
- when the rows are in ``(session_id, seq)`` order (every part the recorder writes, and
  compacted files whose parts follow each other), each row group declares it as its
  Parquet ``sorting_columns`` (``session_id`` then ``seq``, ascending), so a reader in
  delivery order can skip checking it.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recorder.files import DirSync, publish_file, storage_errors, tmp_path
from recorder.layout import parse_part_name, partition_dir, partition_path
from recorder.schema import DATE_ONLY_DATASETS, schema_for

__all__ = [
    "COMPRESSIONS",
    "DATA_PAGE_BYTES",
    "LIST_ROW_GROUP_ROWS",
    "ROW_GROUP_ROWS",
    "Partition",
    "existing_keys",
    "key_sorted",
    "publish_table",
    "read_listed",
    "read_part",
    "row_group_rows",
    "split_partitions",
    "write_options",
    "write_parquet",
    "write_part",
]

COMPRESSIONS: Final = ("zstd", "snappy", "gzip", "lz4", "brotli", "none")
"""Parquet compressions the recorder writes (``none``: uncompressed)."""

ROW_GROUP_ROWS: Final = 65_536
"""The most rows a row group of any file tape writes holds."""

LIST_ROW_GROUP_ROWS: Final = 4_096
"""The most rows a row group holds in a file with list columns: an orderbook row holds 30
levels of four decimals, so 4,096 rows decode to about 8 MB where 65,536 took 130 MB."""

DATA_PAGE_BYTES: Final = 256 * 1024
"""The most bytes (encoded, before compression) a data page of a column holds."""

_NS_PER_DAY: Final = 86_400_000_000_000
_EPOCH: Final = date(1970, 1, 1)
_KEY: Final = ("session_id", "seq")
_STATISTICS: Final = frozenset({"session_id", "seq", "received_ns", "symbol", "sequential_id"})
_DELTA: Final = ("seq", "received_ns")
_RELISTS: Final = 10

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Partition:
    """The rows of one partition: ``symbol`` is ``None`` for date-only datasets."""

    dataset: str
    day: date
    symbol: str | None
    table: pa.Table


def split_partitions(dataset: str, table: pa.Table) -> Iterator[Partition]:
    """Yield the partitions of ``table`` (rows of ``dataset``), by UTC receive date and symbol.

    Rows keep their relative order inside each partition. The rows are reordered once by a
    stable sort on (date, symbol), and each partition is a slice of the result: one copy of
    the table at most, whatever the number of partitions.
    """
    if table.num_rows == 0:
        return
    days = pc.divide(table["received_ns"], _NS_PER_DAY)
    low, high = (v.as_py() for v in pc.min_max(days).values())
    by_symbol = dataset not in DATE_ONLY_DATASETS
    if low == high:
        if not by_symbol:
            yield Partition(dataset, _EPOCH + timedelta(days=low), None, table)
            return
        first, last = (v.as_py() for v in pc.min_max(table["symbol"]).values())
        if first == last:
            yield Partition(dataset, _EPOCH + timedelta(days=low), first, table)
            return
    keys = pa.table({"day": days, **({"symbol": table["symbol"]} if by_symbol else {})})
    sort_keys = [(name, "ascending") for name in keys.column_names]
    order = pc.sort_indices(keys, sort_keys=sort_keys)  # stable: equal keys keep their order
    ordered = table.take(order)
    ordered_keys = keys.take(order).combine_chunks()
    ends = _run_ends(ordered_keys)
    start = 0
    for end in ends:
        day_number = ordered_keys["day"][start].as_py()
        symbol = ordered_keys["symbol"][start].as_py() if by_symbol else None
        yield Partition(
            dataset, _EPOCH + timedelta(days=day_number), symbol, ordered.slice(start, end - start)
        )
        start = end


def _run_ends(keys: pa.Table) -> list[int]:
    # Where each run of equal keys ends in rows sorted by those keys.
    count = keys.num_rows
    change = None
    for column in keys.columns:
        differs = pc.not_equal(column.slice(1), column.slice(0, count - 1))
        change = differs if change is None else pc.or_(change, differs)
    assert change is not None
    starts = pc.indices_nonzero(change).to_pylist()
    return [s + 1 for s in starts] + [count]


def key_sorted(table: pa.Table) -> bool:
    """Return whether ``table``'s rows are in ``(session_id, seq)`` order."""
    count = table.num_rows
    if count < 2:
        return True
    sessions, seqs = table["session_id"], table["seq"]
    low, high = pc.min_max(sessions).values()
    if low == high:
        return bool(pc.all(pc.greater_equal(seqs.slice(1), seqs.slice(0, count - 1))).as_py())
    later = pc.greater(sessions.slice(1), sessions.slice(0, count - 1))
    same = pc.equal(sessions.slice(1), sessions.slice(0, count - 1))
    rising = pc.greater_equal(seqs.slice(1), seqs.slice(0, count - 1))
    return bool(pc.all(pc.or_(later, pc.and_(same, rising))).as_py())


def _leaves(field: pa.Field) -> list[str]:
    if pa.types.is_list(field.type):
        return [f"{field.name}.list.element"]
    return [field.name]


def write_options(schema: pa.Schema, compression: str, *, key_sorted: bool) -> dict[str, Any]:
    """Return the keyword arguments of ``pyarrow.parquet.ParquetWriter`` (and
    ``write_table``) for a file of ``schema`` (see the module's description)."""
    strings = [
        leaf
        for f in schema
        if pa.types.is_string(f.type)
        or (pa.types.is_list(f.type) and pa.types.is_string(f.type.value_type))
        for leaf in _leaves(f)
    ]
    statistics = [f.name for f in schema if f.name in _STATISTICS or pa.types.is_timestamp(f.type)]
    options: dict[str, Any] = {
        "compression": None if compression == "none" else compression,
        "use_dictionary": strings,
        "write_statistics": statistics,
        "column_encoding": {name: "DELTA_BINARY_PACKED" for name in _DELTA if name in schema.names},
        "data_page_size": DATA_PAGE_BYTES,
    }
    if key_sorted:
        index = schema.get_field_index
        options["sorting_columns"] = [pq.SortingColumn(index(name)) for name in _KEY]
    return options


def row_group_rows(schema: pa.Schema) -> int:
    """Return the most rows a row group of a file of ``schema`` holds:
    :data:`LIST_ROW_GROUP_ROWS` with list columns, else :data:`ROW_GROUP_ROWS`."""
    if any(pa.types.is_list(field.type) for field in schema):
        return min(LIST_ROW_GROUP_ROWS, ROW_GROUP_ROWS)
    return ROW_GROUP_ROWS


def write_parquet(
    path: Path, table: pa.Table, compression: str, *, page_bytes: int = DATA_PAGE_BYTES
) -> None:
    """Write ``table`` to ``path`` in row groups of at most :func:`row_group_rows` and fsync
    it (the caller publishes it). ``page_bytes`` is there to measure other page sizes."""
    options = write_options(table.schema, compression, key_sorted=key_sorted(table))
    options["data_page_size"] = page_bytes
    with open(path, "wb") as handle:
        pq.write_table(table, handle, row_group_size=row_group_rows(table.schema), **options)
        handle.flush()
        os.fsync(handle.fileno())


def read_part(path: Path, columns: list[str] | None = None) -> pa.Table:
    """Read one part file in its dataset's schema (no hive columns added)."""
    return pq.read_table(path, columns=columns, partitioning=None)


def read_listed(read: Callable[[], _T], *, first_wait_s: float = 0.01) -> _T:
    """Return ``read()``, a read of parts it lists itself, listing and reading again when a
    listed part vanished meanwhile (a compaction replaced it by a merged part holding the same
    rows, which the next listing finds). The first restart waits ``first_wait_s``, each next
    one twice as long; after ten (about 10 s in all by default) the error is raised."""
    for attempt in range(_RELISTS):
        try:
            return read()
        except FileNotFoundError:
            time.sleep(first_wait_s * 2**attempt)
    return read()


def existing_keys(directory: Path, first_ns: int, last_ns: int) -> pa.Table:
    """Return the ``(session_id, seq)`` keys already stored in ``directory``'s parts whose
    receive-time range overlaps ``[first_ns, last_ns]`` (:func:`read_listed`)."""
    return read_listed(lambda: _keys_once(directory, first_ns, last_ns))


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
    root: Path,
    part: Partition,
    *,
    compression: str,
    dedupe: bool = False,
    later: DirSync | None = None,
) -> Path | None:
    """Write one partition's rows into their part file and return its path.

    With ``dedupe=True`` (recovery), rows whose ``(session_id, seq)`` is already in an
    overlapping part of the partition are skipped; ``None`` is returned when none is left.
    With ``later``, the directories to fsync are collected there for the caller to sync
    (the file itself is complete and fsynced before it takes its name, either way).

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
            if not publish_file(tmp, final, replace=False, later=later):
                # Same receive-time range as an existing part: merge, never overwrite.
                merged = _merge(read_part(final), table)
                if merged is None:
                    return final
                write_parquet(tmp, merged, compression)
                publish_file(tmp, final, replace=True, later=later)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return final


def _merge(existing: pa.Table, new: pa.Table) -> pa.Table | None:
    existing = existing.cast(new.schema)
    fresh = _without(new, existing.select(list(_KEY)))
    if not fresh.num_rows:
        return None
    merged = pa.concat_tables([existing, fresh])
    order = pc.sort_indices(merged, sort_keys=[(name, "ascending") for name in _KEY])
    return merged.take(order)


def publish_table(
    root: Path,
    dataset: str,
    table: pa.Table,
    *,
    compression: str,
    dedupe: bool = False,
    later: DirSync | None = None,
) -> list[Path]:
    """Write ``table`` (rows of ``dataset`` in delivery order) into one part per partition.

    Return the parts written. Without ``later`` the directories are fsynced before this
    returns; with it, they are left to the caller's :meth:`DirSync.sync`.

    Raises:
        StorageError: the disk refused a write; parts already written stay valid.
    """
    own = later is None
    dirs = DirSync() if later is None else later
    written: list[Path] = []
    for part in split_partitions(dataset, table):
        path = write_part(root, part, compression=compression, dedupe=dedupe, later=dirs)
        if path is not None:
            written.append(path)
    if own:
        with storage_errors("making the parts durable under", root / dataset):
            dirs.sync()
    return written
