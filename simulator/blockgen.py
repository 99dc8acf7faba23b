"""Trades from block plans, any number of blocks of any markets in one vectorised pass.

A block's trades follow from its plan (trade count; opening, closing, highest and lowest best
bid; the indexes of the high and the low; the first and last sides) and from the block's own
stream of 64-bit numbers: trade ``i`` reads splitmix64 at positions ``8 * i`` (A) and
``8 * i + 1`` (B) of the block's key. A trade's draws therefore do not depend on which other
blocks are generated alongside it: one block alone and the same block in a batch give the
same trades.

- times: ``start + ((A >> 32) * length >> 32)``, sorted; trades in the same millisecond are
  numbered 0, 1, 2... in the last four digits of ``sequential_id = ts * 10000 + n``;
- sides: bit 31 of A; the plan fixes the first, the last, the high (a BID, printing at the
  ask) and the low (an ASK, printing at the bid); a BID prints ``spread_ticks`` above the bid;
- best bids: straight lines through the plan's key points (open, high, low, close at their
  indexes), moved by a correlated wobble of -3..3 ticks (the sum of the last three values of
  ``(A & 0xFFFF) % 3 - 1``), snapped down to the tick and kept within the plan's low and high;
  the key points exactly as planned;
- volumes: a notional from a log-spaced table indexed by ``(B >> 32)**2 >> 58`` (smaller
  sizes likelier) times a jitter of ``0.700 + (B & 0xFFFFFFFF) % 600 / 1000``, divided by the
  price, at least 1 (IEEE basic float operations, identical everywhere).

Values are int64 (prices and volumes in 1e-8 units stay far below 2**63); sums of volumes and
of products of price and volume are taken exactly from 21-bit pieces.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from simulator.arrays import GOLDEN, I64, U64, Mask, Params, Ticks, mix64, u64

if TYPE_CHECKING:
    from simulator.model import Agg

_VOLUME_CAP = float(1 << 62)


@dataclass(frozen=True, slots=True)
class Trades:
    """The trades of many blocks as parallel arrays; block ``k`` is ``bounds[k]:bounds[k+1]``."""

    bounds: tuple[int, ...]
    ts: I64
    sid: I64
    price: I64
    volume: I64
    side: I64
    bid: I64

    def lists(self, k: int) -> tuple[list[int], ...]:
        """Return block ``k``'s (ts, sid, price, volume, side, bid) as lists of ints."""
        a, b = self.bounds[k], self.bounds[k + 1]
        return tuple(
            column[a:b].tolist()
            for column in (self.ts, self.sid, self.price, self.volume, self.side, self.bid)
        )

    def aggregates(self) -> list[Agg]:
        """Return each block's aggregate (``EMPTY`` for a block without trades)."""
        from simulator.model import EMPTY, Agg

        bounds = np.array(self.bounds, dtype=np.int64)
        full = np.flatnonzero(bounds[1:] > bounds[:-1])
        out: list[Agg] = [EMPTY] * (len(bounds) - 1)
        if not len(full):
            return out
        first, last = bounds[full], bounds[full + 1] - 1
        bid_volume = np.where(self.side == 1, self.volume, 0)
        columns = (
            np.maximum.reduceat(self.price, first).tolist(),
            np.minimum.reduceat(self.price, first).tolist(),
            self.price[first].tolist(),
            self.price[last].tolist(),
            self.ts[first].tolist(),
            self.ts[last].tolist(),
            _sums(self.volume, first),
            _sums(bid_volume, first),
            _dot(self.price, self.volume, first),
        )
        for k, high, low, open_, close, first_ts, last_ts, vol, bid_vol, turnover in zip(
            full.tolist(), *columns, strict=True
        ):
            n = self.bounds[k + 1] - self.bounds[k]
            out[k] = Agg(
                n, open_, high, low, close, first_ts, last_ts, vol, turnover, vol - bid_vol,
                bid_vol,
            )  # fmt: skip
        return out


