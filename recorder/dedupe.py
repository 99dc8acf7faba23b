"""De-duplication of trades on ``(symbol, sequential_id)``.

Upbit's ``sequential_id`` is unique within a market only, so the key is the pair. The backbone
already promises each trade once per stream; the recorder checks again because its own
backfill after downtime and the live stream can meet (the stream's first snapshot trade is
usually the backfill's last one).

The keys are kept in two generations: new keys go into the current one, and every
``window_s`` the older generation is dropped. A key is therefore remembered for at least
``window_s`` and at most twice that (no per-key timestamps or queue). Each generation holds a
set of ``sequential_id`` integers per symbol, so a trade costs a dictionary lookup and one or
two integer set lookups, with no key tuple built (about half the time and memory of a set of
``(symbol, sequential_id)`` tuples).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

__all__ = ["TradeDeduper"]


class TradeDeduper:
    """Remembers the trade keys accepted in the last ``window_s`` seconds at least (by
    acceptance time, so memory follows the trade rate, not the history)."""

    def __init__(self, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._current: dict[str, set[int]] = {}
        self._previous: dict[str, set[int]] = {}
        self._turn_at = clock() + window_s
        self._calls = 0
        self.duplicates = 0
        """How many duplicates :meth:`first_time` refused so far."""

    def remember(self, symbol: str, sequential_ids: Iterable[int]) -> None:
        """Take ``sequential_ids`` of ``symbol`` as seen now (trades already recorded)."""
        self._current.setdefault(symbol, set()).update(sequential_ids)

    def __len__(self) -> int:
        return sum(map(len, self._current.values())) + sum(map(len, self._previous.values()))

    def first_time(self, symbol: str, sequential_id: int) -> bool:
        """Return ``True`` and remember the key if it was not seen within the window;
        ``False`` (and count it) for a duplicate."""
        self._calls += 1
        if not self._calls & 0xFF and self._clock() >= self._turn_at:
            self._turn()
        current = self._current.get(symbol)
        if current is None:
            current = self._current[symbol] = set()
        elif sequential_id in current:
            self.duplicates += 1
            return False
        previous = self._previous.get(symbol)
        if previous is not None and sequential_id in previous:
            self.duplicates += 1
            return False
        current.add(sequential_id)
        return True

    def _turn(self) -> None:
        # Checked every 256 keys: a quiet stream turns later, which only keeps keys longer.
        self._previous = self._current
        self._current = {}
        self._turn_at = self._clock() + self._window_s
