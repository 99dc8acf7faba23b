"""Closed-form plans of weeks, days and blocks, for many markets and times in one pass.

The price path passes through an *anchor* best bid at every block boundary: the sum of seven
octaves of value noise (an hour to a year; before the hour blocks only a day and longer),
clamped to -75 %, applied to the market's base price and snapped to the tick. A week's plan
draws its highest and lowest bid around its two boundary anchors; a day's plan does the same
within its week (and the days the week names reach the week's extremes); anchors inside a week
are kept within its range. A block's plan draws its trade count (Poisson around the market's
rate, by UTC hour and a per-day factor; at least four in the hours holding the day's high and
low, and in every day block) and its opening, closing, highest and lowest bids within its day,
so the 52-week fields and candles from plans never need a trade.

Every function takes ``rows`` (each element's market in a :class:`~simulator.arrays.Params`)
and times in epoch milliseconds, and answers element-wise.
"""

from __future__ import annotations

import numpy as np

from simulator.arrays import (
    I64,
    U64,
    Params,
    Ticks,
    mix64,
    mul_frac,
    poisson,
    stream,
    u64,
    uniform,
)

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS

# Octaves of the price path: (period, amplitude as a percentage of the daily volatility).
OCTAVES = (
    (HOUR_MS, 20),
    (4 * HOUR_MS, 41),
    (DAY_MS, 100),
    (WEEK_MS, 250),
    (30 * DAY_MS, 330),
    (120 * DAY_MS, 420),
    (365 * DAY_MS, 480),
)
# Activity by UTC hour, in percent: Korean daytime (00:00-15:00 UTC) is busiest.
SEASON = (120, 130, 125, 115, 110, 105, 110, 115, 120, 125, 125, 120,
          115, 110, 100, 80, 60, 45, 40, 40, 45, 60, 85, 105)  # fmt: skip
_SEASON = np.array(SEASON, dtype=np.float64) / 100.0
PLAN_FIELDS = (
    "start", "length", "n", "bid_open", "bid_close", "bid_high", "bid_low", "i_high", "i_low",
    "side_first", "side_last", "mid_bid", "mid_side", "open", "high", "low", "close",
)  # fmt: skip


