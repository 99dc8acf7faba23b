"""The deterministic market behind the simulator: a pure function of (seed, market, time).

Time is cut into blocks: hours from ``recent_start_ms`` (00:00 UTC seven days before the
exchange's start day, the oldest day ``days_ago`` reaches) onwards, whole days before it, back
to ``history_start_ms``. Each block's trade count, its opening, closing, highest and lowest
prices (its *plan*) are drawn in closed form from a hash of (seed, market, block), and its trades
are generated from that plan only when something needs them, so any moment can be computed
without simulating from the beginning. Day highs and lows (the 52-week fields) come from plans
alone; volumes and turnovers need the trades.

Every price and size is an integer count of 1e-8 units. Generated values are cached in
process-wide LRU caches (pure function, so exchanges with the same parameters share them).
"""

from __future__ import annotations

import calendar
import threading
import time
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate, compress, pairwise
from operator import mul
from random import Random
from typing import Any

from simulator._rng import SplitMix, hash_ints, mix64, poisson, unit_float
from simulator.markets import (
    SCALE,
    MarketSpec,
    band_of,
    price_down,
    price_up,
    snap_down,
    tick_at,
    tick_table,
)

SECOND_MS = 1000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS

# Octaves of the price path: (period, amplitude as a percentage of the daily volatility).
_OCTAVES = (
    (HOUR_MS, 20),
    (4 * HOUR_MS, 41),
    (DAY_MS, 100),
    (WEEK_MS, 250),
    (30 * DAY_MS, 330),
    (120 * DAY_MS, 420),
    (365 * DAY_MS, 480),
)
# Activity by UTC hour, in percent: Korean daytime (00:00-15:00 UTC) is busiest.
_SEASON = (120, 130, 125, 115, 110, 105, 110, 115, 120, 125, 125, 120,
           115, 110, 100, 80, 60, 45, 40, 40, 45, 60, 85, 105)  # fmt: skip
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


