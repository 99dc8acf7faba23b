"""Compaction: a partition's many small parts become one, without changing a single row.

The rows of a partition's parts are concatenated in the parts' receive-time order (each
part's rows keep their order) and streamed, one row group at a time, into row groups of
:func:`~recorder.parts.row_group_rows` rows (memory stays that of one row group, whatever
the partition's size; the merged file declares its ``(session_id, seq)`` order when the
parts follow each other in it, which they do unless sessions overlap). The result is written
under ``_tmp/``, fsynced, and linked into place as
``part-<first_ns>-<last_ns>.parquet`` (never over an existing file); then the old parts are
deleted. An *intent* file written before the link lists the output and the inputs, so a
crash between the link and the deletions is finished on the next compaction or recorder
start: the merged part is kept and the inputs it replaced are removed. A reader listing the
partition in the instant between the link and the deletions may see both.

Compaction may run while a recorder writes the same root: the recorder only adds new parts,
which compaction leaves alone, and the recorder's recovery skips rows a merged part already
holds. Two compactions of one root exclude each other (``_tmp/.compact.lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from recorder.errors import RecorderError, RecordingFormatError
from recorder.files import (
    atomic_write_bytes,
    clean_tmp,
    fsync_dir,
    make_dirs,
    publish_file,
    storage_errors,
)
from recorder.files import tmp_path as new_tmp_path
from recorder.layout import TMP_DIR, PartName, parse_part_name, partition_path
from recorder.parts import key_sorted, row_group_rows, write_options
from recorder.schema import DATASETS, schema_for, schema_version_of

__all__ = [
    "FREE_MARGIN_BYTES",
    "CompactionBusy",
    "PartitionCompaction",
    "compact",
    "recorded_days",
    "tidy",
]

_log = logging.getLogger(__name__)
_INTENT = "compact-intent.json"
FREE_MARGIN_BYTES = 1 << 30
"""Disk space a compaction leaves free beyond the merged copy it writes (1 GiB), so the
recorder's journal is not starved by a merge."""
_LOCK = ".compact.lock"


class CompactionBusy(RecorderError):
    """Another compaction of the same root is running: wait for it to finish."""


@dataclass(frozen=True, slots=True)
class PartitionCompaction:
    """One partition compacted: its directory, the parts merged and the part that replaced
    them (``None`` when it was left alone), and the rows it holds (``None`` when it had one
    part: not read)."""

    directory: Path
    inputs: tuple[Path, ...]
    output: Path | None
    rows: int | None


