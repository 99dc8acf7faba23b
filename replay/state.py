"""What ``get_*`` answers: the market as of the replay clock, built from released rows only.

:class:`ClockState` is told every row the replay releases (delivered to a stream or passed
over), run by run, in replay order; it never sees a row ahead of the clock. It keeps:

- the latest ticker and orderbook of each symbol (a reference to the row, decoded on demand);
- the latest :data:`TRADES_KEPT` trades of each symbol (references to runs of rows);
- the latest :data:`CANDLES_KEPT` candles of each symbol and timeframe, the last update of
  an ``open_time`` winning (decoded, since folding needs the values);
- the symbols seen so far.

References keep at most the batches still being read (and the one before), so memory does
not grow with the recording.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime
from typing import Final

from backbone.models import CandleData, OrderbookData, TickerData, TradeData
from replay.files import Chunk
from replay.rows import record, records

__all__ = ["CANDLES_KEPT", "TRADES_KEPT", "ClockState"]

TRADES_KEPT: Final = 1000
"""Recent trades kept per symbol for ``get_trades``."""

CANDLES_KEPT: Final = 1000
"""Recent candles kept per symbol and timeframe for ``get_candles``."""


class _Trades:
    __slots__ = ("rows", "runs")

    def __init__(self) -> None:
        self.runs: deque[tuple[Chunk, int, int]] = deque()
        self.rows = 0

    def add(self, chunk: Chunk, start: int, stop: int) -> None:
        runs = self.runs
        if runs and runs[-1][0] is chunk and runs[-1][2] == start:
            runs[-1] = (chunk, runs[-1][1], stop)
        else:
            runs.append((chunk, start, stop))
        self.rows += stop - start
        while runs and self.rows - (runs[0][2] - runs[0][1]) >= TRADES_KEPT:
            head = runs.popleft()
            self.rows -= head[2] - head[1]

    def newest(self, count: int) -> list[TradeData]:
        out: list[TradeData] = []
        for chunk, start, stop in reversed(self.runs):
            taken = records(chunk, max(start, stop - (count - len(out))), stop)
            out.extend(reversed(taken))  # type: ignore[arg-type]
            if len(out) >= count:
                break
        return out


class ClockState:
    """The market as of the replay clock; see the module docstring."""

    def __init__(self) -> None:
        self._ticker: dict[str, tuple[Chunk, int]] = {}
        self._orderbook: dict[str, tuple[Chunk, int]] = {}
        self._trades: dict[str, _Trades] = {}
        self._candles: dict[tuple[str, str], OrderedDict[datetime, CandleData]] = {}
        self.symbols: set[str] = set()

    def apply_many(self, runs: list[tuple[Chunk, int, int]]) -> None:
        """Take in runs of rows released in this order (oldest first); equivalent to
        :meth:`apply` on each, but touching only what the newest rows decide."""
        done: set[tuple[str, str]] = set()
        trades: dict[str, list[tuple[Chunk, int, int]]] = {}
        counted: dict[str, int] = {}
        for chunk, start, stop in reversed(runs):
            dataset, symbol = chunk.dataset, chunk.symbol
            if symbol is None or dataset == "candle" or start >= stop:
                continue
            if dataset == "trade":
                if counted.get(symbol, 0) < TRADES_KEPT:
                    trades.setdefault(symbol, []).append((chunk, start, stop))
                    counted[symbol] = counted.get(symbol, 0) + stop - start
                continue
            key = (dataset, symbol)
            if key not in done:
                done.add(key)
                self.apply(chunk, start, stop)
        for kept in trades.values():
            for chunk, start, stop in reversed(kept):
                self.apply(chunk, start, stop)
        for chunk, start, stop in runs:
            if chunk.dataset == "candle":
                self.apply(chunk, start, stop)

    def apply(self, chunk: Chunk, start: int, stop: int) -> None:
        """Take in rows ``start`` to ``stop`` of ``chunk``, just released, in replay order."""
        if start >= stop:
            return
        dataset, symbol = chunk.dataset, chunk.symbol
        if symbol is None:
            return
        self.symbols.add(symbol)
        if dataset == "ticker":
            self._ticker[symbol] = (chunk, stop - 1)
        elif dataset == "orderbook":
            self._orderbook[symbol] = (chunk, stop - 1)
        elif dataset == "trade":
            trades = self._trades.get(symbol)
            if trades is None:
                trades = self._trades[symbol] = _Trades()
            trades.add(chunk, start, stop)
        elif dataset == "candle":
            for candle in records(chunk, start, stop):
                assert isinstance(candle, CandleData)
                key = (symbol, candle.timeframe)
                kept = self._candles.get(key)
                if kept is None:
                    kept = self._candles[key] = OrderedDict()
                kept[candle.open_time] = candle
                kept.move_to_end(candle.open_time)
                if len(kept) > CANDLES_KEPT:
                    kept.popitem(last=False)

    def ticker(self, symbol: str) -> TickerData | None:
        """Return the latest ticker of ``symbol`` released, if any."""
        ref = self._ticker.get(symbol)
        return None if ref is None else record(*ref)  # type: ignore[return-value]

    def orderbook(self, symbol: str) -> OrderbookData | None:
        """Return the latest orderbook of ``symbol`` released, if any."""
        ref = self._orderbook.get(symbol)
        return None if ref is None else record(*ref)  # type: ignore[return-value]

    def trades(self, symbol: str, count: int) -> list[TradeData]:
        """Return up to ``count`` of the latest trades of ``symbol``, newest first."""
        trades = self._trades.get(symbol)
        return [] if trades is None else trades.newest(count)

    def candles(self, symbol: str, timeframe: str) -> list[CandleData]:
        """Return the kept candles of ``symbol`` and ``timeframe``, newest ``open_time``
        first."""
        kept = self._candles.get((symbol, timeframe))
        if kept is None:
            return []
        return sorted(kept.values(), key=lambda c: c.open_time, reverse=True)
