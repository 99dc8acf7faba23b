"""The deterministic market behind the simulator: a pure function of (seed, market, time).

Time is cut into blocks: hours from ``recent_start_ms`` (00:00 UTC seven days before the
exchange's start day, the oldest day ``days_ago`` reaches) onwards, whole days before it, back
to ``history_start_ms``. Each block's trade count, its opening, closing, highest and lowest
prices (its *plan*, ``plans.py``) are drawn in closed form from a hash of (seed, market, block),
and its trades (``blockgen.py``) are generated from that plan only when something needs them,
so any moment can be computed without simulating from the beginning. Day highs and lows (the
52-week fields) come from plans alone; volumes and turnovers need the trades.

Both are computed on numpy arrays, for many blocks of many markets in one pass: the batch
functions at the end of this module (``fill_plans``, ``fill_aggs``, ``fill_blocks``,
``fill_years``, ``last_trades``, ``prepare``) serve a whole ``ticker/all`` or a subscription
to hundreds of markets at once. A block's aggregate is kept without materialising its trades
as objects; a ticker's 24-hour figures are running sums since 00:00 UTC (per hour boundary)
and to the next 00:00 UTC, so each published trade's ticker costs a few lookups.

Every price and size is an integer count of 1e-8 units. Generated values are cached
process-wide (pure functions, so exchanges with the same parameters share them); cold work
for many markets is best done off the event loop (``Exchange`` does).
"""

from __future__ import annotations

import calendar
import threading
import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, compress
from operator import mul
from typing import Any

import numpy as np

from simulator._rng import SplitMix, hash_ints
from simulator.arrays import I64, Params, Ticks
from simulator.blockgen import Trades, generate
from simulator.markets import (
    SCALE,
    MarketSpec,
    price_down,
    price_up,
    tick_at,
    tick_table,
)
from simulator.plans import (
    OCTAVES,
    PLAN_FIELDS,
    anchors,
    block_plans,
    day_plans,
    week_plans,
)

SECOND_MS = 1000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS

# Trade sizes as a multiple (per mille) of a market's typical notional, log-spaced 0.02x..30x.


