"""Replay gives back exactly what was recorded, in order, and its digest is stable."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from replay_factories import BASE_NS, Market

from backbone.models import (
    CandleData,
    ConnectionEvent,
    OrderbookData,
    Record,
    TickerData,
    TradeData,
)
from recorder import write_recording
from replay import ReplayBackbone, replay_digest

SYMBOLS = ("KRW-BTC", "KRW-ETH")


def _same(got: list[Record], want: list[Record]) -> None:
    assert len(got) == len(want)
    for index, (a, b) in enumerate(zip(got, want, strict=True)):
        assert type(a) is type(b), index
        assert a == b, index


async def test_stream_all_equals_the_records_element_for_element(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    async with ReplayBackbone(root) as replay:
        got = [record async for record in replay.stream_all()]
    _same(got, records)


async def test_each_stream_is_the_matching_subsequence(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    cases = [
        (
            lambda r: r.stream_trade("KRW-BTC"),
            lambda x: type(x) is TradeData and x.symbol == "KRW-BTC",
        ),
        (lambda r: r.stream_ticker(list(SYMBOLS)), lambda x: type(x) is TickerData),
        (
            lambda r: r.stream_orderbook("KRW-ETH"),
            lambda x: type(x) is OrderbookData and x.symbol == "KRW-ETH",
        ),
        (
            lambda r: r.stream_candle("KRW-BTC,KRW-ETH", "1s"),
            lambda x: type(x) is CandleData and x.timeframe == "1s",
        ),
        (lambda r: r.stream_events(), lambda x: type(x) is ConnectionEvent),
        (
            lambda r: r.stream_all(["trade", "events"]),
            lambda x: type(x) in (TradeData, ConnectionEvent),
        ),
    ]
    for make, keep in cases:
        async with ReplayBackbone(root) as replay:
            got = [record async for record in make(replay)]
        want = [r for r in records if keep(r)]
        assert want, "the case selects nothing: the test is void"
        _same(got, want)


async def test_digest_is_the_same_on_every_run_and_by_every_route(
    recording: tuple[Path, list[Record]],
) -> None:
    root, _ = recording
    digests = set()
    for _ in range(2):
        async with ReplayBackbone(root) as replay:
            digests.add(await replay.digest())
    digests.add(await asyncio.to_thread(replay_digest, root))
    assert len(digests) == 1
    (digest,) = digests
    assert len(digest) == 64 and int(digest, 16) >= 0


def test_digest_sees_a_changed_value_but_not_a_changed_exponent(tmp_path: Path) -> None:
    records = Market(seed=3).records(50)
    index = next(i for i, r in enumerate(records) if type(r) is TradeData)
    trade = records[index]
    assert isinstance(trade, TradeData)
    write_recording(tmp_path / "a", records, session_id="s-a")
    rescaled = list(records)
    rescaled[index] = replace(trade, trade_price=trade.trade_price.quantize(Decimal("1.00000000")))
    write_recording(tmp_path / "b", rescaled, session_id="s-a")
    changed = list(records)
    changed[index] = replace(trade, trade_price=trade.trade_price + Decimal("0.00000001"))
    write_recording(tmp_path / "c", changed, session_id="s-a")
    a, b, c = (replay_digest(tmp_path / n) for n in "abc")
    assert a == b
    assert a != c


def test_digest_depends_on_the_delivery_order(tmp_path: Path) -> None:
    records = Market(seed=5).records(80)
    write_recording(tmp_path / "one", records, session_id="s-1")
    swapped = [records[1], records[0], *records[2:]]
    write_recording(tmp_path / "two", swapped, session_id="s-1")
    one = replay_digest(tmp_path / "one")
    two = replay_digest(tmp_path / "two")
    assert one != two  # delivery order is part of what is replayed


async def test_a_selection_is_a_subsequence(recording: tuple[Path, list[Record]]) -> None:
    root, records = recording
    start = BASE_NS + 1_500_000_000
    end = BASE_NS + 4_000_000_000
    async with ReplayBackbone(root, symbols="KRW-ETH", start=start, end=end) as replay:
        got = [record async for record in replay.stream_all()]

    def selected(r: Record) -> bool:
        if not start <= r.received_ns < end:
            return False
        if isinstance(r, ConnectionEvent):
            return not r.symbols or "KRW-ETH" in r.symbols
        return r.symbol == "KRW-ETH"

    want = [r for r in records if selected(r)]
    assert 0 < len(want) < len(records)
    _same(got, want)