def week_floor(ts: I64) -> I64:
    """Return the Monday 00:00 UTC starting the week of each ``ts``."""
    return ((ts // DAY_MS - 4) // 7 * 7 + 4) * DAY_MS


def _unique(rows: I64, ts: I64) -> tuple[I64, I64, I64]:
    # Distinct (row, time) pairs and the inverse that spreads their answers back.
    keys = rows.astype(np.int64) * (1 << 44) + ts
    uniq, inverse = np.unique(keys, return_inverse=True)
    return uniq >> 44, uniq & ((1 << 44) - 1), inverse.reshape(-1)


def anchors(p: Params, ticks: Ticks, rows: I64, ts: I64) -> I64:
    """Return the anchor best bid of each market at each block boundary ``ts``."""
    noise = np.zeros(ts.shape, dtype=np.int64)
    recent = ts >= p.recent_start[rows]
    vol = p.vol_ppb[rows]
    for index, (period, percent) in enumerate(OCTAVES):
        k, r = np.divmod(ts, period)
        salt = p.knot_salts[rows, index]
        v0 = (mix64(salt ^ u64(k)) % np.uint64(2_000_001)).astype(np.int64) - 1_000_000
        v1 = (mix64(salt ^ u64(k + 1)) % np.uint64(2_000_001)).astype(np.int64) - 1_000_000
        term = (v0 + (v1 - v0) * r // period) * (vol * percent // 100) // 1_000_000
        # Before the recent era only the slow octaves (a day and longer) shape the path.
        noise += np.where(recent, term, 0) if index < 2 else term
    noise = np.maximum(noise, -750_000_000)
    quote = p.quote[rows]
    return ticks.snap_down(mul_frac(p.base_price[rows], 1_000_000_000 + noise), quote)


def _ranges(
    p: Params, ticks: Ticks, rows: I64, start: I64, bid_o: I64, bid_c: I64, salt: U64, vol: I64
) -> tuple[I64, I64, U64]:
    # (bid high, bid low, hash) of weeks or days from their boundary bids and a hash.
    h = mix64(salt ^ u64(start))
    up = (uniform(h) * vol.astype(np.float64)).astype(np.int64)
    down = (uniform(mix64(h)) * vol.astype(np.float64)).astype(np.int64)
    quote = p.quote[rows]
    bid_h = ticks.snap_down(mul_frac(np.maximum(bid_o, bid_c), 1_000_000_000 + up), quote)
    bid_l = np.minimum(bid_o, bid_c)
    candidate = bid_l - mul_frac(bid_l, down)
    lowered = np.minimum(bid_l, ticks.snap_down(candidate, quote))
    return bid_h, np.where(candidate > 0, lowered, bid_l), h


def week_plans(p: Params, ticks: Ticks, rows: I64, weeks: I64) -> tuple[I64, I64, I64, I64]:
    """Return (bid high, bid low, day of the high, day of the low) of each week.

    Days stay within their week's bids and the named days reach them; hours likewise
    within their day. So the 52-week range needs no trade at all.
    """
    urows, uweeks, inverse = _unique(rows, weeks)
    both = anchors(
        p, ticks, np.concatenate([urows, urows]), np.concatenate([uweeks, uweeks + WEEK_MS])
    )
    bid_o, bid_c = both[: len(uweeks)], both[len(uweeks) :]
    bid_h, bid_l, h = _ranges(
        p, ticks, urows, uweeks, bid_o, bid_c, p.week_salt[urows], p.vol_ppb[urows] * 265 // 100
    )
    day_h = uweeks + ((h >> np.uint64(20)) % np.uint64(7)).astype(np.int64) * DAY_MS
    day_l = uweeks + ((h >> np.uint64(40)) % np.uint64(7)).astype(np.int64) * DAY_MS
    return bid_h[inverse], bid_l[inverse], day_h[inverse], day_l[inverse]


def anchors_in_week(p: Params, ticks: Ticks, rows: I64, ts: I64) -> I64:
    """Return the anchors at ``ts`` kept within their week's range (boundaries as they are)."""
    week = week_floor(ts)
    week_h, week_l, _, _ = week_plans(p, ticks, rows, week)
    bid = anchors(p, ticks, rows, ts)
    return np.where(ts == week, bid, np.minimum(week_h, np.maximum(week_l, bid)))


def day_plans(p: Params, ticks: Ticks, rows: I64, days: I64) -> tuple[I64, I64, I64, I64]:
    """Return (bid high, bid low, hour of the high, hour of the low) of each UTC day."""
    urows, udays, inverse = _unique(rows, days)
    week_h, week_l, day_h, day_l = week_plans(p, ticks, urows, week_floor(udays))
    both = anchors_in_week(
        p, ticks, np.concatenate([urows, urows]), np.concatenate([udays, udays + DAY_MS])
    )
    bid_o, bid_c = both[: len(udays)], both[len(udays) :]
    bid_h, bid_l, h = _ranges(
        p, ticks, urows, udays, bid_o, bid_c, p.day_salt[urows], p.vol_ppb[urows]
    )
    bid_h = np.where(udays == day_h, week_h, np.minimum(bid_h, week_h))
    bid_l = np.where(udays == day_l, week_l, np.maximum(bid_l, week_l))
    hour_h = ((h >> np.uint64(20)) % np.uint64(24)).astype(np.int64)
    hour_l = ((h >> np.uint64(40)) % np.uint64(24)).astype(np.int64)
    return bid_h[inverse], bid_l[inverse], hour_h[inverse], hour_l[inverse]


def block_plans(p: Params, ticks: Ticks, rows: I64, starts: I64, lengths: I64) -> dict[str, I64]:
    """Return the plans of blocks (hours, or days before the hour blocks) as arrays by field.

    Blocks before their market's history hold no trade (their bids are the anchor there).
    """
    size = len(starts)
    day_h, day_l, hour_h, hour_l = day_plans(p, ticks, rows, starts - starts % DAY_MS)
    bounds = anchors_in_week(
        p, ticks, np.concatenate([rows, rows]), np.concatenate([starts, starts + lengths])
    )
    bid_o = np.minimum(day_h, np.maximum(day_l, bounds[:size]))
    bid_c = np.minimum(day_h, np.maximum(day_l, bounds[size:]))
    seed = p.plan_salt[rows] ^ u64(starts)
    hour = (starts // HOUR_MS) % 24
    hourly = lengths == HOUR_MS
    tph, activity = p.trades_per_hour[rows], p.activity[rows]
    day_mult = 0.5 + uniform(mix64(p.day_salt[rows] ^ u64(starts // DAY_MS)))
    lam_hour = tph * activity * _SEASON[hour] * day_mult
    lam_day = np.minimum(40.0, np.maximum(2.0, tph * 24.0 * activity / 40.0))
    u1 = uniform(stream(seed, 1))
    lam = np.where(hourly, lam_hour * (0.6 + 0.8 * u1), lam_day * (0.5 + u1))
    n, used = poisson(lam, seed, 2)
    forced = ~hourly | (hour == hour_h) | (hour == hour_l)
    n = np.where(forced, np.maximum(n, 4), n)
    d = 2 + used
    side_first = (stream(seed, d) & np.uint64(1)).astype(np.int64)
    side_last = (stream(seed, d + 1) & np.uint64(1)).astype(np.int64)
    one = n == 1
    bid_c = np.where(one, bid_o, bid_c)
    side_last = np.where(one, side_first, side_last)
    quote, spread = p.quote[rows], p.spread_ticks[rows]

    def ask_of(bid: I64) -> I64:
        return ticks.up(bid, quote, spread)

    price_o = np.where(side_first == 1, ask_of(bid_o), bid_o)
    price_c = np.where(side_last == 1, ask_of(bid_c), bid_c)
    bid_h, bid_l = np.maximum(bid_o, bid_c), np.minimum(bid_o, bid_c)
    high, low = np.maximum(price_o, price_c), np.minimum(price_o, price_c)
    # Three trades: one more point between the open and the close.
    three = n == 3
    mid_bid = np.where(three, np.where(stream(seed, d + 2) & np.uint64(1), bid_o, bid_c), 0)
    mid_side = np.where(three, (stream(seed, d + 3) & np.uint64(1)).astype(np.int64), 0)
    mid_price = np.where(mid_side == 1, ask_of(mid_bid), mid_bid)
    high = np.where(three, np.maximum(high, mid_price), high)
    low = np.where(three, np.minimum(low, mid_price), low)
    # Four or more: a high and a low of their own, at drawn indexes.
    four = n >= 4
    block_vol = p.vol_ppb[rows] * 204 // 1000 * np.minimum(n, 12) // 12
    up = (uniform(stream(seed, d + 2)) * block_vol.astype(np.float64)).astype(np.int64)
    down = (uniform(stream(seed, d + 3)) * block_vol.astype(np.float64)).astype(np.int64)
    raised = np.minimum(day_h, ticks.snap_down(bid_h + mul_frac(bid_h, up), quote))
    candidate = bid_l - mul_frac(bid_l, down)
    lowered = np.where(
        candidate > 0,
        np.maximum(day_l, np.minimum(bid_l, ticks.snap_down(candidate, quote))),
        bid_l,
    )
    raised = np.where(~hourly | (hour == hour_h), day_h, raised)
    lowered = np.where(~hourly | (hour == hour_l), day_l, lowered)
    spread_n = np.where(four, n, 4)
    i_high = 1 + (stream(seed, d + 4) % u64(spread_n - 2)).astype(np.int64)
    i_low = 1 + (stream(seed, d + 5) % u64(spread_n - 3)).astype(np.int64)
    i_low = np.where(i_low >= i_high, i_low + 1, i_low)
    bid_h = np.where(four, raised, bid_h)
    bid_l = np.where(four, lowered, bid_l)
    high = np.where(four, ask_of(bid_h), high)
    low = np.where(four, bid_l, low)
    before = starts < p.history_start[rows]
    if before.any():
        rest = anchors(p, ticks, rows[before], starts[before])
        bid_o[before] = rest
        bid_c[before] = rest
        n[before] = 0
        three &= ~before
        four &= ~before
    zero = n == 0
    none = np.zeros(size, dtype=np.int64)
    return {
        "start": starts,
        "length": lengths,
        "n": n,
        "bid_open": bid_o,
        "bid_close": bid_c,
        "bid_high": np.where(zero, bid_o, bid_h),
        "bid_low": np.where(zero, bid_o, bid_l),
        "i_high": np.where(four, i_high, none),
        "i_low": np.where(four, i_low, none),
        "side_first": np.where(zero, none, side_first),
        "side_last": np.where(zero, none, side_last),
        "mid_bid": np.where(three, mid_bid, none),
        "mid_side": np.where(three, mid_side, none),
        "open": np.where(zero, none, price_o),
        "high": np.where(zero, none, high),
        "low": np.where(zero, none, low),
        "close": np.where(zero, none, price_c),
    }
