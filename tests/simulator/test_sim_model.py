"""The market model and the number writer, property-tested without sockets."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.markets import SCALE, build_spec, default_codes, tick_at, tick_table
from simulator.model import DAY_MS, HOUR_MS, MarketModel, day_floor
from simulator.wire import num, num2, num2_pad, num_f, num_pad, ratio

START_MS = 1_790_000_000_000
RECENT = day_floor(START_MS) - 7 * DAY_MS


def model(code: str, seed: int = 0) -> MarketModel:
    return MarketModel(
        build_spec(code),
        seed=seed,
        recent_start_ms=RECENT,
        history_start_ms=RECENT - 60 * DAY_MS,
        activity_scale=1.0,
    )


@settings(deadline=None, max_examples=40)
@given(
    code=st.sampled_from(["KRW-BTC", "KRW-SHIB", "BTC-ETH", "USDT-SOL", "KRW-IMX", "KRW-ZZZ9"]),
    hour=st.integers(min_value=-24 * 60, max_value=24 * 8),
    seed=st.integers(min_value=0, max_value=3),
)
def test_blocks_meet_their_plans_and_tick_rules(code: str, hour: int, seed: int) -> None:
    m = model(code, seed)
    start = m.block_start(RECENT + hour * HOUR_MS)
    plan = m.plan(start)
    block = m.block(start)
    assert len(block.ts) == plan.n
    if not plan.n:
        return
    assert (block.price[0], block.price[-1]) == (plan.open, plan.close)
    assert (max(block.price), min(block.price)) == (plan.high, plan.low)
    assert block.ts == sorted(block.ts) and all(start <= t < start + plan.length for t in block.ts)
    assert len(set(block.sid)) == plan.n and all(
        s // 10_000 == t for s, t in zip(block.sid, block.ts, strict=True)
    )
    table = tick_table(m.spec.quote)
    for price, bid, side, volume in zip(
        block.price, block.bid, block.side, block.volume, strict=True
    ):
        assert price % tick_at(table, price) == 0 and bid % tick_at(table, bid) == 0
        assert price == (m.ask_of(bid) if side else bid), "trades print at the touch"
        assert volume >= 1
    assert block.agg.volume == sum(block.volume)


def test_default_market_list_is_upbit_shaped() -> None:
    codes = default_codes()
    assert 250 <= len(codes) <= 400 and len(set(codes)) == len(codes)
    assert {c.split("-")[0] for c in codes} == {"KRW", "BTC", "USDT"}
    assert codes[:4] == ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-USDT"]
    busy = build_spec("KRW-BTC").trades_per_hour
    assert sorted(build_spec(c).trades_per_hour for c in codes)[len(codes) // 2] < busy / 20


@given(st.integers(min_value=-(10**20), max_value=10**20))
def test_numbers_are_exact(value: int) -> None:
    exact = Decimal(value) / SCALE
    for text in (num(value), num_f(value), num_pad(value)):
        assert Decimal(text) == exact and "e" not in text.lower()
    if value >= 0:
        assert Decimal(num2(value)) == Decimal(value) / SCALE / SCALE
        assert Decimal(num2_pad(value)) == Decimal(value) / SCALE / SCALE


def test_number_forms_follow_the_wire() -> None:
    assert num(14_760_600_000_000_000) == "147606000"
    assert num_f(10_984_700_000_000_000) == "109847000.0"
    assert num(509_799) == "0.00509799"
    assert num_pad(3_188_300_000_000_000) == "31883000.00000000"
    assert ratio(136_000, 148_737_000) == "0.0009143656"
    assert ratio(-7_000, 3_517_000) == "-0.0019903327"
    assert ratio(0, 5) == "0" and ratio(5, 0) == "0"
