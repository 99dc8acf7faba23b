"""The model's arithmetic over numpy arrays: many markets and blocks in one pass.

Each function here is the element-wise twin of a scalar rule elsewhere in the simulator and
gives the same numbers bit for bit: 64-bit hashes wrap like ``_rng.mix64``, integer division
floors like Python's, and floats use only IEEE-754 basic operations, which are correctly
rounded on every machine. Prices stay below 2**56 (1e-8 units), so products that could leave
int64 are split (:func:`mul_frac`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
U64 = NDArray[np.uint64]
F64 = NDArray[np.float64]
Mask = NDArray[np.bool_]

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_TWO_53 = float(1 << 53)
_BILLION = 1_000_000_000
# Quote currencies' tick tables live side by side on one axis, 2**58 apart.
_QUOTE_SPAN = 1 << 58


def mix64(x: U64) -> U64:
    """Return the splitmix64 finaliser of every element (``_rng.mix64``)."""
    z = x + GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def stream(seed: U64, position: int | I64 | U64) -> U64:
    """Return draw number ``position`` (1 first) of ``SplitMix(seed)`` for every seed."""
    return mix64(seed + np.asarray(position, dtype=np.uint64) * GOLDEN)


def uniform(h: U64) -> F64:
    """Map 64-bit hashes to floats in [0, 1) (``_rng.unit_float``)."""
    return (h >> np.uint64(11)).astype(np.float64) / _TWO_53


def u64(values: I64) -> U64:
    """Reinterpret non-negative int64 values as uint64 (for hashing)."""
    return values.astype(np.uint64)


def mul_frac(x: I64, factor: I64) -> I64:
    """Return ``x * factor // 10**9`` exactly, for ``0 <= x < 2**56`` and ``|factor| < 2**32``."""
    high, low = np.divmod(x, _BILLION)
    return high * factor + (low * factor) // _BILLION


def exp_neg(x: F64) -> F64:
    """Return e**-x element-wise with the same operations as ``_rng.exp_neg``."""
    x = x.copy()
    halvings = np.zeros(x.shape, dtype=np.int64)
    big = x > 0.5
    while big.any():
        x[big] /= 2.0
        halvings[big] += 1
        big = x > 0.5
    term = np.ones(x.shape)
    total = np.ones(x.shape)
    for k in range(1, 18):
        term = term * (-x / k)
        total = total + term
    for h in range(int(halvings.max(initial=0))):
        more = halvings > h
        total[more] = total[more] * total[more]
    return total


def poisson(lam: F64, seed: U64, first: int) -> tuple[I64, I64]:
    """Return (counts, draws used) like ``_rng.poisson`` reading ``SplitMix(seed)`` from ``first``.

    Below a mean of 40 one draw inverts the distribution; from 40 on, four draws make an
    Irwin-Hall normal; a mean of zero or less uses no draw.
    """
    count = np.zeros(lam.shape, dtype=np.int64)
    used = np.where(lam <= 0.0, 0, np.where(lam < 40.0, 1, 4))
    small = (lam > 0.0) & (lam < 40.0)
    if small.any():
        lam_s = lam[small]
        u = uniform(stream(seed[small], first))
        p = exp_neg(lam_s)
        cdf = p.copy()
        k = np.zeros(lam_s.shape, dtype=np.int64)
        going = (u > cdf) & (k < 400)
        while going.any():
            k[going] += 1
            p[going] = p[going] * (lam_s[going] / k[going].astype(np.float64))
            cdf[going] = cdf[going] + p[going]
            going = (u > cdf) & (k < 400)
        count[small] = k
    large = lam >= 40.0
    if large.any():
        lam_l = lam[large]
        s = seed[large]
        z = (
            uniform(stream(s, first))
            + uniform(stream(s, first + 1))
            + uniform(stream(s, first + 2))
            + uniform(stream(s, first + 3))
            - 2.0
        ) * 1.7320508075688772
        count[large] = np.maximum(0, (lam_l + np.sqrt(lam_l) * z + 0.5).astype(np.int64))
    return count, used


class Ticks:
    """The tick tables of every quote currency on one axis (the rules of ``markets.tick_at``).

    ``quote`` arrays hold each element's table index (see :func:`table_index`).
    """

    __slots__ = ("lows", "min_ticks", "ticks")

    def __init__(self, tables: Sequence[tuple[tuple[int, int], ...]]) -> None:
        lows: list[int] = []
        ticks: list[int] = []
        for q, table in enumerate(tables):
            lows += [q * _QUOTE_SPAN + low for low, _ in reversed(table)]
            ticks += [t for _, t in reversed(table)]
        self.lows = np.array(lows, dtype=np.int64)
        self.ticks = np.array(ticks, dtype=np.int64)
        self.min_ticks = np.array([table[-1][1] for table in tables], dtype=np.int64)

    def at(self, prices: I64, quote: I64) -> I64:
        place = np.maximum(prices, 0) + quote * _QUOTE_SPAN
        return self.ticks[np.searchsorted(self.lows, place, side="right") - 1]

    def band_top(self, prices: I64, quote: I64) -> I64:
        """Return the exclusive upper bound of each price's tick band."""
        place = np.maximum(prices, 0) + quote * _QUOTE_SPAN
        index = np.searchsorted(self.lows, place, side="right")
        tops = np.append(self.lows, np.iinfo(np.int64).max)[index]
        return np.where(index < len(self.lows), tops - quote * _QUOTE_SPAN, tops)

    def snap_down(self, prices: I64, quote: I64) -> I64:
        snapped = prices - prices % self.at(prices, quote)
        return np.where(snapped > 0, snapped, self.min_ticks[quote])

    def up(self, prices: I64, quote: I64, steps: I64) -> I64:
        """Return each price moved ``steps`` ticks up (``markets.price_up``)."""
        prices = prices.copy()
        for step in range(int(steps.max(initial=0))):
            more = steps > step
            prices[more] += self.at(prices[more], quote[more])
        return prices


@dataclass(frozen=True, slots=True)
class Params:
    """What the vectorised rules need of each market, one row per market."""

    base_price: I64
    trades_per_hour: F64
    activity: F64
    vol_ppb: I64
    spread_ticks: I64
    notional: I64
    recent_start: I64
    history_start: I64
    quote: I64
    knot_salts: U64
    """(markets, octaves)."""
    plan_salt: U64
    day_salt: U64
    week_salt: U64
    trade_salt: U64

    @classmethod
    def of(cls, rows: Sequence[tuple[int | float | tuple[int, ...], ...]]) -> Params:
        """Build from one tuple per market, in the order of the fields (salts as ints)."""
        cols = list(zip(*rows, strict=True)) if rows else [()] * 14
        ints = [np.array(c, dtype=np.int64).reshape(-1) for c in cols[:9]]
        return cls(
            base_price=ints[0],
            trades_per_hour=np.array(cols[1], dtype=np.float64).reshape(-1),
            activity=np.array(cols[2], dtype=np.float64).reshape(-1),
            vol_ppb=ints[3],
            spread_ticks=ints[4],
            notional=ints[5],
            recent_start=ints[6],
            history_start=ints[7],
            quote=ints[8],
            knot_salts=np.array(cols[9], dtype=np.uint64).reshape(len(rows), -1),
            plan_salt=np.array(cols[10], dtype=np.uint64).reshape(-1),
            day_salt=np.array(cols[11], dtype=np.uint64).reshape(-1),
            week_salt=np.array(cols[12], dtype=np.uint64).reshape(-1),
            trade_salt=np.array(cols[13], dtype=np.uint64).reshape(-1),
        )
