"""The vectorised model: batches answer like single blocks, and the fast paths like the rules.

No sockets: these call the model directly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import _rng, model
from simulator.arrays import Ticks, exp_neg, mix64, poisson, stream
from simulator.markets import build_spec, price_up, tick_at, tick_table
from simulator.model import DAY_MS, MarketModel, day_floor

START_MS = 1_790_000_000_000
RECENT = day_floor(START_MS) - 7 * DAY_MS
CODES = ["KRW-BTC", "KRW-SHIB", "BTC-ETH", "USDT-SOL", "KRW-IMX", "KRW-SUI", "BTC-PEPE"]


def make(code: str, seed: int = 0, activity: float = 1.0) -> MarketModel:
    return MarketModel(
        build_spec(code),
        seed=seed,
        recent_start_ms=RECENT,
        history_start_ms=RECENT - 60 * DAY_MS,
        activity_scale=activity,
    )


@pytest.fixture(autouse=True)
def cold() -> Iterator[None]:
    model.clear_caches()
    yield
    model.clear_caches()


@settings(deadline=None, max_examples=50)
@given(st.lists(st.integers(min_value=0, max_value=(1 << 64) - 1), min_size=1, max_size=50))
def test_mix64_on_arrays_is_the_scalar_mix64(values: list[int]) -> None:
    got = mix64(np.array(values, dtype=np.uint64)).tolist()
    assert got == [_rng.mix64(v) for v in values]


@settings(deadline=None, max_examples=50)
@given(st.integers(min_value=0, max_value=(1 << 64) - 1), st.integers(1, 20))
def test_stream_is_splitmix(seed: int, position: int) -> None:
    split = _rng.SplitMix(seed)
    for _ in range(position - 1):
        split.next64()
    got = stream(np.array([seed], dtype=np.uint64), position)
    assert int(got[0]) == split.next64()


@settings(deadline=None, max_examples=60)
@given(
    quote=st.sampled_from(["KRW", "BTC", "USDT"]),
    prices=st.lists(st.integers(min_value=-(10**6), max_value=10**17), min_size=1, max_size=30),
    steps=st.integers(0, 3),
)
def test_tick_rules_on_arrays_are_the_scalar_rules(
    quote: str, prices: list[int], steps: int
) -> None:
    table = tick_table(quote)

    def snap_down(table: tuple[tuple[int, int], ...], price: int) -> int:
        # The rule: the highest valid price not above ``price``, at least one smallest tick.
        snapped = price - price % tick_at(table, price)
        return snapped if snapped > 0 else table[-1][1]

    ticks = Ticks([tick_table("KRW"), tick_table("BTC"), tick_table("USDT")])
    q = np.full(len(prices), {"KRW": 0, "BTC": 1, "USDT": 2}[quote], dtype=np.int64)
    arr = np.array(prices, dtype=np.int64)
    assert ticks.at(arr, q).tolist() == [tick_at(table, p) for p in prices]
    assert ticks.snap_down(arr, q).tolist() == [snap_down(table, p) for p in prices]
    valid = [snap_down(table, p) for p in prices]
    moved = ticks.up(np.array(valid, dtype=np.int64), q, np.full(len(valid), steps))
    assert moved.tolist() == [price_up(table, p, steps) for p in valid]


def test_exp_neg_and_poisson_behave() -> None:
    x = np.array([0.0, 0.3, 1.0, 7.5, 39.9])
    assert np.allclose(exp_neg(x), [math.exp(-v) for v in x], rtol=1e-12, atol=0)
    for lam in (0.7, 12.0, 35.0, 400.0):
        seeds = np.arange(20_000, dtype=np.uint64) * np.uint64(7919)
        counts, used = poisson(np.full(20_000, lam), seeds, 2)
        assert abs(counts.mean() - lam) < 4 * math.sqrt(lam / 20_000) + 0.01 * lam
        assert set(used.tolist()) == {1 if lam < 40 else 4}


def test_a_block_in_a_batch_is_the_block_alone() -> None:
    markets = [make(c, seed=k % 3, activity=(1.0, 3.0)[k % 2]) for k, c in enumerate(CODES)]
    items = [(m, s) for m in markets for s in m.chunk(START_MS)]
    items += [(m, s) for m in markets for s in m.chunk(RECENT - 20 * DAY_MS)]
    batch = model.fill_blocks(items)
    assert sum(len(b.ts) for b in batch) > 10_000
    model.clear_caches()
    for (m, s), block in list(zip(items, batch, strict=True))[::6]:
        alone = m.block(s)
        assert (alone.ts, alone.sid, alone.price, alone.volume, alone.side, alone.bid) == (
            block.ts,
            block.sid,
            block.price,
            block.volume,
            block.side,
            block.bid,
        )
        assert alone.agg == block.agg


def test_batched_aggregates_are_the_sums_of_the_trades() -> None:
    markets = [make(c, activity=2.0) for c in CODES]
    items = [(m, s) for m in markets for s in m.chunk(START_MS)]
    model.fill_aggs(items)
    for m, s in items:
        agg = m.agg(s)
        block = m.block(s)
        assert agg.n == len(block.ts)
        if not agg.n:
            continue
        assert agg.volume == sum(block.volume)
        assert agg.turnover == sum(p * v for p, v in zip(block.price, block.volume, strict=True))
        assert agg.bid_volume == sum(
            v for v, side in zip(block.volume, block.side, strict=True) if side
        )
        assert (agg.open, agg.close, agg.high, agg.low) == (
            block.price[0],
            block.price[-1],
            max(block.price),
            min(block.price),
        )


def test_the_one_band_shortcut_gives_the_general_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    markets = [make(c, seed=1) for c in [*CODES, "KRW-XRP", "KRW-DOGE", "USDT-PEPE"]]
    plans = [
        (m, m.plan(s))
        for m in markets
        for s in m.chunk(START_MS) + m.chunk(RECENT - 40 * DAY_MS)
        if m.plan(s).n
    ]
    fast = model._generate(plans)
    monkeypatch.setattr(Ticks, "band_top", lambda self, prices, quote: np.zeros_like(prices))
    general = model._generate(plans)
    for field in ("ts", "sid", "price", "volume", "side", "bid"):
        assert np.array_equal(getattr(fast, field), getattr(general, field)), field


@settings(deadline=None, max_examples=15)
@given(
    code=st.sampled_from(["KRW-SHIB", "BTC-ETH", "USDT-SOL", "KRW-IMX", "KRW-SUI"]),
    offset_ms=st.integers(min_value=DAY_MS + 1, max_value=7 * DAY_MS),
)
def test_ticker_sums_are_the_truth_at_any_time(code: str, offset_ms: int) -> None:
    m = make(code, activity=0.5)
    found = m.last_trade_index(RECENT + offset_ms)
    assert found is not None
    block, i = found
    state = m.ticker_for(block, i)
    ts = block.ts[i]
    last_day = list(m.trades_asc(ts - DAY_MS + 1, ts + 1))
    today = [t for t in last_day if t.ts >= day_floor(ts)]
    assert state.volume_24h == sum(t.volume for t in last_day)
    assert state.turnover_24h == sum(t.price * t.volume for t in last_day)
    assert state.acc_volume == sum(t.volume for t in today)
    assert state.acc_turnover == sum(t.price * t.volume for t in today)


def test_prepare_answers_like_each_market_alone() -> None:
    markets = [make(c, seed=2) for c in CODES]
    model.prepare(markets, START_MS)
    together = [m.ticker_at(START_MS) for m in markets]
    model.clear_caches()
    alone = [make(c, seed=2).ticker_at(START_MS) for c in CODES]
    assert together == alone
