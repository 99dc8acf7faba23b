"""What a replay reads: a recording root, optionally some symbols and a receive-time window.

Times are integer nanoseconds since the Unix epoch (UTC) inside replay; callers may give aware
datetimes instead. The window applies to ``received_ns`` (the local receive clock that also
paces the replay and names the partitions): a row is selected when
``start_ns <= received_ns < end_ns``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final, TypeAlias

from replay.errors import InvalidReplayArgument

__all__ = [
    "REPLAYED_DATASETS",
    "Selection",
    "TimeLike",
    "make_selection",
    "ns_to_datetime",
    "parse_symbols",
    "to_ns",
]

TimeLike: TypeAlias = datetime | int
"""An aware datetime, or integer nanoseconds since the Unix epoch."""

REPLAYED_DATASETS: Final = ("ticker", "trade", "orderbook", "candle", "events")
"""The datasets a replay yields again: what the backbone's streams delivered, and its events.
The recorder's ``rest_*`` reference snapshots and ``raw`` frames are never replayed."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_NS: Final = timedelta(microseconds=1)


def to_ns(value: TimeLike, what: str) -> int:
    """Return ``value`` as integer nanoseconds since the epoch.

    Raises:
        InvalidReplayArgument: a naive datetime, a bool, or something that is not a time.
    """
    if isinstance(value, bool) or not isinstance(value, datetime | int):
        raise InvalidReplayArgument(
            f"{what} must be an aware datetime or integer nanoseconds, not {value!r}"
        )
    if isinstance(value, int):
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidReplayArgument(
            f"{what} {value.isoformat()} has no time zone: give an aware datetime "
            "(e.g. tzinfo=UTC) so the moment is unambiguous"
        )
    return ((value - _EPOCH) // _NS) * 1000


def ns_to_datetime(ns: int) -> datetime:
    """Return the aware UTC datetime of ``ns`` (truncated to the microsecond)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def parse_symbols(symbols: str | Iterable[str] | None, what: str = "symbols") -> tuple[str, ...]:
    """Return ``symbols`` (one, a comma-separated string, or an iterable) as a sorted tuple.

    Raises:
        InvalidReplayArgument: an empty selection or something that is not a string.
    """
    if symbols is None:
        return ()
    items = symbols.split(",") if isinstance(symbols, str) else list(symbols)
    out: set[str] = set()
    for item in items:
        if not isinstance(item, str):
            raise InvalidReplayArgument(f"{what} must be strings such as 'KRW-BTC', not {item!r}")
        item = item.strip()
        if item:
            out.add(item)
    if not out:
        raise InvalidReplayArgument(f"{what} is empty: name at least one market, e.g. 'KRW-BTC'")
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Selection:
    """A recording root and the rows of it to read.

    ``symbols`` ``None`` means every symbol; ``start_ns`` / ``end_ns`` ``None`` mean unbounded.
    Events (partitioned by date only) are selected when they concern no symbol or at least
    one selected symbol.
    """

    root: Path
    symbols: frozenset[str] | None = None
    start_ns: int | None = None
    end_ns: int | None = None

    def wants_symbol(self, symbol: str) -> bool:
        """Return whether rows of ``symbol`` are selected."""
        return self.symbols is None or symbol in self.symbols

    def overlaps(self, first_ns: int, last_ns: int) -> bool:
        """Return whether rows received in ``[first_ns, last_ns]`` can be selected."""
        if self.start_ns is not None and last_ns < self.start_ns:
            return False
        return self.end_ns is None or first_ns < self.end_ns

    def contains(self, first_ns: int, last_ns: int) -> bool:
        """Return whether every row received in ``[first_ns, last_ns]`` is in the window."""
        if self.start_ns is not None and first_ns < self.start_ns:
            return False
        return self.end_ns is None or last_ns < self.end_ns


def make_selection(
    path: Path | str,
    *,
    symbols: str | Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> Selection:
    """Return the :class:`Selection` of the arguments every replay entry point takes.

    Raises:
        InvalidReplayArgument: a malformed symbol list or time, or ``end`` before ``start``.
    """
    if not isinstance(path, str | Path):
        raise InvalidReplayArgument(f"path must be a directory path, not {path!r}")
    start_ns = None if start is None else to_ns(start, "start")
    end_ns = None if end is None else to_ns(end, "end")
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        raise InvalidReplayArgument(
            f"end ({ns_to_datetime(end_ns).isoformat()}) is not after start "
            f"({ns_to_datetime(start_ns).isoformat()}): the window would be empty"
        )
    chosen = parse_symbols(symbols) if symbols is not None else None
    return Selection(
        root=Path(path),
        symbols=frozenset(chosen) if chosen is not None else None,
        start_ns=start_ns,
        end_ns=end_ns,
    )
