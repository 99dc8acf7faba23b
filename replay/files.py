"""Finding and reading the files of a selection, never more than it needs.

:func:`discover` walks ``<root>/<dataset>/date=.../symbol=.../part-<first>-<last>.parquet``
(:mod:`recorder.layout`) and keeps only the partitions and files whose date, symbol and
receive-time range meet the selection. It reads each kept file's footer: the schema version
(an unknown one is a clear :class:`~replay.errors.UnsupportedSchemaVersion`), and per row group
the statistics of ``session_id``, ``seq`` and ``received_ns``, so row groups outside the window
are never read. What it keeps is packed in arrays (:class:`Parts`), so planning a recording
of many parts costs little memory.

:class:`Unopened` holds a cursor per (file, session), packed too, until a merge opens it as a
:class:`Cursor`: each yields that session's rows of the file as :class:`Chunk` batches in
``seq`` order, filtered to the selection, with bounded read-ahead (one batch of at most
:func:`batch_rows` rows). A file whose row groups each hold one session in ascending ``seq``
(what the recorder writes; checked on opening by reading the ``seq`` column, unless the
writer declared the order in the row groups' ``sorting_columns``) is streamed batch by batch;
any other file (a merge of parts whose receive order is not their ``seq`` order, several
sessions per row group) is read whole for its session and sorted, which bounds memory by that
file's size.

Reading older schema versions: :data:`UPGRADES` maps a version to a function turning a batch
of it into the current schema. Version 1 is the current one.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from array import array
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final, overload

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recorder.layout import MANIFEST_FILE, date_of_ns, parse_part_name, part_file_name
from recorder.parts import read_listed
from recorder.schema import (
    DATASET_KEY,
    DATASETS,
    DATE_ONLY_DATASETS,
    SCHEMA_VERSION,
    UnknownSchemaVersion,
    schema_for,
    schema_version_of,
)
from replay.errors import RecordingFormatError, RecordingNotFound, UnsupportedSchemaVersion
from replay.selection import Selection

__all__ = [
    "BULK_BYTES",
    "I64",
    "UPGRADES",
    "Chunk",
    "Cursor",
    "PartFile",
    "Parts",
    "RowGroupInfo",
    "SessionCursors",
    "Unopened",
    "batch_rows",
    "bulk_rows",
    "check_root",
    "discover",
    "recorded_symbols",
    "release_arrow_memory",
]

I64 = npt.NDArray[np.int64]

UPGRADES: Final[dict[int, Callable[[str, pa.RecordBatch], pa.RecordBatch]]] = {
    SCHEMA_VERSION: lambda dataset, batch: batch,
}
"""For each schema version replay reads, how a batch of it becomes the current schema."""

_BATCH_ROWS: Final = {"trade": 8192, "ticker": 2048, "candle": 2048, "orderbook": 256}
BULK_BYTES: Final = 2 << 20
"""Decoded bytes per file and batch that batch access aims at (the read-ahead per open file)."""
_READ_BUFFER: Final = 1 << 16
_SIZED_FOR_SYMBOLS: Final = 4
"""Symbols interleaved in one dataset that the streams' rows per batch (:func:`batch_rows`) are
sized for. A merge holds a file of each symbol open at once, so with more symbols a stream
reads each file proportionally fewer rows at a time (at least :data:`_MIN_SHARED_ROWS`), and
its read-ahead stays near that of four files per dataset however many markets are selected
(50 markets of compacted trades: half the memory in about the same time). Batch access and
reads of the key columns alone keep their batches: with 50 markets the same division cost
batch access 40 % of its speed."""
_MIN_SHARED_ROWS: Final = 256
_KEY_COLUMNS: Final = ("session_id", "seq", "received_ns")
_DATE_DIR: Final = re.compile(r"^date=(\d{4}-\d{2}-\d{2})$")
_SYMBOL_DIR: Final = re.compile(r"^symbol=(.+)$")


def batch_rows(dataset: str, keys_only: bool = False) -> int:
    """Return the rows per batch the streams read for ``dataset`` with up to four symbols:
    the unit of read-ahead per file (a few hundred KB to 2 MB: the streams decode their rows
    into objects). With more symbols, a stream reads proportionally fewer (see
    :data:`_SIZED_FOR_SYMBOLS`)."""
    if keys_only:
        return 65536
    return _BATCH_ROWS.get(dataset, 1024)


def bulk_rows(dataset: str, columns: Sequence[str] | None = None) -> int:
    """Return the rows per batch for batch access to ``columns`` of ``dataset`` (default:
    every column): about :data:`BULK_BYTES` of them once decoded, from 1,024 to 131,072 rows.

    Widths come from the schema; a string counts 24 bytes, a list 15 items (an orderbook's
    levels).
    """
    schema = schema_for(dataset)
    names = schema.names if columns is None else [n for n in columns if n in schema.names]
    width = sum(_width(schema.field(name).type) for name in names) or 8
    return max(1024, min(131072, BULK_BYTES // width))


_RELEASE_EVERY_FILES: Final = 32
_files_closed = itertools.count(1)


def _release_arrow_memory() -> None:
    # Every _RELEASE_EVERY_FILES cursors closed (a file, or one session's rows of it), hand
    # the memory Arrow's allocator holds, freed, back to the operating system. mimalloc (the
    # default pool of pyarrow's wheels) keeps freed pages for reuse, so a replay of many
    # small files would otherwise keep the high-water mark of all of them
    # (benchmarks/bench_replay_memory.py: ten times the parts, scanned, peaked 1.14 times
    # higher). It frees mostly what the calling thread (the reader) allocated. Not after
    # every file: the pages handed back are faulted in again by the next batches, which cost
    # the 3-column scan of bench_replay.py, a few large files, about a third of its speed.
    if next(_files_closed) % _RELEASE_EVERY_FILES == 0:
        release_arrow_memory()


def release_arrow_memory() -> None:
    """Hand the memory Arrow's allocator holds, freed, back to the operating system."""
    pa.default_memory_pool().release_unused()