def _log_spaced(first: int, ratio_per_mille: int, count: int) -> tuple[int, ...]:
    # Integer geometric series (no float pow, whose last bits vary between C libraries).
    out, value = [], first * 1_000_000
    for _ in range(count):
        out.append(value // 1_000_000)
        value = value * ratio_per_mille // 1000
    return tuple(out)


_SIZE_MULT = _log_spaced(20, 1125, 64)
_BOOK_MULT = _log_spaced(50, 1090, 64)


class _LRU:
    """A thread-safe LRU memo of pure-function results, bounded by a cost (entries or trades)."""

    def __init__(self, capacity: int) -> None:
        self._data: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._cost = 0
        self._capacity = capacity
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._cost = 0

    def get(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                return None
            self._data.move_to_end(key)
            return item[0]

    def put(self, key: tuple[Any, ...], value: Any, cost: int = 1) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._cost -= old[1]
            self._data[key] = (value, cost)
            self._cost += cost
            while self._cost > self._capacity and len(self._data) > 1:
                _, (_, dropped) = self._data.popitem(last=False)
                self._cost -= dropped


class _Memo:
    """A bounded memo of pure-function results: plain dict reads and writes (atomic under the
    GIL, so threads may share it); once full it starts over, and values are recomputed
    identically when needed again."""

    __slots__ = ("_capacity", "_data", "get")

    def __init__(self, capacity: int) -> None:
        self._data: dict[tuple[Any, ...], Any] = {}
        self._capacity = capacity
        self.get = self._data.get

    def clear(self) -> None:
        self._data.clear()

    def put(self, key: tuple[Any, ...], value: Any) -> None:
        if len(self._data) >= self._capacity:
            self._data.clear()
        self._data[key] = value


_BATCH_TRADES = 200_000  # trades generated in one vectorised pass (bounds its memory)
_KEYS: dict[tuple[Any, ...], int] = {}
_PLANS = _Memo(400_000)
_BLOCKS = _LRU(600_000)  # counted in trades, at about 300 bytes each
_AGGS = _Memo(400_000)
_MISC = _Memo(400_000)


def clear_caches() -> None:
    """Forget every memoised plan, block and aggregate (they are recomputed identically)."""
    for cache in (_PLANS, _BLOCKS, _AGGS, _MISC):
        cache.clear()


@dataclass(frozen=True, slots=True)
class Agg:
    """OHLCV of a run of trades (``n`` trades); prices in 1e-8, turnover in 1e-16 units."""

    n: int
    open: int
    high: int
    low: int
    close: int
    first_ts: int
    last_ts: int
    volume: int
    turnover: int
    ask_volume: int
    bid_volume: int


EMPTY = Agg(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def combine(a: Agg, b: Agg) -> Agg:
    """Return the aggregate of ``a`` followed in time by ``b``."""
    if not a.n:
        return b
    if not b.n:
        return a
    return Agg(
        a.n + b.n,
        a.open,
        max(a.high, b.high),
        min(a.low, b.low),
        b.close,
        a.first_ts,
        b.last_ts,
        a.volume + b.volume,
        a.turnover + b.turnover,
        a.ask_volume + b.ask_volume,
        a.bid_volume + b.bid_volume,
    )


@dataclass(frozen=True, slots=True)
class Plan:
    """What a block's trades must add up to, drawn in closed form."""

    start: int
    length: int
    n: int
    bid_open: int
    bid_close: int
    bid_high: int
    bid_low: int
    i_high: int
    i_low: int
    side_first: int
    side_last: int
    mid_bid: int
    mid_side: int
    open: int
    high: int
    low: int
    close: int


def compress_zero(values: list[int], keep: list[int]) -> list[int]:
    """Return ``values`` with the entries whose ``keep`` flag is 0 replaced by 0."""
    return [v if k else 0 for v, k in zip(values, keep, strict=True)]


class Block:
    """A block's generated trades as parallel lists, with prefix sums for fast aggregates.

    ``side`` is 1 for BID (the taker bought, at the ask) and 0 for ASK; ``bid`` is the best bid
    when the trade printed.
    """

    __slots__ = (
        "_cum_bid",
        "_run",
        "agg",
        "bid",
        "cum_turn",
        "cum_vol",
        "length",
        "price",
        "sid",
        "side",
        "start",
        "ts",
        "volume",
    )  # fmt: skip

    def __init__(
        self, start: int, length: int, ts: list[int], sid: list[int], price: list[int],
        volume: list[int], side: list[int], bid: list[int],
    ) -> None:  # fmt: skip
        self.start = start
        self.length = length
        self.ts = ts
        self.sid = sid
        self.price = price
        self.volume = volume
        self.side = side
        self.bid = bid
        self.cum_vol = [0, *accumulate(volume)]
        self.cum_turn = [0, *accumulate(map(mul, price, volume))]
        # Side volumes and running extremes are built when first needed (tickers, candles).
        self._cum_bid: list[int] | None = None
        self._run: tuple[list[int], list[int]] | None = None
        if ts:
            bid_volume = sum(compress(volume, side))
            self.agg = Agg(
                len(ts), price[0], max(price), min(price), price[-1], ts[0], ts[-1],
                self.cum_vol[-1], self.cum_turn[-1], self.cum_vol[-1] - bid_volume, bid_volume,
            )  # fmt: skip
        else:
            self.agg = EMPTY

    @property
    def cum_bid(self) -> list[int]:
        if self._cum_bid is None:
            self._cum_bid = [0, *accumulate(compress_zero(self.volume, self.side))]
        return self._cum_bid

    @property
    def run_high(self) -> list[int]:
        return self._runs()[0]

    @property
    def run_low(self) -> list[int]:
        return self._runs()[1]

    def _runs(self) -> tuple[list[int], list[int]]:
        if self._run is None:
            self._run = (list(accumulate(self.price, max)), list(accumulate(self.price, min)))
        return self._run

    def range_agg(self, a: int, b: int) -> Agg:
        """Return the aggregate of trades ``a`` to ``b`` inclusive."""
        if b < a:
            return EMPTY
        cum_bid = self.cum_bid
        if a == 0:
            high, low = self.run_high[b], self.run_low[b]
        else:
            chunk = self.price[a : b + 1]
            high, low = max(chunk), min(chunk)
        return Agg(
            b - a + 1,
            self.price[a],
            high,
            low,
            self.price[b],
            self.ts[a],
            self.ts[b],
            self.cum_vol[b + 1] - self.cum_vol[a],
            self.cum_turn[b + 1] - self.cum_turn[a],
            (self.cum_vol[b + 1] - self.cum_vol[a]) - (cum_bid[b + 1] - cum_bid[a]),
            cum_bid[b + 1] - cum_bid[a],
        )


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade: ``side`` 1 is BID, 0 is ASK; ``bid`` is the best bid it printed against."""

    ts: int
    sid: int
    price: int
    volume: int
    side: int
    bid: int


@dataclass(frozen=True, slots=True)
class TickerState:
    """The ticker as produced by one trade event (``timestamp`` is that event's time)."""

    timestamp: int
    trade: Trade
    opening: int
    high: int
    low: int
    prev_close: int
    acc_volume: int
    acc_turnover: int
    acc_ask_volume: int
    acc_bid_volume: int
    volume_24h: int
    turnover_24h: int
    high_52w: int
    high_52w_day: int
    low_52w: int
    low_52w_day: int


@dataclass(frozen=True, slots=True)
class Book:
    """An orderbook state: units are (ask_price, bid_price, ask_size, bid_size), best first."""

    timestamp: int
    units: tuple[tuple[int, int, int, int], ...]
    level: int

    def top(self, depth: int) -> tuple[tuple[int, int, int, int], ...]:
        return self.units[:depth]


@dataclass(frozen=True, slots=True)
class Candle:
    """One candle: its start, its aggregate and, for day candles, the previous close."""

    start: int
    agg: Agg
    prev_close: int


CANDLE_UNITS_MIN = (1, 3, 5, 10, 15, 30, 60, 240)


def day_floor(ts: int) -> int:
    return ts - ts % DAY_MS


def week_floor(ts: int) -> int:
    """Return the Monday 00:00 UTC starting the week of ``ts``."""
    return ((ts // DAY_MS - 4) // 7 * 7 + 4) * DAY_MS


def candle_start(unit: str, ts: int) -> int:
    """Return the start of the candle holding ``ts``.

    ``unit`` is ``1s``, ``<n>m``, ``days``, ``weeks`` (from Monday), ``months`` or ``years``.
    """
    size = _fixed_size(unit)
    if size:
        return ts - ts % size
    if unit == "weeks":
        days = ts // DAY_MS
        return ((days - 4) // 7 * 7 + 4) * DAY_MS
    tm = time.gmtime(ts // 1000)
    if unit == "months":
        return calendar.timegm((tm.tm_year, tm.tm_mon, 1, 0, 0, 0)) * 1000
    return calendar.timegm((tm.tm_year, 1, 1, 0, 0, 0)) * 1000


def _fixed_size(unit: str) -> int:
    if unit == "1s":
        return SECOND_MS
    if unit.endswith("m") and unit[:-1].isdigit():
        return int(unit[:-1]) * MINUTE_MS
    if unit == "days":
        return DAY_MS
    return 0


class MarketModel:
    """One market's deterministic history and present, answered as of any exchange time."""

    def __init__(
        self,
        spec: MarketSpec,
        *,
        seed: int,
        recent_start_ms: int,
        history_start_ms: int,
        activity_scale: float,
    ) -> None:
        self.spec = spec
        self.seed = seed
        self.recent_start = recent_start_ms
        self.history_start = history_start_ms
        self.activity = activity_scale
        self.table = tick_table(spec.quote)
        self.lag = spec.lag_ms
        # Cache key: everything the market's numbers depend on (the era bounds move anchors
        # and block lengths), interned as a small int so lookups hash fast.
        params = (
            seed, spec.code, spec.key, spec.base_price, spec.trades_per_hour, spec.daily_vol_ppb,
            spec.spread_ticks, spec.notional, activity_scale, history_start_ms, recent_start_ms,
        )  # fmt: skip
        self._ck = _KEYS.setdefault(params, len(_KEYS))
        self.row = (
            spec.base_price, spec.trades_per_hour, activity_scale, spec.daily_vol_ppb,
            spec.spread_ticks, spec.notional, recent_start_ms, history_start_ms,
            _QUOTES.get(spec.quote, 2),
            tuple(hash_ints(seed, spec.key, 100 + i) for i in range(len(OCTAVES))),
            hash_ints(seed, spec.key, 1), hash_ints(seed, spec.key, 2),
            hash_ints(seed, spec.key, 4), hash_ints(seed, spec.key, 3),
        )  # fmt: skip
        self.params = Params.of([self.row])
        self._warmed: set[int] = set()

    # -- blocks ---------------------------------------------------------------------------

    def block_start(self, ts: int) -> int:
        """Return the start of the block holding ``ts``."""
        if ts < self.recent_start:
            return ts - ts % DAY_MS
        return ts - ts % HOUR_MS

    def block_length(self, start: int) -> int:
        return DAY_MS if start < self.recent_start else HOUR_MS

    def prev_block(self, start: int) -> int:
        return start - (DAY_MS if start <= self.recent_start else HOUR_MS)

    def chunk(self, start: int) -> list[int]:
        """Return the starts of the blocks planned together with ``start``: its UTC day of
        hour blocks, or the 32 day blocks (aligned on ``recent_start``) holding it."""
        if start >= self.recent_start:
            day = day_floor(start)
            return list(range(day, day + DAY_MS, HOUR_MS))
        span = 32 * DAY_MS
        first = self.recent_start - -(-(self.recent_start - start) // span) * span
        return list(range(max(first, day_floor(self.history_start)), first + span, DAY_MS))

    def anchor_bid(self, ts: int) -> int:
        """Return the best bid the path passes through at the block boundary ``ts``."""
        return int(anchors(self.params, TICKS, _ZERO, np.array([ts], dtype=np.int64))[0])

    def ask_of(self, bid: int) -> int:
        return price_up(self.table, bid, self.spec.spread_ticks)

    def plan(self, start: int) -> Plan:
        """Return the closed-form plan of the block starting at ``start`` (see plans.py)."""
        if start < self.history_start:  # no trade; not cached: the bound is this exchange's
            return _plans([(self, start)])[0]
        length = self.block_length(start)
        key = (self._ck, start, length)
        cached = _PLANS.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        fill_plans([(self, s) for s in self.chunk(start)])
        cached = _PLANS.get(key)
        return cached if cached is not None else _plans([(self, start)])[0]

    def block(self, start: int) -> Block:
        """Return the generated trades of the block starting at ``start``."""
        key = (self._ck, start, self.block_length(start))
        cached = _BLOCKS.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        return fill_blocks([(self, start)])[0]

    def agg(self, start: int) -> Agg:
        """Return the aggregate of a whole block (generating its trades if needed)."""
        key = (self._ck, start, self.block_length(start))
        cached = _AGGS.get(key)
        if cached is None:
            fill_aggs([(self, s) for s in self.chunk(start) if s <= start] or [(self, start)])
            cached = _AGGS.get(key)
        return cached if cached is not None else self.block(start).agg

    def warm_aggs(self, starts: list[int]) -> None:
        """Compute and cache the aggregates of the blocks at ``starts`` in vectorised batches."""
        fill_aggs([(self, s) for s in starts])

    # -- trades ---------------------------------------------------------------------------

    def trade(self, block: Block, i: int) -> Trade:
        return Trade(
            block.ts[i], block.sid[i], block.price[i], block.volume[i], block.side[i], block.bid[i]
        )

    def last_trade_index(self, te: int) -> tuple[Block, int] | None:
        """Return the block and index of the last trade at or before ``te`` (trade time)."""
        start = self.block_start(te)
        while start >= self.history_start:
            if self.plan(start).n:
                block = self.block(start)
                j = bisect_right(block.ts, te) - 1
                if j >= 0:
                    return block, j
            start = self.prev_block(start)
        return None

    def trades_asc(self, from_ms: int, to_ms: int) -> Iterator[Trade]:
        """Yield the trades with ``from_ms <= ts < to_ms``, ascending by (ts, sequential_id)."""
        start = self.block_start(max(from_ms, self.history_start))
        while start < to_ms:
            if self.plan(start).n:
                block = self.block(start)
                a = bisect_left(block.ts, from_ms)
                b = bisect_left(block.ts, to_ms)
                for i in range(a, b):
                    yield self.trade(block, i)
            start += self.block_length(start)

    def trades_desc(self, lower_ms: int, upper: tuple[int, int], count: int) -> list[Trade]:
        """Return up to ``count`` trades, newest first: ts >= lower_ms and (ts, sid) < upper."""
        out: list[Trade] = []
        upper_ts, upper_sid = upper
        start = self.block_start(upper_ts)
        while start + self.block_length(start) > lower_ms and start >= self.history_start:
            if self.plan(start).n:
                block = self.block(start)
                j = bisect_right(block.ts, upper_ts) - 1
                while j >= 0 and (block.ts[j], block.sid[j]) >= (upper_ts, upper_sid):
                    j -= 1
                while j >= 0 and block.ts[j] >= lower_ms:
                    out.append(self.trade(block, j))
                    if len(out) >= count:
                        return out
                    j -= 1
            start = self.prev_block(start)
        return out

    # -- days -----------------------------------------------------------------------------

    def prev_close(self, day_start: int) -> int:
        """Return the last trade price before ``day_start`` (the previous UTC day's close)."""
        key = (self._ck, "pc", day_start)
        cached = _MISC.get(key)
        if cached is not None:
            return int(cached)
        start = self.prev_block(self.block_start(day_start))
        value = 0
        while start >= self.history_start:
            plan = self.plan(start)
            if plan.n:
                value = plan.close
                break
            start = self.prev_block(start)
        if not value:
            value = self.anchor_bid(self.history_start)
        _MISC.put(key, value)
        return value

    def year_parts(self, day_start: int) -> list[tuple[int, bool]]:
        """Return the (start, is a week) pieces of the 364 days before ``day_start``, in order:
        whole weeks (Monday to Sunday) and the ragged days at either end."""
        day = max(day_start - 364 * DAY_MS, day_floor(self.history_start))
        monday = min(-(-(day - week_floor(day)) // WEEK_MS) * WEEK_MS + week_floor(day), day_start)
        weeks_end = monday + max(0, (day_start - monday) // WEEK_MS) * WEEK_MS
        return (
            [(d, False) for d in range(day, monday, DAY_MS)]
            + [(w, True) for w in range(monday, weeks_end, WEEK_MS)]
            + [(d, False) for d in range(weeks_end, day_start, DAY_MS)]
        )

    def year_range(self, day_start: int) -> tuple[int, int, int, int]:
        """Return (high, a day it traded, low, a day it traded) in the 364 days to ``day_start``.

        Whole weeks are read from week plans, the ragged ends from day plans; on ties the
        later day wins.
        """
        return fill_years([(self, day_start)])[0]

    def _day_prefix(self, start: int) -> Agg:
        # Aggregate of the trades of start's UTC day that precede the block at ``start``
        # (hour blocks; a day block starts its day).
        day0 = day_floor(start)
        if start == day0:
            return EMPTY
        key = (self._ck, "dp", start)
        cached = _MISC.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        begin = start - HOUR_MS
        while begin > day0 and _MISC.get((self._ck, "dp", begin)) is None:
            begin -= HOUR_MS
        acc = self._day_prefix(begin) if begin > day0 else EMPTY
        self.warm_aggs(list(range(begin, start, HOUR_MS)))
        while begin < start:
            acc = combine(acc, self.agg(begin))
            begin += HOUR_MS
            if begin < start:
                _MISC.put((self._ck, "dp", begin), acc)
        _MISC.put(key, acc)
        return acc

    def _day_suffix(self, boundary: int) -> Agg:
        # Aggregate of the trades from the hour boundary ``boundary`` to the next 00:00 UTC.
        key = (self._ck, "ds", boundary)
        cached = _MISC.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        end = day_floor(boundary) + DAY_MS
        stop = boundary + HOUR_MS
        while stop < end and _MISC.get((self._ck, "ds", stop)) is None:
            stop += HOUR_MS
        acc = self._day_suffix(stop) if stop < end else EMPTY
        self.warm_aggs(list(range(boundary, stop, HOUR_MS)))
        start = stop - HOUR_MS
        while start >= boundary:
            acc = combine(self.agg(start), acc)
            _MISC.put((self._ck, "ds", start), acc)
            start -= HOUR_MS
        return acc

    def _sum_between(self, low_excl: int, block_start: int) -> tuple[int, int]:
        # (volume, turnover) of trades with low_excl < ts < block_start, where low_excl is in
        # the UTC day before block_start's: the rest of low_excl's block, then whole hours up
        # to midnight (a cached suffix) and from midnight (a cached prefix).
        first = self.block_start(low_excl)
        if first < self.recent_start:
            return self._sum_walk(low_excl, block_start)
        volume = turnover = 0
        if self.plan(first).n:
            block = self.block(first)
            a = bisect_right(block.ts, low_excl)
            volume = block.cum_vol[-1] - block.cum_vol[a]
            turnover = block.cum_turn[-1] - block.cum_turn[a]
        end = first + HOUR_MS
        midnight = day_floor(block_start)
        for part in (
            self._day_suffix(end) if end < midnight else EMPTY,
            self._day_prefix(block_start),
        ):
            volume += part.volume
            turnover += part.turnover
        return volume, turnover

    def _sum_walk(self, low_excl: int, block_start: int) -> tuple[int, int]:
        # _sum_between block by block (windows reaching back before the hour blocks).
        volume = turnover = 0
        start = self.block_start(low_excl)
        while start < block_start:
            if self.plan(start).n:
                if start > low_excl:
                    agg = self.agg(start)
                    volume += agg.volume
                    turnover += agg.turnover
                else:
                    block = self.block(start)
                    a = bisect_right(block.ts, low_excl)
                    volume += block.cum_vol[-1] - block.cum_vol[a]
                    turnover += block.cum_turn[-1] - block.cum_turn[a]
            start += self.block_length(start)
        return volume, turnover

    # -- ticker ---------------------------------------------------------------------------

    def ticker_for(self, block: Block, i: int) -> TickerState:
        """Return the ticker as produced by trade ``i`` of ``block``."""
        ts = block.ts[i]
        day0 = day_floor(ts)
        if block.start not in self._warmed and block.start >= self.recent_start:
            # First ticker of this hour: the aggregates of the last day in one batch.
            self._warmed.add(block.start)
            first = self.block_start(max(ts - DAY_MS, self.recent_start))
            self.warm_aggs(list(range(first, block.start, HOUR_MS)))
        head = block.range_agg(0, i)
        if block.start < day0:
            head = block.range_agg(bisect_left(block.ts, day0), i)
        day = combine(self._day_prefix(block.start), head)
        low_excl = ts - DAY_MS
        if block.start > low_excl:
            vol24, turn24 = self._sum_between(low_excl, block.start)
            vol24 += block.cum_vol[i + 1]
            turn24 += block.cum_turn[i + 1]
        else:
            a = bisect_right(block.ts, low_excl)
            vol24 = block.cum_vol[i + 1] - block.cum_vol[a]
            turn24 = block.cum_turn[i + 1] - block.cum_turn[a]
        high52, high_day, low52, low_day = self.year_range(day0)
        if day.high >= high52:
            high52, high_day = day.high, day0
        if not low52 or day.low <= low52:
            low52, low_day = day.low, day0
        return TickerState(
            timestamp=ts + self.lag,
            trade=self.trade(block, i),
            opening=day.open,
            high=day.high,
            low=day.low,
            prev_close=self.prev_close(day0),
            acc_volume=day.volume,
            acc_turnover=day.turnover,
            acc_ask_volume=day.ask_volume,
            acc_bid_volume=day.bid_volume,
            volume_24h=vol24,
            turnover_24h=turn24,
            high_52w=high52,
            high_52w_day=high_day,
            low_52w=low52,
            low_52w_day=low_day,
        )

    def ticker_at(self, asof: int) -> TickerState | None:
        """Return the latest ticker published at or before ``asof``, or None before any trade."""
        found = self.last_trade_index(asof - self.lag)
        return None if found is None else self.ticker_for(*found)

    # -- orderbook ------------------------------------------------------------------------

    def book_for(self, block: Block, i: int, level: int = 0) -> Book:
        """Return the 30-unit book right after trade ``i`` of ``block`` (``level`` aggregates)."""
        bid = block.bid[i]
        ask = self.ask_of(bid)
        table = self.table
        stream = SplitMix(hash_ints(self.seed, self.spec.key, 9, block.ts[i], i))
        base = max(1, self.spec.notional * SCALE // max(bid, 1) // 2)
        units = []
        a, b = ask, bid
        if level:
            a = -(-ask // level) * level
            b = bid // level * level
        for k in range(30):
            if b <= 0:
                break
            scale = 4 if level else 1
            ask_size = base * scale * _BOOK_MULT[int(stream.next64() % 64)] // 100
            bid_size = base * scale * _BOOK_MULT[int(stream.next64() % 64)] // 100
            units.append((a, b, ask_size + k, bid_size + k))
            if level:
                a, b = a + level, b - level
            else:
                gap = 2 if stream.next64() % 5 == 0 else 1
                a = price_up(table, a, gap)
                b = price_down(table, b, gap)
        return Book(block.ts[i] + self.lag, tuple(units), level)

    def book_at(self, asof: int, level: int = 0) -> Book | None:
        found = self.last_trade_index(asof - self.lag)
        return None if found is None else self.book_for(*found, level=level)

    def supported_levels(self, price: int) -> list[int]:
        """Return the orderbook aggregation levels of this market at ``price`` (0 first)."""
        if self.spec.quote != "KRW":
            return [0]
        tick = tick_at(self.table, price)
        first = tick * 10 if tick >= 1000 * SCALE else max(tick, SCALE)
        level = SCALE
        while level < first:
            level *= 10
        levels = [0]
        while level <= price:
            levels.append(level)
            level *= 10
        return levels

    # -- candles --------------------------------------------------------------------------

    def candles(self, unit: str, to_excl: int, count: int, asof: int) -> list[Candle]:
        """Return up to ``count`` candles starting before ``to_excl``, newest first, at ``asof``."""
        bound = min(to_excl, asof - self.lag + 1)
        floor_ms = self.history_start
        if unit == "1s":
            floor_ms = max(floor_ms, asof - 90 * DAY_MS)
        size = _fixed_size(unit)
        found: dict[int, Agg] = {}
        order: list[int] = []
        start = self.block_start(bound - 1)
        while start + self.block_length(start) > floor_ms and start >= self.history_start:
            plan = self.plan(start)
            if plan.n:
                end = start + plan.length
                first_cs = candle_start(unit, start)
                if end <= bound and first_cs == candle_start(unit, end - 1) and start >= floor_ms:
                    self._add(found, order, first_cs, self.agg(start))
                else:
                    block = self.block(start)
                    j = bisect_left(block.ts, bound) - 1
                    while j >= 0 and block.ts[j] >= floor_ms:
                        t = block.ts[j]
                        cs = t - t % size if size else candle_start(unit, t)
                        a = bisect_left(block.ts, cs, 0, j + 1)
                        self._add(found, order, cs, block.range_agg(a, j))
                        j = a - 1
            if len(order) >= count and start <= order[count - 1]:
                break
            start = self.prev_block(start)
        result = []
        for cs in order[:count]:
            prev_close = self.prev_close(cs) if unit == "days" else 0
            result.append(Candle(cs, found[cs], prev_close))
        return result

    @staticmethod
    def _add(found: dict[int, Agg], order: list[int], cs: int, agg: Agg) -> None:
        # Walking backwards in time: what arrives now precedes what is already there.
        existing = found.get(cs)
        if existing is None:
            order.append(cs)
            found[cs] = agg
        else:
            found[cs] = combine(agg, existing)

    def candle_now(self, unit: str, cs: int, asof: int) -> Candle | None:
        """Return the candle starting at ``cs`` as of ``asof`` if it has trades."""
        got = self.candles(unit, cs + (_fixed_size(unit) or DAY_MS), 1, asof)
        return got[0] if got and got[0].start == cs else None


# -- batches over many markets ------------------------------------------------------------

_QUOTES = {"KRW": 0, "BTC": 1}
TICKS = Ticks([tick_table("KRW"), tick_table("BTC"), tick_table("USDT")])
_ZERO = np.zeros(1, dtype=np.int64)
Item = tuple[MarketModel, int]


def _rows(items: list[Item]) -> tuple[Params, I64, I64]:
    # The Params of the distinct models among ``items``, each item's row and time.
    index: dict[int, int] = {}
    models: list[MarketModel] = []
    rows = []
    for model, _ in items:
        row = index.get(id(model))
        if row is None:
            row = index[id(model)] = len(models)
            models.append(model)
        rows.append(row)
    params = models[0].params if len(models) == 1 else Params.of([m.row for m in models])
    times = np.array([t for _, t in items], dtype=np.int64)
    return params, np.array(rows, dtype=np.int64), times


def _plans(items: list[Item]) -> list[Plan]:
    # The plans of blocks (model, start), computed now (see plans.block_plans).
    params, rows, starts = _rows(items)
    lengths = np.array([m.block_length(s) for m, s in items], dtype=np.int64)
    columns = block_plans(params, TICKS, rows, starts, lengths)
    values = zip(*(columns[f].tolist() for f in PLAN_FIELDS), strict=True)
    return [Plan(*row) for row in values]


def fill_plans(items: list[Item]) -> None:
    """Compute and cache the plans of the blocks (model, start) not cached yet."""
    todo = [
        (m, s)
        for m, s in items
        if s >= m.history_start and _PLANS.get((m._ck, s, m.block_length(s))) is None
    ]
    if todo:
        for (m, s), plan in zip(todo, _plans(todo), strict=True):
            _PLANS.put((m._ck, s, plan.length), plan)


def fill_years(items: list[Item]) -> list[tuple[int, int, int, int]]:
    """Return the 52-week ranges (model, 00:00 UTC), computing the ones not cached together."""
    known = {(id(m), d): _MISC.get((m._ck, "yr", d)) for m, d in items}
    todo = [(m, d) for m, d in items if known[(id(m), d)] is None]
    if todo:
        for (m, d), value in zip(todo, _years(todo), strict=True):
            _MISC.put((m._ck, "yr", d), value)
            known[(id(m), d)] = value
    return [known[(id(m), d)] for m, d in items]  # type: ignore[misc]


def _years(todo: list[Item]) -> list[tuple[int, int, int, int]]:
    # 52-week ranges from week plans (whole weeks) and day plans (ragged ends), vectorised.
    parts: list[Item] = []
    is_week: list[bool] = []
    counts = []
    for m, d in todo:
        pieces = m.year_parts(d)
        parts += [(m, start) for start, _ in pieces]
        is_week += [w for _, w in pieces]
        counts.append(len(pieces))
    params, rows, starts = _rows(parts) if parts else _rows([(todo[0][0], 0)])
    weekly = np.array(is_week, dtype=bool)
    bid_h = np.zeros(len(parts), dtype=np.int64)
    bid_l, at_h, at_l = bid_h.copy(), starts.copy(), starts.copy()
    for mask, compute in ((weekly, week_plans), (~weekly, day_plans)):
        if mask.any():
            high, low, when_h, when_l = compute(params, TICKS, rows[mask], starts[mask])
            bid_h[mask], bid_l[mask] = high, low
            if compute is week_plans:
                at_h[mask], at_l[mask] = when_h, when_l
    sizes = np.array(counts, dtype=np.int64)
    full = sizes > 0
    first = (np.cumsum(sizes) - sizes)[full]
    result = np.zeros((len(todo), 4), dtype=np.int64)
    if parts:
        high = TICKS.up(bid_h, params.quote[rows], params.spread_ticks[rows])
        top = np.maximum.reduceat(high, first)
        low = np.minimum.reduceat(bid_l, first)
        # On ties the later day wins.
        top_day = np.where(high == np.repeat(top, sizes[full]), at_h, -1)
        low_day = np.where(bid_l == np.repeat(low, sizes[full]), at_l, -1)
        result[full] = np.stack(
            [top, np.maximum.reduceat(top_day, first), low, np.maximum.reduceat(low_day, first)],
            axis=1,
        )
    return [(a, b, c, d) for a, b, c, d in result.tolist()]


def _generate(items: list[tuple[MarketModel, Plan]]) -> Trades:
    # The trades of many markets' blocks in one vectorised pass (see blockgen.py).
    params, rows, _ = _rows([(m, p.start) for m, p in items])
    columns = {f: np.array([getattr(p, f) for _, p in items], dtype=np.int64) for f in PLAN_FIELDS}
    return generate(params, TICKS, rows, columns, _SIZE_MULT)


def _batches(items: list[tuple[MarketModel, Plan]]) -> Iterator[list[tuple[MarketModel, Plan]]]:
    # Runs of blocks with at most _BATCH_TRADES trades together (one block may exceed it).
    batch: list[tuple[MarketModel, Plan]] = []
    weight = 0
    for item in items:
        if batch and weight + item[1].n > _BATCH_TRADES:
            yield batch
            batch, weight = [], 0
        batch.append(item)
        weight += item[1].n
    if batch:
        yield batch


def fill_aggs(items: list[Item]) -> None:
    """Compute and cache the aggregates of the blocks (model, start) not cached yet.

    Only the aggregates are kept: the trades are never materialised as Python objects.
    """
    todo = [(m, s) for m, s in items if _AGGS.get((m._ck, s, m.block_length(s))) is None]
    if not todo:
        return
    fill_plans(todo)
    work = []
    for m, s in todo:
        plan = m.plan(s)
        if plan.n:
            work.append((m, plan))
        else:
            _AGGS.put((m._ck, s, plan.length), EMPTY)
    for batch in _batches(work):
        for (m, plan), agg in zip(batch, _generate(batch).aggregates(), strict=True):
            _AGGS.put((m._ck, plan.start, plan.length), agg)


def fill_blocks(items: list[Item]) -> list[Block]:
    """Return the blocks (model, start), generating the ones not cached in vectorised batches."""
    fill_plans(items)
    out: dict[int, Block] = {}
    todo = []
    for k, (m, s) in enumerate(items):
        cached = _BLOCKS.get((m._ck, s, m.block_length(s)))
        if cached is not None:
            out[k] = cached
        else:
            todo.append((k, m, m.plan(s)))
    for batch in _batches([(m, plan) for _, m, plan in todo]):
        trades = _generate(batch)
        for j, (m, plan) in enumerate(batch):
            block = Block(plan.start, plan.length, *trades.lists(j))
            key = (m._ck, plan.start, plan.length)
            _BLOCKS.put(key, block, cost=max(1, plan.n))
            _AGGS.put(key, block.agg)
    for k, m, plan in todo:
        out[k] = m.block(plan.start)
    return [out[k] for k in range(len(items))]


def last_trades(models: list[MarketModel], asof: int) -> list[tuple[Block, int] | None]:
    """Return each market's block and index of its last trade published by ``asof``.

    The same as ``MarketModel.last_trade_index`` for each, with the blocks of all markets
    generated together, an hour at a time.
    """
    found: list[tuple[Block, int] | None] = [None] * len(models)
    looking = [(k, m, m.block_start(asof - m.lag)) for k, m in enumerate(models)]
    while looking:
        fill_plans([(m, s) for _, m, s in looking])
        traded = [(k, m, s) for k, m, s in looking if m.plan(s).n]
        blocks = dict(
            zip([k for k, _, _ in traded], fill_blocks([(m, s) for _, m, s in traded]), strict=True)
        )
        further = []
        for k, m, start in looking:
            block = blocks.get(k)
            i = bisect_right(block.ts, asof - m.lag) - 1 if block is not None else -1
            if i >= 0 and block is not None:
                found[k] = (block, i)
            elif start > m.history_start:
                further.append((k, m, m.prev_block(start)))
        looking = further
    return found


def prepare(models: list[MarketModel], asof: int) -> None:
    """Compute what tickers, trades and orderbooks of ``models`` as of ``asof`` need, at once.

    Plans, 52-week ranges, the last day's aggregates and the edge blocks of every market are
    generated in a few vectorised passes over all of them; later calls for those markets at
    about that time are then cheap. Cold, this takes a while (tenths of a second for 300
    markets, more with ``activity_scale``): call it off the event loop.
    """
    around = []
    for m in models:
        te = asof - m.lag
        if te >= m.recent_start:
            # Whole days of plans: the last day's, and the next hour's (streams go on there).
            first = day_floor(max(te - DAY_MS - HOUR_MS, m.recent_start))
            around += [(m, s) for s in range(first, day_floor(te + HOUR_MS) + DAY_MS, HOUR_MS)]
    fill_plans(around)
    window: list[Item] = []
    edges: list[Item] = []
    years: list[Item] = []
    found = last_trades(models, asof)
    for m, last in zip(models, found, strict=True):
        if last is None or last[0].start < m.recent_start:
            continue
        block, i = last
        ts = block.ts[i]
        first = m.block_start(max(ts - DAY_MS, m.recent_start))
        window += [(m, s) for s in range(first + HOUR_MS, block.start, HOUR_MS)]
        edges.append((m, first))
        years.append((m, day_floor(ts)))
    fill_years(years)
    fill_aggs(window)
    fill_blocks(edges)
    for m, last in zip(models, found, strict=True):
        if last is not None:
            m.ticker_for(*last)


def warm_feeds(models: list[MarketModel], from_ms: int, to_ms: int) -> None:
    """Make publishing the trades of ``models`` between ``from_ms`` and ``to_ms`` cheap.

    Publication times are trade times plus each market's lag. Generates, in a few vectorised
    passes, the hour blocks holding those trades, the blocks a day before them (the tickers'
    24-hour windows), the 52-week ranges of their days and the tickers' running sums. Cold,
    this takes a while: call it off the event loop.
    """
    hours: list[Item] = []
    for m in models:
        first = m.block_start(max(from_ms - m.lag, m.recent_start + DAY_MS))
        hours += [(m, s) for s in range(first, to_ms - m.lag + 1, HOUR_MS)]
    days = {(id(m), day_floor(d)): m for m, h in hours for d in (h, h - DAY_MS)}
    fill_plans([(m, s) for (_, d), m in days.items() for s in m.chunk(d)])
    fill_blocks(hours + [(m, s - DAY_MS) for m, s in hours])
    fill_years(list({(id(m), day_floor(s)): (m, day_floor(s)) for m, s in hours}.values()))
    for m, s in hours:
        m._day_prefix(s)
        end = s - DAY_MS + HOUR_MS
        if end < day_floor(s):
            m._day_suffix(end)
