"""The on-disk contract, part two: where every file of a recording lives.

A recording root (``tape record --out``, default ``data/``) holds::

    <root>/tape.json                      manifest: schema version of the layout
    <root>/<dataset>/date=YYYY-MM-DD/symbol=<SYMBOL>/part-<first_ns>-<last_ns>.parquet
    <root>/<dataset>/date=YYYY-MM-DD/part-<first_ns>-<last_ns>.parquet     (events, raw)
    <root>/_sessions/<session_id>.json    one manifest per recording session
    <root>/_journal/                      the append-only journal of what is not yet Parquet
    <root>/_tmp/                          files being written (renamed into place when complete)
    <root>/.lock                          held by the one recorder writing this root

Which clock decides ``date=``: the local receive clock. A row's partition date is the UTC date
of its ``received_ns``, and every row of a file falls on its partition's date (writers rotate at
00:00 UTC). Receive times are what the recorder controls and they grow with delivery order, so
a late REST repair of an old trade lands beside the records delivered with it. ``first_ns`` and
``last_ns`` in a file name are the smallest and largest ``received_ns`` of its rows; the name is
therefore a pure function of the rows.

Directories and files whose names start with ``_`` or ``.`` are not data: DuckDB, polars and
pyarrow globs over ``<dataset>/**/*.parquet`` never see them.

Every function here is pure: it computes paths, it never touches the disk.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Final, NamedTuple

from recorder.schema import DATASETS, DATE_ONLY_DATASETS, SCHEMA_VERSION

__all__ = [
    "JOURNAL_DIR",
    "LAYOUT_VERSION",
    "LOCK_FILE",
    "MANIFEST_FILE",
    "SESSIONS_DIR",
    "TMP_DIR",
    "PartName",
    "dataset_glob",
    "date_of_ns",
    "parse_part_name",
    "part_file_name",
    "partition_dir",
    "partition_path",
    "session_manifest_path",
]

LAYOUT_VERSION: Final = SCHEMA_VERSION
"""The layout is versioned with the schema: one number names the whole on-disk contract."""

MANIFEST_FILE: Final = "tape.json"
SESSIONS_DIR: Final = "_sessions"
JOURNAL_DIR: Final = "_journal"
TMP_DIR: Final = "_tmp"
LOCK_FILE: Final = ".lock"

_PART = re.compile(r"^part-(\d+)-(\d+)\.parquet$")
_SYMBOL = re.compile(r"^[A-Z0-9]+-[A-Z0-9]+$")


def date_of_ns(received_ns: int) -> date:
    """Return the partition date (UTC) of a row received at ``received_ns``."""
    return datetime.fromtimestamp(received_ns // 1_000_000_000, tz=UTC).date()


def partition_dir(root: Path, dataset: str, day: date, symbol: str | None) -> Path:
    """Return the directory of one partition.

    Raises:
        ValueError: the dataset is unknown, or a symbol is missing where the dataset is
            partitioned by symbol (or given where it is not), or the symbol is not an
            upper-case ``QUOTE-BASE`` code.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
    path = root / dataset / f"date={day.isoformat()}"
    if dataset in DATE_ONLY_DATASETS:
        if symbol is not None:
            raise ValueError(f"dataset {dataset!r} is partitioned by date only, not by symbol")
        return path
    if symbol is None or not _SYMBOL.match(symbol):
        raise ValueError(
            f"dataset {dataset!r} needs an upper-case QUOTE-BASE symbol such as KRW-BTC, "
            f"got {symbol!r}"
        )
    return path / f"symbol={symbol}"


def partition_path(
    root: Path, dataset: str, symbol: str | None, first_ns: int, last_ns: int
) -> Path:
    """Return the final path of a Parquet file whose rows were received in
    ``[first_ns, last_ns]``.

    Raises:
        ValueError: as :func:`partition_dir`, or when the interval is reversed or crosses
            00:00 UTC (a file holds one date: split the rows first).
    """
    if last_ns < first_ns:
        raise ValueError(f"last_ns {last_ns} is before first_ns {first_ns}")
    day = date_of_ns(first_ns)
    if date_of_ns(last_ns) != day:
        raise ValueError(
            f"rows received on {day} and {date_of_ns(last_ns)} cannot share a file: "
            "split them at 00:00 UTC"
        )
    return partition_dir(root, dataset, day, symbol) / part_file_name(first_ns, last_ns)


def part_file_name(first_ns: int, last_ns: int) -> str:
    """Return the name of a part file whose rows were received in ``[first_ns, last_ns]``."""
    return f"part-{first_ns}-{last_ns}.parquet"


class PartName(NamedTuple):
    """The receive-time interval encoded in a part file's name."""

    first_ns: int
    last_ns: int


def parse_part_name(name: str) -> PartName | None:
    """Return the interval in a part file's name, or ``None`` if it is not a part file."""
    match = _PART.match(name)
    if match is None:
        return None
    return PartName(int(match.group(1)), int(match.group(2)))


def dataset_glob(root: Path, dataset: str) -> str:
    """Return the glob that reads every file of ``dataset`` (for DuckDB or polars)."""
    return str(root / dataset / "**" / "*.parquet")


def session_manifest_path(root: Path, session_id: str) -> Path:
    """Return the path of one session's manifest."""
    return root / SESSIONS_DIR / f"{session_id}.json"