def _width(kind: pa.DataType) -> int:
    # Decoded bytes per row of a column, roughly.
    if pa.types.is_list(kind):
        return 4 + 15 * _width(kind.value_type)
    try:
        return max(1, int(kind.bit_width) // 8)
    except ValueError:  # variable width
        return 24


@dataclass(frozen=True, slots=True)
class RowGroupInfo:
    """What a row group's statistics say. ``session`` is ``None`` when it holds several
    sessions or has no statistics; the ranges are ``None`` when unknown."""

    index: int
    num_rows: int
    session: str | None
    seq_sorted: bool
    """The writer declared the rows sorted by ``seq`` (Parquet ``sorting_columns``)."""
    seq_min: int | None
    seq_max: int | None
    recv_min: int | None
    recv_max: int | None


@dataclass(frozen=True, slots=True)
class PartFile:
    """A part file of the selection and its row groups that meet the window."""

    path: Path
    dataset: str
    symbol: str | None
    version: int
    row_groups: tuple[RowGroupInfo, ...]
    identity: tuple[int, int, int] | None = None
    """The file's inode, size and modification time when found: a file under the same name
    later (a compaction's merged part may take the name of an input) is another file."""


_HIGHEST: Final = 2**63 - 1
_PART_FIELDS: Final = 8  # directory, first ns, last ns, version, identity?, size, mtime, groups end
_GROUP_FIELDS: Final = 8  # index, rows, session, flags, seq min and max, recv min and max
_SEQ_SORTED: Final = 1  # flags: bit 0 the declared seq order, bits 1-4 which statistics exist


class Parts(Sequence[PartFile]):
    """The part files of one dataset that meet a selection, packed in integer arrays.

    A replay plans every part of its selection before it starts, and a day of 200 markets
    recorded without compaction has about 170,000 parts. As :class:`PartFile` objects (a
    path, row-group statistics as Python integers) a part costs about 1 KB; packed here,
    about 130 bytes with one row group. Indexing rebuilds a :class:`PartFile`. A part's
    symbol is its directory's (the first part added from a directory sets it), as discovery
    finds it.
    """

    def __init__(self, dataset: str) -> None:
        self.dataset = dataset
        self._dirs: list[tuple[Path, str | None]] = []
        self._dir_index: dict[Path, int] = {}
        self._sessions: list[str] = []
        self._session_index: dict[str, int] = {}
        self._odd_names: dict[int, str] = {}  # names other than part-<first>-<last>.parquet
        self._parts = array("q")
        self._inodes = array("Q")  # unsigned, as the file system gives them
        self._groups = array("q")

    def __repr__(self) -> str:
        return f"Parts({self.dataset!r}, {len(self)} parts)"

    def append(self, part: PartFile) -> None:
        """Add ``part`` (of this dataset)."""
        directory, name = part.path.parent, part.path.name
        where = self._dir_index.setdefault(directory, len(self._dirs))
        if where == len(self._dirs):
            self._dirs.append((directory, part.symbol))
        interval = parse_part_name(name)
        first = last = 0
        if interval is not None and max(interval.first_ns, interval.last_ns) <= _HIGHEST:
            first, last = interval.first_ns, interval.last_ns
        if name != part_file_name(first, last):
            self._odd_names[len(self)] = name
        for g in part.row_groups:
            session = -1
            if g.session is not None:
                session = self._session_index.setdefault(g.session, len(self._sessions))
                if session == len(self._sessions):
                    self._sessions.append(g.session)
            stats = _stats(g)
            flags = int(g.seq_sorted)
            for bit, value in enumerate(stats, start=1):
                flags |= (value is not None) << bit
            values = (0 if v is None else v for v in stats)
            self._groups.extend((g.index, g.num_rows, session, flags, *values))
        inode, size, mtime = part.identity if part.identity is not None else (0, 0, 0)
        known = int(part.identity is not None)
        end = len(self._groups) // _GROUP_FIELDS
        self._parts.extend((where, first, last, part.version, known, size, mtime, end))
        self._inodes.append(inode)

    def __len__(self) -> int:
        return len(self._parts) // _PART_FIELDS

    @overload
    def __getitem__(self, index: int) -> PartFile: ...

    @overload
    def __getitem__(self, index: slice) -> list[PartFile]: ...

    def __getitem__(self, index: int | slice) -> PartFile | list[PartFile]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        at = index * _PART_FIELDS
        where, first, last, version, known, size, mtime, _ = self._parts[at : at + _PART_FIELDS]
        directory, symbol = self._dirs[where]
        name = self._odd_names.get(index) or part_file_name(first, last)
        identity = (self._inodes[index], size, mtime) if known else None
        groups = self.row_groups(index)
        return PartFile(directory / name, self.dataset, symbol, version, groups, identity)

    def row_groups(self, index: int) -> tuple[RowGroupInfo, ...]:
        """Return the row groups of part ``index`` (``self[index].row_groups`` without
        building its path)."""
        at = index * _PART_FIELDS
        start = self._parts[at - 1] if index else 0
        end = self._parts[at + _PART_FIELDS - 1]
        groups = []
        for g in range(start, end):
            number, rows, session, flags, *values = self._groups[
                g * _GROUP_FIELDS : (g + 1) * _GROUP_FIELDS
            ].tolist()
            seq_min, seq_max, recv_min, recv_max = (
                v if flags >> bit & 1 else None for bit, v in enumerate(values, start=1)
            )
            groups.append(
                RowGroupInfo(
                    number,
                    rows,
                    None if session < 0 else self._sessions[session],
                    bool(flags & _SEQ_SORTED),
                    seq_min,
                    seq_max,
                    recv_min,
                    recv_max,
                )
            )
        return tuple(groups)

    @property
    def symbols(self) -> set[str]:
        """The symbols the parts belong to."""
        return {symbol for _, symbol in self._dirs if symbol is not None}

    @property
    def symbol_count(self) -> int:
        """How many different symbols the parts belong to (a date-only dataset's ``None``
        counts one)."""
        return len({symbol for _, symbol in self._dirs})

    @property
    def session_ids(self) -> set[str]:
        """The sessions the row groups' statistics name."""
        return set(self._sessions)


def _stats(group: RowGroupInfo) -> tuple[int | None, ...]:
    return group.seq_min, group.seq_max, group.recv_min, group.recv_max


class Chunk:
    """One batch of a cursor: rows of one file and one session, in ``seq`` order.

    ``seq`` and ``received`` are the key columns as numpy arrays (``received`` is ``None``
    when the cursor was asked for order only, ``clock=False``, even if the column was read).
    ``decoded`` is a cache slot owned by the consumer of the chunk (the engine keeps decoded
    records there).
    """

    __slots__ = ("batch", "dataset", "decoded", "received", "seq", "session", "symbol")

    def __init__(
        self,
        dataset: str,
        symbol: str | None,
        session: str,
        batch: pa.RecordBatch,
        *,
        clock: bool = True,
    ) -> None:
        self.dataset = dataset
        self.symbol = symbol
        self.session = session
        self.batch = batch
        self.seq: I64 = batch.column("seq").to_numpy()
        names = batch.schema.names
        self.received: I64 | None = (
            batch.column("received_ns").to_numpy() if clock and "received_ns" in names else None
        )
        self.decoded: tuple[int, int, list[Any]] | None = None

    def __len__(self) -> int:
        return int(self.batch.num_rows)


def check_root(root: Path) -> None:
    """Check that ``root`` holds a recording.

    Raises:
        RecordingNotFound: ``root`` is missing, not a directory, or holds neither a
            ``tape.json`` nor any dataset directory.
    """
    if not root.is_dir():
        raise RecordingNotFound(
            f"{root} is not a directory: give the directory a recorder wrote (its --out)"
        )
    if (root / MANIFEST_FILE).is_file():
        return
    if any((root / name).is_dir() for name in DATASETS):
        return
    raise RecordingNotFound(
        f"{root} holds no recording (no {MANIFEST_FILE}, no dataset directories): "
        "give the directory a recorder wrote (its --out)"
    )


def _dirs(parent: Path, pattern: re.Pattern[str]) -> list[tuple[str, Path]]:
    if not parent.is_dir():
        return []
    found = []
    for entry in parent.iterdir():
        match = pattern.match(entry.name)
        if match is not None and entry.is_dir():
            found.append((match.group(1), entry))
    return sorted(found)


def discover(selection: Selection, dataset: str) -> Parts:
    """Return the part files of ``dataset`` that can hold selected rows, in path order
    (listed again if a compaction replaces a part meanwhile).

    Raises:
        RecordingFormatError: a file's footer is unreadable or names another dataset.
        UnsupportedSchemaVersion: a file was written with a schema version replay does not
            read.
    """
    return read_listed(functools.partial(_discover, selection, dataset))


def _discover(selection: Selection, dataset: str) -> Parts:
    first_day = date_of_ns(selection.start_ns) if selection.start_ns is not None else None
    last_day = date_of_ns(selection.end_ns - 1) if selection.end_ns is not None else None
    parts = Parts(dataset)
    for day_text, day_dir in _dirs(selection.root / dataset, _DATE_DIR):
        day = date.fromisoformat(day_text)
        if (first_day is not None and day < first_day) or (last_day is not None and day > last_day):
            continue
        if dataset in DATE_ONLY_DATASETS:
            leaves: list[tuple[str | None, Path]] = [(None, day_dir)]
        else:
            leaves = [
                (symbol, path)
                for symbol, path in _dirs(day_dir, _SYMBOL_DIR)
                if selection.wants_symbol(symbol)
            ]
        for symbol, leaf in leaves:
            for path in sorted(leaf.iterdir()):
                interval = parse_part_name(path.name)
                if interval is None or not selection.overlaps(*interval):
                    continue
                part = _read_footer(path, dataset, symbol, selection)
                if part.row_groups:
                    parts.append(part)
    return parts


def recorded_symbols(root: Path) -> tuple[str, ...]:
    """Return every symbol that has a partition under ``root`` (directory names only), sorted."""
    found: set[str] = set()
    for dataset in DATASETS:
        if dataset in DATE_ONLY_DATASETS:
            continue
        for _, day_dir in _dirs(root / dataset, _DATE_DIR):
            found.update(symbol for symbol, _ in _dirs(day_dir, _SYMBOL_DIR))
    return tuple(sorted(found))


def _declares_seq_order(group: pq.RowGroupMetaData, where: dict[str, int]) -> bool:
    # Whether the writer declared the row group sorted by seq (alone, or after session_id).
    sorting = [(c.column_index, c.descending) for c in (group.sorting_columns or ())]
    seq, session = (where["seq"], False), (where["session_id"], False)
    return sorting[:1] == [seq] or sorting[:2] == [session, seq]


def _stat(column: pq.ColumnChunkMetaData) -> tuple[object, object] | None:
    stats = column.statistics
    if stats is None or not stats.has_min_max:
        return None
    return stats.min, stats.max


def _identity(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def _read_footer(path: Path, dataset: str, symbol: str | None, selection: Selection) -> PartFile:
    try:
        identity = _identity(path)
        meta = pq.read_metadata(path)
    except FileNotFoundError:
        raise  # listed, then replaced by a compaction: discover lists again
    except (OSError, pa.ArrowInvalid) as exc:
        raise RecordingFormatError(
            path, f"not a readable Parquet file ({exc}); move it out of the recording"
        ) from exc
    kv = meta.metadata or {}
    try:
        version = schema_version_of(kv)
    except UnknownSchemaVersion as exc:
        raise UnsupportedSchemaVersion(path, str(exc)) from exc
    if version not in UPGRADES:
        raise UnsupportedSchemaVersion(
            path, f"schema version {version} has no reader in replay: install a newer tape"
        )
    written = kv.get(DATASET_KEY)
    if written is not None and written.decode() != dataset:
        raise RecordingFormatError(
            path, f"holds dataset {written.decode()!r} but lies under {dataset!r}: move it"
        )
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    missing = [name for name in _KEY_COLUMNS if name not in names]
    if missing:
        raise RecordingFormatError(path, f"lacks the key columns {missing}: not a tape part")
    where = {name: names.index(name) for name in _KEY_COLUMNS}
    groups = []
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        if group.num_rows == 0:
            continue
        session = _stat(group.column(where["session_id"]))
        seq = _stat(group.column(where["seq"]))
        recv = _stat(group.column(where["received_ns"]))
        info = RowGroupInfo(
            index=index,
            num_rows=group.num_rows,
            session=str(session[0]) if session is not None and session[0] == session[1] else None,
            seq_sorted=_declares_seq_order(group, where),
            seq_min=int(seq[0]) if seq is not None else None,  # type: ignore[call-overload]
            seq_max=int(seq[1]) if seq is not None else None,  # type: ignore[call-overload]
            recv_min=int(recv[0]) if recv is not None else None,  # type: ignore[call-overload]
            recv_max=int(recv[1]) if recv is not None else None,  # type: ignore[call-overload]
        )
        if (
            info.recv_min is not None
            and info.recv_max is not None
            and not selection.overlaps(info.recv_min, info.recv_max)
        ):
            continue
        groups.append(info)
    return PartFile(path, dataset, symbol, version, tuple(groups), identity)


class Cursor:
    """The rows of one session in one file, in ``seq`` order, one :class:`Chunk` at a time.

    ``bound_seq`` and ``bound_ns`` are lower bounds of the cursor's ``seq`` and
    ``received_ns`` known before it is opened (from statistics), so a merge opens it only when
    its rows can come next. Call :meth:`next_chunk` until it returns ``None``; :meth:`close`
    releases the file.
    """

    def __init__(
        self,
        part: PartFile,
        session: str,
        groups: Sequence[RowGroupInfo],
        *,
        bound_seq: int,
        bound_ns: int,
        streaming: bool,
        selection: Selection,
        columns: Sequence[str] | None,
        batch_size: int | None = None,
    ) -> None:
        self.part = part
        self._version = part.version  # of the file read (a merged part's, after a compaction)
        self._batch_size = batch_size
        self.session = session
        self.groups = tuple(groups)
        self.bound_seq = bound_seq
        self.bound_ns = bound_ns
        self.streaming = streaming
        self._selection = selection
        self._columns = list(columns) if columns is not None else None
        self._batches: Iterator[pa.RecordBatch] | None = None
        self._last_seq = -1
        self.sharing = 1
        """How many groups of :data:`_SIZED_FOR_SYMBOLS` symbols the merge reads side by side
        with this file: a stream reads it that many times fewer rows at a time (at least
        :data:`_MIN_SHARED_ROWS`; not batch access, nor reads of the key columns alone)."""
        self.clock = True
        """Read ``received_ns`` for the replay clock; a merge of one session in ``seq`` order
        alone may turn it off before the cursor opens."""

    def _read_columns(self, streaming: bool) -> list[str] | None:
        if self._columns is None:
            return None
        selection = self._selection
        extra = ["seq"]
        if self.clock or selection.start_ns is not None or selection.end_ns is not None:
            extra.append("received_ns")
        if not streaming:
            extra.append("session_id")
        if self.part.dataset == "events" and selection.symbols:
            extra.append("symbols")
        wanted = list(self._columns)
        wanted.extend(name for name in extra if name not in wanted)
        return wanted

    def _open(self) -> Iterator[pa.RecordBatch]:
        path = self.part.path
        keys_only = self._columns is not None and set(self._columns) <= set(_KEY_COLUMNS)
        bulk = self._batch_size is not None
        size = self._batch_size or batch_rows(self.part.dataset, keys_only)
        streamed = size
        if not bulk and not keys_only and self.sharing > 1:
            streamed = max(_MIN_SHARED_ROWS, size // self.sharing)
        try:
            if self.part.identity is not None and _identity(path) != self.part.identity:
                raise _Replaced(path)
            # Buffered, not pre-buffered: a large row group is read page by page, so memory
            # stays near one batch whatever the file's size.
            handle = pq.ParquetFile(path, pre_buffer=False, buffer_size=_READ_BUFFER)
            indexes = [g.index for g in self.groups]
            if self.streaming and (
                all(g.seq_sorted for g in self.groups) or _ascending(handle, indexes)
            ):
                yield from handle.iter_batches(
                    batch_size=streamed,
                    row_groups=indexes,
                    columns=self._read_columns(streaming=True),
                    use_threads=bulk,  # decoding threads cost memory; worth it in bulk only
                )
                return
            table = handle.read_row_groups(indexes, columns=self._read_columns(streaming=False))
        except (FileNotFoundError, _Replaced) as exc:
            table = self._from_merged_part(exc)
        except (OSError, pa.ArrowInvalid) as exc:
            raise RecordingFormatError(path, f"cannot be read ({exc}); move it aside") from exc
        table = table.filter(pc.equal(table["session_id"], self.session))
        table = table.take(pc.sort_indices(table, [("seq", "ascending")]))
        yield from table.to_batches(max_chunksize=size)

    def _from_merged_part(self, gone: Exception) -> pa.Table:
        # The file vanished or was replaced after discovery: a compaction merged it into a
        # part of the same partition whose receive-time range covers it (possibly under its
        # name). Read this cursor's rows from that part: its session's rows (filtered by the
        # caller) with a seq in the file's seq range and a receive time in its name's range;
        # the selection's window is applied afterwards, as to any batch.
        path = self.part.path
        lows = [g.seq_min for g in self.groups]
        highs = [g.seq_max for g in self.groups]
        found = parse_part_name(path.name)
        merged = _merged_into(path)
        if merged is None or found is None or None in lows or None in highs:
            raise RecordingFormatError(
                path,
                "vanished after the replay opened the recording, and no part that replaced "
                "it was found: open the replay again",
            ) from gone
        low, high = min(lows), max(highs)  # type: ignore[type-var]
        columns = self._read_columns(streaming=False)
        wanted = None if columns is None else [*columns, "received_ns"]
        try:
            handle = pq.ParquetFile(merged)
            meta = handle.metadata
            version = schema_version_of(meta.metadata or {})
            names = [meta.schema.column(i).path for i in range(meta.num_columns)]
            where = names.index("seq")
            indexes = []
            for index in range(meta.num_row_groups):
                bounds = _stat(meta.row_group(index).column(where))
                if bounds is None or (int(bounds[0]) <= high and int(bounds[1]) >= low):  # type: ignore[call-overload]
                    indexes.append(index)
            table = handle.read_row_groups(
                indexes, columns=None if wanted is None else list(dict.fromkeys(wanted))
            )
        except FileNotFoundError as exc:
            raise RecordingFormatError(
                merged, "vanished too (another compaction): open the replay again"
            ) from exc
        except (OSError, pa.ArrowInvalid, UnknownSchemaVersion, ValueError) as exc:
            raise RecordingFormatError(
                merged, f"replaced {path.name} but cannot be read ({exc}); move it aside"
            ) from exc
        if version not in UPGRADES:
            raise UnsupportedSchemaVersion(
                merged, f"schema version {version} has no reader in replay: install a newer tape"
            )
        self._version = version
        seq, received = table["seq"], table["received_ns"]
        mine = pc.and_(
            pc.and_(pc.greater_equal(seq, low), pc.less_equal(seq, high)),
            pc.and_(
                pc.greater_equal(received, found.first_ns), pc.less_equal(received, found.last_ns)
            ),
        )
        table = table.filter(mine)
        return table if columns is None else table.select(columns)

    def next_chunk(self) -> Chunk | None:
        """Return the next non-empty chunk of selected rows, or ``None`` when done.

        Raises:
            RecordingFormatError: the file is unreadable, or its rows are not in ``seq``
                order within the session although its statistics promised so.
        """
        if self._batches is None:
            self._batches = self._open()
        for raw in self._batches:
            batch = self._filter(UPGRADES[self._version](self.part.dataset, raw))
            if batch.num_rows == 0:
                continue
            seq = batch.column("seq").to_numpy()
            ahead = np.empty(len(seq), dtype=bool)
            ahead[0] = seq[0] > self._last_seq
            np.greater(seq[1:], seq[:-1], out=ahead[1:])
            if not ahead.all():
                # A row stored twice in one file (parts holding the same rows, compacted
                # together) is read once, as it is from two files; a seq going back is an
                # error.
                if seq[0] < self._last_seq or bool(np.any(seq[1:] < seq[:-1])):
                    raise RecordingFormatError(
                        self.part.path,
                        f"rows of session {self.session} are not in seq order (the recorder "
                        "writes them in delivery order): rewrite the file sorted by "
                        "(session_id, seq)",
                    )
                batch = batch.filter(pa.array(ahead))
                seq = seq[ahead]
                if len(seq) == 0:
                    continue
            chunk = Chunk(
                self.part.dataset, self.part.symbol, self.session, batch, clock=self.clock
            )
            self._last_seq = int(seq[-1])
            return chunk
        return None

    def _filter(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        selection = self._selection
        mask: pa.Array | None = None
        if selection.start_ns is not None or selection.end_ns is not None:
            received = batch.column("received_ns")
            if selection.start_ns is not None:
                mask = pc.greater_equal(received, selection.start_ns)
            if selection.end_ns is not None:
                upper = pc.less(received, selection.end_ns)
                mask = upper if mask is None else pc.and_(mask, upper)
        if self.part.dataset == "events" and selection.symbols:
            wanted = _events_mask(batch.column("symbols"), selection.symbols)
            mask = wanted if mask is None else pc.and_(mask, wanted)
        if mask is None:
            return batch
        return batch.filter(mask)

    def close(self) -> None:
        """Release the file (idempotent)."""
        if self._batches is not None and hasattr(self._batches, "close"):
            self._batches.close()
            _release_arrow_memory()
        self._batches = iter(())


class _Replaced(Exception):
    """The file under a part's name is not the one discovery read (a compaction)."""


def _merged_into(path: Path) -> Path | None:
    # The part of ``path``'s partition whose receive-time range covers ``path``'s.
    gone = parse_part_name(path.name)
    if gone is None or not path.parent.is_dir():
        return None
    for entry in sorted(path.parent.iterdir()):
        name = parse_part_name(entry.name)
        if name is not None and name.first_ns <= gone.first_ns and name.last_ns >= gone.last_ns:
            return entry  # (``path`` itself when the merged part took its name)
    return None


def _ascending(handle: pq.ParquetFile, indexes: list[int]) -> bool:
    # Whether a single session's rows are stored in strictly ascending seq (read in
    # batches: memory stays flat whatever the size of the row groups).
    last = -1
    for batch in handle.iter_batches(
        batch_size=batch_rows("", keys_only=True), row_groups=indexes, columns=["seq"]
    ):
        seq = batch.column(0).to_numpy()
        if len(seq) and (seq[0] <= last or not bool(np.all(seq[1:] > seq[:-1]))):
            return False
        last = int(seq[-1]) if len(seq) else last
    return True


def _events_mask(symbols: pa.Array, wanted: frozenset[str]) -> pa.Array:
    # An event is selected when it names no symbol or at least one selected symbol.
    lengths = pc.list_value_length(symbols)
    hits = pc.is_in(pc.list_flatten(symbols), value_set=pa.array(sorted(wanted), pa.string()))
    parents = pc.list_parent_indices(symbols)
    hit_rows = np.zeros(len(symbols), dtype=bool)
    hit_rows[parents.to_numpy()[hits.to_numpy(zero_copy_only=False)]] = True
    return pc.or_(pc.equal(lengths, 0), pa.array(hit_rows))


@dataclass(frozen=True, slots=True)
class _Read:
    # How the cursors of one Parts table read their files.
    parts: Parts
    selection: Selection
    columns: tuple[str, ...] | None
    batch_size: int | None
    sharing: int
    clock: bool = True


_ENTRY_FIELDS: Final = 7  # read, part, session, bound seq, bound ns, lowest and highest receive


class Unopened:
    """Cursors a merge has not opened yet, one per (file, session), packed in arrays.

    :meth:`add` takes a dataset's :class:`Parts` and how to read them; :meth:`of_session`
    gives one session's cursors in the order a merge opens them. A :class:`Cursor` object
    exists only from when the merge opens it, so what a plan of many parts holds is about 60
    bytes a cursor.
    """

    def __init__(self) -> None:
        self._reads: list[_Read] = []
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._entries = array("q")

    def add(
        self,
        parts: Parts,
        selection: Selection,
        columns: Sequence[str] | None = None,
        batch_size: int | None = None,
        *,
        sessions: Collection[str] | None = None,
    ) -> None:
        """Add a cursor per (file, session) of ``parts`` (of ``sessions`` only, if given).

        ``columns`` projects what is read (``None``: every column); the key columns are
        always read. ``batch_size`` (batch access) overrides :func:`batch_rows`, which is
        divided among the symbols of ``parts`` beyond four (see :data:`_SIZED_FOR_SYMBOLS`).
        Files without usable statistics have their key columns read here to find their
        sessions.

        Raises:
            RecordingFormatError: a file cannot be read.
        """
        sharing = max(1, -(-parts.symbol_count // _SIZED_FOR_SYMBOLS))
        read = len(self._reads)
        chosen = tuple(columns) if columns is not None else None
        self._reads.append(_Read(parts, selection, chosen, batch_size, sharing))
        for number in range(len(parts)):
            for session, bound_seq, bound_ns, low, high in _cursor_bounds(parts, number):
                if sessions is not None and session not in sessions:
                    continue
                name = self._number(session)
                self._entries.extend((read, number, name, bound_seq, bound_ns, low, high))

    def extend(self, other: Unopened) -> None:
        """Add the cursors of ``other`` (after this one's)."""
        table = other._table().copy()
        table[:, 0] += len(self._reads)
        numbers = np.array([self._number(name) for name in other._names], dtype=np.int64)
        if len(table):
            table[:, 2] = numbers[table[:, 2]]
        self._reads.extend(other._reads)
        self._entries.frombytes(table.tobytes())

    def _number(self, session: str) -> int:
        number = self._index.setdefault(session, len(self._names))
        if number == len(self._names):
            self._names.append(session)
        return number

    def _table(self) -> I64:
        return np.frombuffer(self._entries, dtype=np.int64).reshape(-1, _ENTRY_FIELDS)

    def sessions(self) -> list[str]:
        """Return the sessions that have cursors, sorted."""
        return sorted(self._names)

    def ranges(self) -> dict[str, tuple[int, int]]:
        """Return each session's lowest and highest receive time, as statistics tell them
        (the highest is ``2**63 - 1`` where they do not)."""
        table = self._table()
        out = {}
        for number, name in enumerate(self._names):
            mine = table[table[:, 2] == number]
            out[name] = (int(mine[:, 5].min()), int(mine[:, 6].max()))
        return out

    def without_clock(self) -> None:
        """Read no receive times (the merge needs the ``seq`` order only)."""
        self._reads = [dataclasses.replace(read, clock=False) for read in self._reads]

    def of_session(self, session: str) -> SessionCursors:
        """Return the cursors of ``session`` in the order a merge opens them: by ``bound_seq``,
        then in the order they were added."""
        table = self._table()
        rows = np.flatnonzero(table[:, 2] == self._index[session])
        rows = rows[np.argsort(table[rows, 3], kind="stable")]
        return SessionCursors(self, session, rows, table[rows, 3], int(table[rows, 4].min()))

    def _open(self, row: int, session: str) -> Cursor:
        read_no, number, _, bound_seq, bound_ns, _, _ = self._table()[row].tolist()
        read = self._reads[read_no]
        part = read.parts[number]
        known = _known_sessions(part.row_groups)
        groups = [g for g in part.row_groups if g.session == session] if known else part.row_groups
        cursor = Cursor(
            part,
            session,
            groups,
            bound_seq=bound_seq,
            bound_ns=bound_ns,
            streaming=known and _ascending_groups(groups),
            selection=read.selection,
            columns=read.columns,
            batch_size=read.batch_size,
        )
        cursor.sharing = read.sharing
        cursor.clock = read.clock
        return cursor


class SessionCursors:
    """One session's unopened cursors, in the order a merge opens them (:meth:`pop`)."""

    __slots__ = ("_bounds", "_next", "_owner", "_rows", "bound_ns", "session")

    def __init__(
        self, owner: Unopened, session: str, rows: I64, bounds: I64, bound_ns: int
    ) -> None:
        self._owner = owner
        self.session = session
        self._rows = rows
        self._bounds = bounds
        self._next = 0
        self.bound_ns = bound_ns
        """The lowest receive time of the session's rows (a lower bound, from statistics)."""

    def __len__(self) -> int:
        return len(self._rows) - self._next

    def next_bound(self) -> int | None:
        """Return the ``bound_seq`` of the cursor :meth:`pop` opens next (``None``: none)."""
        return int(self._bounds[self._next]) if self._next < len(self._rows) else None

    def pop(self) -> Cursor:
        """Return the next cursor, unread."""
        row = int(self._rows[self._next])
        self._next += 1
        return self._owner._open(row, self.session)


def _known_sessions(groups: Sequence[RowGroupInfo]) -> bool:
    # Whether the statistics name each row group's session, seq and receive ranges.
    return all(
        g.session is not None and g.seq_min is not None and g.recv_min is not None for g in groups
    )


def _ascending_groups(groups: Sequence[RowGroupInfo]) -> bool:
    # Whether one session's row groups follow each other in seq (streamed one after another).
    return all(
        a.seq_max is not None and b.seq_min is not None and a.seq_max < b.seq_min
        for a, b in itertools.pairwise(groups)
    )


def _cursor_bounds(parts: Parts, number: int) -> list[tuple[str, int, int, int, int]]:
    # Per session of part ``number``: its lowest seq and receive time, and the receive range
    # of the row groups its cursor reads (the highest 2**63 - 1 where statistics do not say).
    groups = parts.row_groups(number)
    if _known_sessions(groups):
        by_session: dict[str, list[RowGroupInfo]] = {}
        for group in groups:
            by_session.setdefault(group.session, []).append(group)  # type: ignore[arg-type]
        out = []
        for session, mine in sorted(by_session.items()):
            low = min(int(g.recv_min or 0) for g in mine)
            high = max(_HIGHEST if g.recv_max is None else g.recv_max for g in mine)
            out.append((session, min(int(g.seq_min or 0) for g in mine), low, low, high))
        return out
    # Statistics do not tell the sessions apart: read the keys to find them.
    part = parts[number]
    try:
        keys = pq.ParquetFile(part.path).read_row_groups(
            [g.index for g in groups], columns=list(_KEY_COLUMNS)
        )
    except FileNotFoundError as exc:
        raise RecordingFormatError(
            part.path,
            "vanished after the replay found it (a compaction merged it): open the replay again",
        ) from exc
    except (OSError, pa.ArrowInvalid) as exc:
        raise RecordingFormatError(part.path, f"cannot be read ({exc}); move it aside") from exc
    out = []
    high = max(_HIGHEST if g.recv_max is None else g.recv_max for g in groups)
    sessions = sorted(str(s) for s in pc.unique(keys["session_id"]).to_pylist())
    for session in sessions:
        mine = keys.filter(pc.equal(keys["session_id"], session))
        seq = int(pc.min(mine["seq"]).as_py())
        recv = int(pc.min(mine["received_ns"]).as_py())
        low = min(recv if g.recv_min is None else g.recv_min for g in groups)
        out.append((session, seq, recv, low, high))
    return out