_LIMB = 21
_LIMB_MASK = (1 << _LIMB) - 1


def _limbs(values: I64) -> list[I64]:
    # Three 21-bit pieces of non-negative values below 2**63 (the top one below 2**21).
    return [(values >> (_LIMB * k)) & _LIMB_MASK for k in range(3)]


def _sums(values: I64, first: I64) -> list[int]:
    # Exact per-segment sums as Python ints (limb sums cannot overflow int64).
    parts = [np.add.reduceat(limb, first).tolist() for limb in _limbs(values)]
    return [a + (b << _LIMB) + (c << (2 * _LIMB)) for a, b, c in zip(*parts, strict=True)]


def _dot(x: I64, y: I64, first: I64) -> list[int]:
    # Exact per-segment sums of x * y as Python ints, from products of 21-bit limbs.
    xs, ys = _limbs(x), _limbs(y)
    total = [0] * len(first)
    for i, xi in enumerate(xs):
        for j, yj in enumerate(ys):
            part = np.add.reduceat(xi * yj, first).tolist()
            shift = _LIMB * (i + j)
            total = [t + (v << shift) for t, v in zip(total, part, strict=True)]
    return total


def generate(
    p: Params, ticks: Ticks, rows: I64, plans: dict[str, I64], size_mult: Sequence[int]
) -> Trades:
    """Return the trades of the blocks ``plans`` (arrays by field), block ``k`` of ``rows[k]``."""
    n = plans["n"]
    bounds = np.zeros(len(n) + 1, dtype=np.int64)
    np.cumsum(n, out=bounds[1:])
    total = int(bounds[-1])
    block = np.repeat(np.arange(len(n)), n)
    first = bounds[:-1]
    local = np.arange(total, dtype=np.int64) - np.repeat(first, n)
    key = np.repeat(mix64(p.trade_salt[rows] ^ u64(plans["start"])), n)
    counter = u64(local) * np.uint64(8)

    def draw(field: int) -> U64:
        return mix64(key + (counter + np.uint64(field)) * GOLDEN)

    draw_a = draw(0)
    length = np.repeat(u64(plans["length"]), n)
    offset = ((draw_a >> np.uint64(32)) * length >> np.uint64(32)).astype(np.int64)
    # Sorting (block, offset) keys orders each block's times in place (offsets < 2**27).
    ordered = np.sort(block.astype(np.int64) << 28 | offset) & ((1 << 28) - 1)
    ts = np.repeat(plans["start"], n) + ordered
    index = np.arange(total, dtype=np.int64)
    new_ms = np.ones(total, dtype=bool)
    new_ms[1:] = ts[1:] != ts[:-1]
    run_start = np.maximum.accumulate(np.where(new_ms, index, 0)) if total else index
    sid = ts * 10_000 + (index - run_start)

    # Blocks whose prices (asks included) all lie in one tick band use its tick throughout.
    quote_b, spread_b = p.quote[rows], p.spread_ticks[rows]
    tick_b = ticks.at(plans["bid_low"], quote_b)
    top_ask = ticks.up(plans["bid_high"], quote_b, spread_b)
    flat_b = top_ask < ticks.band_top(plans["bid_low"], quote_b)
    tick = np.repeat(np.where(flat_b, tick_b, 0), n)
    quote = np.repeat(quote_b, n)

    side = ((draw_a >> np.uint64(31)) & np.uint64(1)).astype(np.int64)
    bid = np.repeat(plans["bid_open"], n)
    four = n >= 4
    if four.any():
        mask = np.repeat(four, n)
        wobble = draw_a[mask] & np.uint64(0xFFFF)
        bid[mask] = _paths(n, four, plans, local[mask], wobble, tick[mask], quote[mask], ticks)
    some = n > 0
    last = bounds[1:] - 1
    three = n == 3
    i_high, i_low = plans["i_high"], plans["i_low"]
    side[first[three] + 1] = plans["mid_side"][three]
    bid[first[three] + 1] = plans["mid_bid"][three]
    side[first[four] + i_high[four]] = 1
    side[first[four] + i_low[four]] = 0
    bid[first[four] + i_high[four]] = plans["bid_high"][four]
    bid[first[four] + i_low[four]] = plans["bid_low"][four]
    side[first[some]] = plans["side_first"][some]
    bid[first[some]] = plans["bid_open"][some]
    side[last[some]] = plans["side_last"][some]
    bid[last[some]] = plans["bid_close"][some]
    spread = np.repeat(spread_b, n)
    ask = bid + spread * tick
    general = tick == 0
    if general.any():
        ask[general] = ticks.up(bid[general], quote[general], spread[general])
    price = np.where(side == 1, ask, bid)

    draw_b = draw(1)
    u = draw_b >> np.uint64(32)
    mult = np.array(size_mult, dtype=np.int64)[((u * u) >> np.uint64(58)).astype(np.int64)]
    size = (np.repeat(p.notional[rows], n) * mult // 1000).astype(np.float64)
    jitter = (((draw_b & np.uint64(0xFFFFFFFF)) % np.uint64(600)).astype(np.int64) + 700) * 100_000
    raw = np.minimum(size / price.astype(np.float64) * jitter.astype(np.float64), _VOLUME_CAP)
    volume = np.maximum(raw.astype(np.int64), 1)
    return Trades(tuple(bounds.tolist()), ts, sid, price, volume, side, bid)


def _paths(
    n: I64,
    four: Mask,
    plans: dict[str, I64],
    local: I64,
    wobble_draw: U64,
    tick: I64,
    quote: I64,
    ticks: Ticks,
) -> I64:
    # The best bids of the blocks with four or more trades (their elements only): straight
    # lines through the key points in three segments, wobbled, snapped and kept in range.
    i_high, i_low = plans["i_high"][four], plans["i_low"][four]
    bid_high, bid_low = plans["bid_high"][four], plans["bid_low"][four]
    count = n[four]
    high_first = i_high < i_low
    k1, k2 = np.minimum(i_high, i_low), np.maximum(i_high, i_low)
    v1 = np.where(high_first, bid_high, bid_low)
    v2 = np.where(high_first, bid_low, bid_high)
    zero = np.zeros_like(k1)
    seg_len = np.stack([k1, k2 - k1, count - k2], axis=1).ravel()
    ka = np.stack([zero, k1, k2], axis=1).ravel()
    span = np.stack([k1, k2 - k1, count - 1 - k2], axis=1).ravel()
    va = np.stack([plans["bid_open"][four], v1, v2], axis=1).ravel()
    vc = np.stack([v1, v2, plans["bid_close"][four]], axis=1).ravel()
    q, r = np.divmod(vc - va, span)
    step = local - np.repeat(ka, seg_len)
    target = np.repeat(va, seg_len) + np.repeat(q, seg_len) * step
    target += (np.repeat(r, seg_len) * step) // np.repeat(span, seg_len)
    w = (wobble_draw % np.uint64(3)).astype(np.int64) - 1
    dev = w.copy()
    dev[1:] += np.where(local[1:] >= 1, w[:-1], 0)
    dev[2:] += np.where(local[2:] >= 2, w[:-2], 0)
    general = tick == 0
    step_tick = tick.copy()
    step_tick[general] = ticks.at(target[general], quote[general])
    moved = target + dev * step_tick
    # A single-band block snaps with its tick: anything that leaves the band is clamped anyway.
    snapped = moved - moved % np.where(general, 1, tick)
    snapped[general] = ticks.snap_down(moved[general], quote[general])
    low = np.repeat(bid_low, count)
    high = np.repeat(bid_high, count)
    bids: I64 = np.minimum(np.maximum(snapped, low), high)
    return bids
