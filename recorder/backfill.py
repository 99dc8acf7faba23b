"""What the recording already holds, for the backfill after the recorder's own downtime.

Pure reads of the ``trade`` dataset and the session manifests; nothing here talks to the
network. The :class:`~recorder.capture.Recorder` asks the backbone for the trades after
:func:`recorded_tail` (or from the start of a gap :func:`open_trade_gap_starts` finds) and
skips those :func:`recorded_trade_ids` already holds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from recorder.inventory import open_gaps
from recorder.layout import parse_part_name
from recorder.manifest import read_sessions
from recorder.parts import read_listed, read_part

__all__ = [
    "LastTrade",
    "RecordedTail",
    "earliest_reachable",
    "open_trade_gap_starts",
    "previous_session_end_ns",
    "recorded_tail",
    "recorded_trade_ids",
]

_DAYS_SCANNED = 2  # late repairs can land in a newer date than the newest trade
# A trade is received after it is made, give or take the exchange's clock error: a part whose
# newest receive time (in its name) is this much before a moment holds no trade made after it.
_CLOCK_MARGIN = timedelta(minutes=10)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COLUMNS = ["trade_timestamp", "sequential_id"]


@dataclass(frozen=True, slots=True)
class LastTrade:
    """The newest recorded trade of a symbol (by exchange time, then id)."""

    symbol: str
    trade_timestamp: datetime
    sequential_id: int


def _symbol_days(root: Path, symbol: str) -> list[Path]:
    # The symbol's partition directories in the trade dataset, newest date first.
    base = root / "trade"
    if not base.is_dir():
        return []
    found = [d / f"symbol={symbol}" for d in base.glob("date=*")]
    return sorted((d for d in found if d.is_dir()), key=lambda d: d.parent.name, reverse=True)


def _ns(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def _parts(directories: list[Path]) -> list[tuple[int, Path]]:
    # The part files of ``directories`` with their newest receive time, newest first.
    found = [
        (name.last_ns, part)
        for directory in directories
        for part in directory.iterdir()
        if (name := parse_part_name(part.name)) is not None
    ]
    return sorted(found, reverse=True)


@dataclass(frozen=True, slots=True)
class RecordedTail:
    """A symbol's newest recorded trade, and the ids of its trades recorded at or after
    ``since`` (exchange time)."""

    last: LastTrade
    since: datetime
    ids: frozenset[int]


def _ids_since(table: pa.Table, since: datetime) -> frozenset[int]:
    recent = table.filter(pc.greater_equal(table["trade_timestamp"], pa.scalar(since)))
    return frozenset(recent["sequential_id"].to_pylist())


def recorded_tail(root: Path, symbols: list[str], window: timedelta) -> dict[str, RecordedTail]:
    """Return, for each of ``symbols`` that has any recorded trade, its newest one and the
    ids of those recorded at most ``window`` (exchange time) before it.

    Reads parts newest first and stops at the first one too old to hold any of them, so a
    restart reads a few files per symbol, not days of them."""
    tails: dict[str, RecordedTail] = {}
    for symbol in symbols:
        table = read_listed(functools.partial(_newest_parts, root, symbol, window))
        if table is None:
            continue
        order = pc.sort_indices(
            table, [("trade_timestamp", "descending"), ("sequential_id", "descending")]
        )
        row = table.take(order.slice(0, 1)).to_pylist()[0]
        last = LastTrade(symbol, row["trade_timestamp"], row["sequential_id"])
        since = last.trade_timestamp - window
        tails[symbol] = RecordedTail(last, since, _ids_since(table, since))
    return tails


def _newest_parts(root: Path, symbol: str, window: timedelta) -> pa.Table | None:
    # The trades of the symbol's newest parts, back to ``window`` before its newest trade.
    tables: list[pa.Table] = []
    newest: datetime | None = None
    for last_ns, part in _parts(_symbol_days(root, symbol)[:_DAYS_SCANNED]):
        if newest is not None and last_ns < _ns(newest - window - _CLOCK_MARGIN):
            break
        table = read_part(part, _COLUMNS)
        if table.num_rows:
            top = pc.max(table["trade_timestamp"]).as_py()
            newest = top if newest is None else max(newest, top)
            tables.append(table)
    return pa.concat_tables(tables) if tables else None


def open_trade_gap_starts(root: Path, symbols: list[str]) -> dict[str, datetime]:
    """Return, for each of ``symbols`` with a trade gap the recording left open (a
    session stopped before REST had repaired it), the earliest exchange time it starts at:
    the backfill must reach back to it, not only to the newest recorded trade."""
    wanted = set(symbols)
    out: dict[str, datetime] = {}
    for gap in open_gaps(root):
        if gap.kind != "gap_detected" or gap.channel != "trade" or gap.exchange_start is None:
            continue
        for symbol in wanted.intersection(gap.symbols):
            if symbol not in out or gap.exchange_start < out[symbol]:
                out[symbol] = gap.exchange_start
    return out


def recorded_trade_ids(root: Path, symbol: str, since: datetime) -> frozenset[int]:
    """Return the ids of ``symbol``'s recorded trades at or after ``since`` (exchange time)."""
    day = since.astimezone(UTC).date().isoformat()
    floor_ns = _ns(since - _CLOCK_MARGIN)

    def read() -> list[pa.Table]:
        directories = [d for d in _symbol_days(root, symbol) if d.parent.name >= f"date={day}"]
        return [
            read_part(part, _COLUMNS)
            for last_ns, part in _parts(directories)
            if last_ns >= floor_ns
        ]

    tables = read_listed(read)
    return _ids_since(pa.concat_tables(tables), since) if tables else frozenset()


def previous_session_end_ns(root: Path, current_session_id: str) -> int | None:
    """Return the newest receive time written by the sessions before ``current_session_id``."""
    ends = [
        s.last_received_ns
        for s in read_sessions(root)
        if s.session_id < current_session_id and s.last_received_ns is not None
    ]
    return max(ends) if ends else None


def earliest_reachable(now: datetime, max_days: int) -> datetime:
    """Return the oldest exchange time Upbit's trade history reaches ``max_days`` back
    (``days_ago`` counts whole UTC days)."""
    start_of_today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start_of_today - timedelta(days=max_days)