_PLANS = _LRU(400_000)
_BLOCKS = _LRU(250_000)  # counted in trades: about 40 MB at most
_AGGS = _LRU(400_000)
_MISC = _LRU(400_000)


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
        # Cache keys: plans and blocks do not depend on the era bounds (only on their length).
        self._ck_block = (
            seed, spec.code, spec.key, spec.base_price, spec.trades_per_hour, spec.daily_vol_ppb,
            spec.spread_ticks, spec.notional, activity_scale,
        )  # fmt: skip
        self._ck = (*self._ck_block, history_start_ms, recent_start_ms)
        self._salt_knot = tuple(hash_ints(seed, spec.key, 100 + i) for i in range(len(_OCTAVES)))
        self._salt_plan = hash_ints(seed, spec.key, 1)
        self._salt_day = hash_ints(seed, spec.key, 2)
        self._salt_week = hash_ints(seed, spec.key, 4)
        self._anchors: dict[int, int] = {}
        self._octaves = tuple((period, spec.daily_vol_ppb * f // 100) for period, f in _OCTAVES)
        self._octave_memo: list[tuple[int, int, int]] = [(-1, 0, 0)] * len(_OCTAVES)

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

    def anchor_bid(self, ts: int) -> int:
        """Return the best bid the path passes through at the block boundary ``ts``."""
        cached = self._anchors.get(ts)
        if cached is not None:
            return cached
        noise = 0
        memo = self._octave_memo
        # Before the recent era only the slow octaves (a day and longer) shape the path.
        first = 0 if ts >= self.recent_start else 2
        for index in range(first, len(self._octaves)):
            period, amp = self._octaves[index]
            k, r = divmod(ts, period)
            last = memo[index]
            if last[0] == k:
                v0, v1 = last[1], last[2]
            else:
                salt = self._salt_knot[index]
                v0 = mix64(salt ^ k) % 2_000_001 - 1_000_000
                v1 = mix64(salt ^ (k + 1)) % 2_000_001 - 1_000_000
                memo[index] = (k, v0, v1)
            noise += (v0 + (v1 - v0) * r // period) * amp // 1_000_000
        noise = max(noise, -750_000_000)
        bid = snap_down(self.table, self.spec.base_price * (1_000_000_000 + noise) // 1_000_000_000)
        if len(self._anchors) > 200_000:
            self._anchors.clear()
        self._anchors[ts] = bid
        return bid

    def ask_of(self, bid: int) -> int:
        return price_up(self.table, bid, self.spec.spread_ticks)

    def plan(self, start: int) -> Plan:
        """Return the closed-form plan of the block starting at ``start``."""
        length = self.block_length(start)
        if start < self.history_start:
            bid = self.anchor_bid(start)
            return Plan(start, length, 0, bid, bid, bid, bid, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        key = (self._ck_block, start, length)
        cached = _PLANS.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        plan = self._make_plan(start, length)
        _PLANS.put(key, plan)
        return plan

    def _range_plan(self, start: int, length: int, salt: int, vol_ppb: int) -> tuple[int, int, int]:
        # (bid high, bid low, hash) of a week or a day from its boundary bids and a hash.
        bid_o, bid_c = self.anchor_of(start), self.anchor_of(start + length)
        h = mix64(salt ^ start)
        up = int(unit_float(h) * vol_ppb)
        down = int(unit_float(mix64(h)) * vol_ppb)
        bid_h = snap_down(self.table, max(bid_o, bid_c) * (1_000_000_000 + up) // 1_000_000_000)
        bid_l = min(bid_o, bid_c)
        low_candidate = bid_l - bid_l * down // 1_000_000_000
        if low_candidate > 0:
            bid_l = min(bid_l, snap_down(self.table, low_candidate))
        return bid_h, bid_l, h

    def week_plan(self, week: int) -> tuple[int, int, int, int]:
        """Return (bid high, bid low, day of the high, day of the low) of the week from ``week``.

        Days stay within their week's bids and the named days reach them; hours likewise
        within their day. So the 52-week range needs no trade at all.
        """
        key = (self._ck_block, "W", week)
        cached = _MISC.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        bid_h, bid_l, h = self._range_plan(
            week, WEEK_MS, self._salt_week, self.spec.daily_vol_ppb * 265 // 100
        )
        result = (bid_h, bid_l, week + (h >> 20) % 7 * DAY_MS, week + (h >> 40) % 7 * DAY_MS)
        _MISC.put(key, result)
        return result

    def anchor_of(self, ts: int) -> int:
        """Return the path's best bid at a block boundary, kept within its week's range."""
        week = week_floor(ts)
        if ts == week:
            return self.anchor_bid(ts)
        week_h, week_l, _, _ = self.week_plan(week)
        return min(week_h, max(week_l, self.anchor_bid(ts)))

    def day_plan(self, day: int) -> tuple[int, int, int, int]:
        """Return (bid high, bid low, hour of the high, hour of the low) of a UTC day."""
        key = (self._ck_block, "D", day)
        cached = _MISC.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        week_h, week_l, day_h, day_l = self.week_plan(week_floor(day))
        bid_h, bid_l, h = self._range_plan(day, DAY_MS, self._salt_day, self.spec.daily_vol_ppb)
        bid_h = week_h if day == day_h else min(bid_h, week_h)
        bid_l = week_l if day == day_l else max(bid_l, week_l)
        result = (bid_h, bid_l, (h >> 20) % 24, (h >> 40) % 24)
        _MISC.put(key, result)
        return result

    def _make_plan(self, start: int, length: int) -> Plan:
        spec = self.spec
        day_h, day_l, hour_h, hour_l = self.day_plan(start - start % DAY_MS)
        bid_o = min(day_h, max(day_l, self.anchor_of(start)))
        bid_c = min(day_h, max(day_l, self.anchor_of(start + length)))
        stream = SplitMix(self._salt_plan ^ start)
        hour = (start // HOUR_MS) % 24
        if length == HOUR_MS:
            day_mult = 0.5 + unit_float(mix64(self._salt_day ^ (start // DAY_MS)))
            season = _SEASON[hour] / 100.0
            lam = spec.trades_per_hour * self.activity * season * day_mult
            lam *= 0.6 + 0.8 * stream.uniform()
            forced = hour in (hour_h, hour_l)
        else:
            lam = min(40.0, max(2.0, spec.trades_per_hour * 24.0 * self.activity / 40.0))
            lam *= 0.5 + stream.uniform()
            forced = True
        n = poisson(stream, lam)
        if forced:
            n = max(n, 4)
        if n == 0:
            return Plan(start, length, 0, bid_o, bid_c, bid_o, bid_o, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        side_first = int(stream.next64() & 1)
        side_last = int(stream.next64() & 1)
        if n == 1:
            bid_c, side_last = bid_o, side_first
        price_o = self.ask_of(bid_o) if side_first else bid_o
        price_c = self.ask_of(bid_c) if side_last else bid_c
        mid_bid = mid_side = i_high = i_low = 0
        bid_h = max(bid_o, bid_c)
        bid_l = min(bid_o, bid_c)
        if n == 3:
            mid_bid = bid_o if stream.next64() & 1 else bid_c
            mid_side = int(stream.next64() & 1)
            prices = (price_o, self.ask_of(mid_bid) if mid_side else mid_bid, price_c)
            high, low = max(prices), min(prices)
        elif n >= 4:
            block_vol = spec.daily_vol_ppb * 204 // 1000 * min(n, 12) // 12
            up = int(stream.uniform() * block_vol)
            down = int(stream.uniform() * block_vol)
            bid_h = min(day_h, snap_down(self.table, bid_h + bid_h * up // 1_000_000_000))
            low_candidate = bid_l - bid_l * down // 1_000_000_000
            if low_candidate > 0:
                bid_l = max(day_l, min(bid_l, snap_down(self.table, low_candidate)))
            if length == DAY_MS or hour == hour_h:
                bid_h = day_h
            if length == DAY_MS or hour == hour_l:
                bid_l = day_l
            i_high = 1 + int(stream.next64() % (n - 2))
            i_low = 1 + int(stream.next64() % (n - 3))
            if i_low >= i_high:
                i_low += 1
            high, low = self.ask_of(bid_h), bid_l
        else:
            high, low = max(price_o, price_c), min(price_o, price_c)
        return Plan(
            start, length, n, bid_o, bid_c, bid_h, bid_l, i_high, i_low, side_first,
            side_last, mid_bid, mid_side, price_o, high, low, price_c,
        )  # fmt: skip

    def block(self, start: int) -> Block:
        """Return the generated trades of the block starting at ``start``."""
        key = (self._ck_block, start, self.block_length(start))
        cached = _BLOCKS.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        block = self._generate(self.plan(start))
        _BLOCKS.put(key, block, cost=max(1, len(block.ts)))
        return block

    def _generate(self, plan: Plan) -> Block:
        n = plan.n
        if n == 0:
            return Block(plan.start, plan.length, [], [], [], [], [], [])
        spec = self.spec
        rng = Random(hash_ints(self.seed, spec.key, 3, plan.start))
        rnd = rng.random
        length = plan.length
        ts = sorted([plan.start + int(rnd() * length) for _ in range(n)])
        sid = [t * 10_000 for t in ts]
        # Trades in the same millisecond are numbered 0, 1, 2... in the last four digits.
        for i in [i for i in range(1, n) if ts[i] == ts[i - 1]]:
            sid[i] = sid[i - 1] + 1
        side = [1 if rnd() < 0.5 else 0 for _ in range(n)]
        bids = [plan.bid_open] * n
        side[0] = plan.side_first
        side[-1] = plan.side_last
        bids[-1] = plan.bid_close
        if n == 3:
            bids[1] = plan.mid_bid
            side[1] = plan.mid_side
        elif n >= 4:
            side[plan.i_high] = 1
            side[plan.i_low] = 0
            keys = sorted(
                ((0, plan.bid_open), (plan.i_high, plan.bid_high), (plan.i_low, plan.bid_low),
                 (n - 1, plan.bid_close))
            )  # fmt: skip
            table = self.table
            lo, hi = plan.bid_low, plan.bid_high
            targets = [plan.bid_close] * n
            for (a, va), (c, vc) in pairwise(keys):
                span, rise = c - a, vc - va
                targets[a:c] = [va + rise * k // span for k in range(span)]
            # An AR(1) wobble, in ticks, around the straight path between the key points.
            noise = [(rnd() - 0.5) * 3.0 for _ in range(n)]
            devs = accumulate(noise, lambda d, x: d * 0.7 + x)
            _, band_hi, tick = band_of(table, lo)
            if self.ask_of(hi) < band_hi:
                moved = [t + int(d) * tick for t, d in zip(targets, devs, strict=True)]
                snapped = [m - m % tick for m in moved]
            else:
                snapped = [
                    snap_down(table, t + int(d) * tick_at(table, t))
                    for t, d in zip(targets, devs, strict=True)
                ]
            bids = [hi if b > hi else (lo if b < lo else b) for b in snapped]
            for index, value in keys:
                bids[index] = value
        lo_p = min(bids)
        _, band_hi, tick = band_of(self.table, lo_p)
        spread = self.spec.spread_ticks * tick
        if self.ask_of(max(bids)) < band_hi:
            prices = [b + spread if s else b for b, s in zip(bids, side, strict=True)]
        else:
            ask_of = self.ask_of
            prices = [ask_of(b) if s else b for b, s in zip(bids, side, strict=True)]
        notional = spec.notional
        mult = _SIZE_MULT
        sizes = [
            notional * mult[int(u * u * 64)] // 1000 * SCALE for u in [rnd() for _ in range(n)]
        ]
        jitter = [700 + int(rnd() * 600) for _ in range(n)]
        volume = [
            max(1, size // p * j // 1000) for size, p, j in zip(sizes, prices, jitter, strict=True)
        ]
        return Block(plan.start, length, ts, sid, prices, volume, side, bids)

    def agg(self, start: int) -> Agg:
        """Return the aggregate of a whole block (generating it if needed)."""
        if self.plan(start).n == 0:
            return EMPTY
        key = (self._ck_block, start, self.block_length(start))
        cached = _AGGS.get(key)
        if cached is None:
            cached = self.block(start).agg
            _AGGS.put(key, cached)
        return cached  # type: ignore[no-any-return]

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

    def day_range(self, day_start: int) -> tuple[int, int] | None:
        """Return (high, low) trade prices of a UTC day from its plan (None before history)."""
        if day_start < day_floor(self.history_start):
            return None
        bid_h, bid_l, _, _ = self.day_plan(day_start)
        return self.ask_of(bid_h), bid_l

    def year_range(self, day_start: int) -> tuple[int, int, int, int]:
        """Return (high, a day it traded, low, a day it traded) in the 364 days to ``day_start``.

        Whole weeks are read from week plans, the ragged ends from day plans; on ties the
        later day wins.
        """
        key = (self._ck, "yr", day_start)
        cached = _MISC.get(key)
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        high = high_day = low = low_day = 0
        day = max(day_start - 364 * DAY_MS, day_floor(self.history_start))
        while day < day_start:
            if day == week_floor(day) and day + WEEK_MS <= day_start:
                bid_h, bid_l, at_h, at_l = self.week_plan(day)
                ranges = [(self.ask_of(bid_h), at_h, bid_l, at_l)]
                step = WEEK_MS
            else:
                bid_h, bid_l, _, _ = self.day_plan(day)
                ranges = [(self.ask_of(bid_h), day, bid_l, day)]
                step = DAY_MS
            for day_high, at_h, day_low, at_l in ranges:
                if day_high > high or (day_high == high and at_h > high_day):
                    high, high_day = day_high, at_h
                if not low or day_low < low or (day_low == low and at_l > low_day):
                    low, low_day = day_low, at_l
            day += step
        result = (high, high_day, low, low_day)
        _MISC.put(key, result)
        return result

    def _day_prefix(self, start: int) -> Agg:
        # Aggregate of the trades of start's UTC day that precede the block at ``start``.
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
        while begin < start:
            acc = combine(acc, self.agg(begin))
            begin += HOUR_MS
            if begin < start:
                _MISC.put((self._ck, "dp", begin), acc)
        _MISC.put(key, acc)
        return acc

    def _sum_between(self, low_excl: int, block_start: int) -> tuple[int, int]:
        # (volume, turnover) of trades with low_excl < ts < block_start.
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
