"""De-duplication of trades on ``(symbol, sequential_id)``.

Upbit's ``sequential_id`` is unique within a market only, so the key is the pair. The backbone
already promises each trade once per stream; the recorder checks again because its own
backfill after downtime and the live stream can meet (the stream's first snapshot trade is
usually the backfill's last one).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["TradeDeduper"]


class TradeDeduper:
    """Remembers the trade keys accepted in the last ``window_s`` seconds (by acceptance
    time, so memory follows the trade rate, not the history)."""

    def __init__(self, window_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._window_s = window_s
        self._clock = clock
        self._seen: set[tuple[str, int]] = set()
        self._order: deque[tuple[float, tuple[str, int]]] = deque()
        self.duplicates = 0
        """How many duplicates :meth:`first_time` refused so far."""

    def __len__(self) -> int:
        return len(self._seen)

    def first_time(self, symbol: str, sequential_id: int) -> bool:
        """Return ``True`` and remember the key if it was not seen within the window;
        ``False`` (and count it) for a duplicate."""
        key = (symbol, sequential_id)
        now = self._clock()
        order = self._order
        horizon = now - self._window_s
        while order and order[0][0] < horizon:
            self._seen.discard(order.popleft()[1])
        if key in self._seen:
            self.duplicates += 1
            return False
        self._seen.add(key)
        order.append((now, key))
        return True