@contextlib.contextmanager
def _compaction_lock(root: Path) -> Iterator[None]:
    directory = root / TMP_DIR
    with storage_errors("locking compaction in", directory):
        if not directory.is_dir():
            make_dirs(directory)
        fd = os.open(directory / _LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CompactionBusy(
                f"another compaction of {root} is running: wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)


def tidy(root: Path) -> int | None:
    """Finish a compaction a crash interrupted and delete the debris crashes left in
    ``_tmp/``; return how many files went, or ``None`` when a compaction is running (it
    then owns ``_tmp/``, and nothing is touched).

    Call it while holding the root's directory lock (no recorder writes ``_tmp/`` then).
    """
    try:
        with _compaction_lock(root):
            _finish(root, root / TMP_DIR / _INTENT)
            return clean_tmp(root)
    except CompactionBusy:
        return None


def _finish(root: Path, intent_path: Path, *, interrupted: bool = True) -> bool:
    if not intent_path.exists():
        return False
    try:
        intent = json.loads(intent_path.read_text(encoding="utf-8"))
        output = root / intent["output"]
        inputs = [root / name for name in intent["inputs"]]
        rows = int(intent["rows"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordingFormatError(f"{intent_path} is unreadable ({exc}): remove it") from exc
    with storage_errors("finishing the compaction of", output.parent):
        # The merged part is in place only if the output holds every merged row (the output
        # may also be the untouched input whose name it was to take).
        if output.exists() and pq.read_metadata(output).num_rows == rows:
            for path in inputs:
                if path != output:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            fsync_dir(output.parent)
            if interrupted:
                _log.warning("finished an interrupted compaction of %s", output.parent)
        intent_path.unlink()
    return True


def _partitions(root: Path, datasets: tuple[str, ...], dates: tuple[str, ...]) -> Iterator[Path]:
    # The partition directories of ``datasets`` on ``dates`` (all when empty): only the
    # date directories asked for are listed, not the parts of every day.
    for dataset in datasets:
        base = root / dataset
        if not base.is_dir():
            continue
        for directory in sorted(base.glob("date=*")):
            if not directory.is_dir() or (dates and _value(directory) not in dates):
                continue
            children = [c for c in directory.iterdir() if c.is_dir()]
            if children:
                yield from sorted(c for c in children if c.name.startswith("symbol="))
            else:
                yield directory


def recorded_days(root: Path | str, *, before: date) -> tuple[str, ...]:
    """Return the dates (``YYYY-MM-DD``) before ``before`` that have a partition under
    ``root``, in any dataset, sorted."""
    found: set[str] = set()
    for dataset in DATASETS:
        base = Path(root) / dataset
        if base.is_dir():
            for entry in base.iterdir():
                day = entry.name.removeprefix("date=")
                if day != entry.name and day < before.isoformat() and entry.is_dir():
                    found.add(day)
    return tuple(sorted(found))


def compact(
    root: Path | str,
    *,
    datasets: tuple[str, ...] = DATASETS,
    dates: tuple[str, ...] = (),
    symbols: tuple[str, ...] = (),
    compression: str = "zstd",
    should_stop: Callable[[], bool] | None = None,
    on_error: Callable[[Path, Exception], None] | None = None,
) -> list[PartitionCompaction]:
    """Merge every partition's parts into one, partition by partition; return what was done.

    ``dates`` (``YYYY-MM-DD``) and ``symbols`` restrict the partitions; empty means all.
    A partition with a single part is left alone (its footer is not read), and so is one
    whose merged copy would not fit on the disk with :data:`FREE_MARGIN_BYTES` to spare (a
    warning says so). ``should_stop`` is asked between partitions and between the row groups
    a partition's merge reads: once it says yes, the partition being merged is left as it
    was and the partitions done are returned. With ``on_error``, a partition that cannot be
    compacted (an unreadable part, a refused write) is handed to it with the error and the
    other partitions go on; without it, the error is raised.

    Raises:
        CompactionBusy: another compaction of ``root`` runs.
        StorageError: the disk refused a write; every partition stays complete (compacted or
            not).
        RecordingFormatError: a part is not a tape file of a version this tape reads.
    """
    root = Path(root)
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown:
        raise ValueError(f"unknown datasets {unknown}: choose from {', '.join(DATASETS)}")
    done: list[PartitionCompaction] = []
    with _compaction_lock(root):
        intent_path = root / TMP_DIR / _INTENT
        _finish(root, intent_path)
        for directory in _partitions(root, datasets, dates):
            if should_stop is not None and should_stop():
                break
            symbol = _value(directory) if directory.name.startswith("symbol=") else None
            if symbols and symbol is not None and symbol not in symbols:
                continue
            try:
                done.append(
                    _compact_partition(root, directory, intent_path, compression, should_stop)
                )
            except _Stopped:
                break
            except (RecorderError, OSError, pa.ArrowException) as exc:
                if on_error is None:
                    raise
                on_error(directory, exc)
                # A merge that failed after its link left its intent: finish it now (the
                # next partition's intent would overwrite it), or stop here if it cannot be.
                _finish(root, intent_path)
    return done


def _value(directory: Path) -> str:
    return directory.name.partition("=")[2]


class _Stopped(Exception):
    """A compaction asked to stop gave up the partition it was merging."""


def _compact_partition(
    root: Path,
    directory: Path,
    intent_path: Path,
    compression: str,
    should_stop: Callable[[], bool] | None = None,
) -> PartitionCompaction:
    named: list[tuple[PartName, Path]] = []
    for entry in directory.iterdir():
        name = parse_part_name(entry.name)
        if name is not None and entry.is_file():
            named.append((name, entry))
    named.sort(key=lambda item: (item[0].first_ns, item[0].last_ns, item[1].name))
    inputs = tuple(path for _, path in named)
    if len(inputs) < 2:
        return PartitionCompaction(directory, inputs, None, None)
    needed = sum(path.stat().st_size for path in inputs) + FREE_MARGIN_BYTES
    free = shutil.disk_usage(root).free
    if free < needed:
        _log.warning(
            "%s left as it is: merging its %d parts needs %d MB free, the disk has %d MB",
            directory,
            len(inputs),
            needed >> 20,
            free >> 20,
        )
        return PartitionCompaction(directory, inputs, None, None)
    dataset = directory.relative_to(root).parts[0]
    versions: list[int] = []
    rows = 0
    for path in inputs:
        metadata = pq.read_metadata(path)
        try:
            versions.append(schema_version_of(metadata.metadata))
        except ValueError as exc:
            raise RecordingFormatError(f"{path}: {exc}") from exc
        rows += metadata.num_rows
    first_ns = named[0][0].first_ns
    last_ns = max(name.last_ns for name, _ in named)
    symbol = _value(directory) if directory.name.startswith("symbol=") else None
    output = partition_path(root, dataset, symbol, first_ns, last_ns)
    with storage_errors("compacting", directory):
        tmp = new_tmp_path(root, ".parquet.tmp")
        try:
            _merge_parts(
                tmp, dataset, list(zip(inputs, versions, strict=True)), compression, should_stop
            )
            if pq.read_metadata(tmp).num_rows != rows:
                raise RecordingFormatError(f"the merged part of {directory} lost rows: aborted")
            intent = {
                "output": str(output.relative_to(root)),
                "inputs": [str(p.relative_to(root)) for p in inputs],
                "rows": rows,
            }
            atomic_write_bytes(root, intent_path, json.dumps(intent).encode())
            if output in inputs:
                # The merged part takes the name of the input spanning the whole range.
                publish_file(tmp, output, replace=True)
            elif not publish_file(tmp, output, replace=False):
                intent_path.unlink()
                _log.warning("%s appeared meanwhile: %s left as it was", output, directory)
                return PartitionCompaction(directory, inputs, None, rows)
            _finish(root, intent_path, interrupted=False)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    return PartitionCompaction(directory, inputs, output, rows)


def _row_groups(
    inputs: list[tuple[Path, int]], columns: list[str] | None
) -> Iterator[tuple[int, pa.Table]]:
    # Every row group of the inputs in order with its file's schema version, one at a time
    # (memory: one row group).
    for path, version in inputs:
        handle = pq.ParquetFile(path)
        try:
            for index in range(handle.num_row_groups):
                yield version, handle.read_row_group(index, columns=columns)
        finally:
            handle.close()


def _in_key_order(inputs: list[tuple[Path, int]], should_stop: Callable[[], bool] | None) -> bool:
    # Whether the inputs' rows, concatenated in order, are in (session_id, seq) order.
    previous: tuple[str, int] | None = None
    for _version, keys in _row_groups(inputs, ["session_id", "seq"]):
        if should_stop is not None and should_stop():
            raise _Stopped
        if keys.num_rows == 0:
            continue
        if not key_sorted(keys):
            return False
        first = (keys["session_id"][0].as_py(), keys["seq"][0].as_py())
        if previous is not None and first < previous:
            return False
        previous = (keys["session_id"][-1].as_py(), keys["seq"][-1].as_py())
    return True


def _merge_parts(
    tmp: Path,
    dataset: str,
    inputs: list[tuple[Path, int]],
    compression: str,
    should_stop: Callable[[], bool] | None,
) -> None:
    # Stream the inputs' rows into full row groups of the merged file, one row group at a
    # time; declare the key order when the concatenation keeps it. Asked to stop, it gives
    # up the merged file (raises _Stopped) between row groups.
    schema = schema_for(dataset)
    options = write_options(schema, compression, key_sorted=_in_key_order(inputs, should_stop))
    with open(tmp, "wb") as handle:
        with pq.ParquetWriter(handle, schema, **options) as writer:
            pending: list[pa.Table] = []
            held = 0
            cap = row_group_rows(schema)
            for version, group in _row_groups(inputs, None):
                if should_stop is not None and should_stop():
                    raise _Stopped
                pending.append(group.cast(schema_for(dataset, version)).cast(schema))
                held += group.num_rows
                while held >= cap:
                    rows = pa.concat_tables(pending)
                    writer.write_table(rows.slice(0, cap), cap)
                    pending, held = [rows.slice(cap)], held - cap
            if held:
                writer.write_table(pa.concat_tables(pending), cap)
        handle.flush()
        os.fsync(handle.fileno())
