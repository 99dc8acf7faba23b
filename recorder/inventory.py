"""What a recording holds: partitions with their row counts, and the gaps still open.

Everything here reads Parquet footers and the ``events`` dataset; nothing is written, so it
can run beside a live recorder (it then sees the parts published so far).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from recorder.layout import parse_part_name
from recorder.parts import read_listed, read_part
from recorder.schema import DATASETS

__all__ = ["DatasetSummary", "Gap", "PartitionInfo", "open_gaps", "partitions", "summarize"]


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition: its files, rows, bytes and receive-time range."""

    dataset: str
    day: str
    symbol: str | None
    files: int
    rows: int
    size_bytes: int
    first_ns: int
    last_ns: int


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """One dataset across its partitions."""

    dataset: str
    days: tuple[str, ...]
    symbols: tuple[str, ...]
    files: int
    rows: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class Gap:
    """An interval the recording does not cover: an unrepaired gap, dropped records, or a
    detected gap that no later event closed."""

    kind: str
    channel: str | None
    symbols: tuple[str, ...]
    start_ns: int | None
    end_ns: int | None
    cause: str
    rows_missing: int | None
    detail: str
    exchange_start: datetime | None = None
    """For a trade gap: the exchange time from which trades may be missing."""


def partitions(root: Path | str) -> list[PartitionInfo]:
    """Return every partition under ``root``, by dataset, date and symbol."""
    return read_listed(functools.partial(_partitions, Path(root)))


def _partitions(root: Path) -> list[PartitionInfo]:
    out: list[PartitionInfo] = []
    for dataset in DATASETS:
        base = root / dataset
        if not base.is_dir():
            continue
        groups: dict[Path, list[Path]] = {}
        for path in base.rglob("part-*.parquet"):
            if parse_part_name(path.name) is not None:
                groups.setdefault(path.parent, []).append(path)
        for directory, files in sorted(groups.items()):
            names = [parse_part_name(f.name) for f in files]
            symbol = None
            day_dir = directory
            if directory.name.startswith("symbol="):
                symbol = directory.name.partition("=")[2]
                day_dir = directory.parent
            out.append(
                PartitionInfo(
                    dataset=dataset,
                    day=day_dir.name.partition("=")[2],
                    symbol=symbol,
                    files=len(files),
                    rows=sum(pq.read_metadata(f).num_rows for f in files),
                    size_bytes=sum(f.stat().st_size for f in files),
                    first_ns=min(n.first_ns for n in names if n),
                    last_ns=max(n.last_ns for n in names if n),
                )
            )
    return out


def summarize(infos: Iterable[PartitionInfo]) -> list[DatasetSummary]:
    """Return one summary per dataset of ``infos``, in the contract's dataset order."""
    by: dict[str, list[PartitionInfo]] = {}
    for info in infos:
        by.setdefault(info.dataset, []).append(info)
    return [
        DatasetSummary(
            dataset=dataset,
            days=tuple(sorted({i.day for i in items})),
            symbols=tuple(sorted({i.symbol for i in items if i.symbol})),
            files=sum(i.files for i in items),
            rows=sum(i.rows for i in items),
            size_bytes=sum(i.size_bytes for i in items),
        )
        for dataset in DATASETS
        if (items := by.get(dataset))
    ]


_HOLES = frozenset({"gap_unrepaired", "records_dropped"})
_CLOSERS = frozenset({"gap_repaired", "gap_unrepaired"})


def open_gaps(root: Path | str) -> list[Gap]:
    """Return the gaps the ``events`` dataset leaves open, oldest first.

    Open: every ``gap_unrepaired`` and ``records_dropped`` event, and every
    ``gap_detected`` that no later ``gap_repaired``/``gap_unrepaired`` event of the same
    channel and an overlapping symbol set closes (one whose interval ends before the
    detection, such as a restart's backfill, closes only the gaps detected before it ended).
    """
    base = Path(root) / "events"

    def read() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        if base.is_dir():
            for path in base.rglob("part-*.parquet"):
                found += read_part(path).to_pylist()
        return found

    rows = read_listed(read)
    rows.sort(key=lambda r: (r["received_ns"], r["session_id"], r["seq"]))
    gaps: list[tuple[dict[str, Any], bool]] = []  # (event, open)
    for row in rows:
        kind = str(row["kind"])
        if kind in _CLOSERS:
            for index, (detected, still_open) in enumerate(gaps):
                if still_open and detected["kind"] == "gap_detected" and _same(detected, row):
                    gaps[index] = (detected, False)
        if kind in _HOLES or kind == "gap_detected":
            gaps.append((row, True))
    return [_gap(row) for row, still_open in gaps if still_open]


def _same(detected: dict[str, Any], closer: dict[str, Any]) -> bool:
    if detected["channel"] != closer["channel"]:
        return False
    if closer["end_ns"] is not None and detected["received_ns"] > closer["end_ns"]:
        return False  # detected after the interval the closer covers (a backfill's, say)
    a, b = set(detected["symbols"] or ()), set(closer["symbols"] or ())
    return not a or not b or bool(a & b)


def _gap(row: dict[str, Any]) -> Gap:
    return Gap(
        kind=str(row["kind"]),
        channel=row["channel"],
        symbols=tuple(row["symbols"] or ()),
        start_ns=row["start_ns"],
        end_ns=row["end_ns"],
        cause=str(row["cause"]),
        rows_missing=row["rows_missing"],
        detail=str(row["detail"]),
        exchange_start=row.get("exchange_start"),
    )
