"""Reference REST snapshots: batched, their own share of the budget; the manifest's markets."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pytest
from recorder_factories import until

from backbone.client import MarketDataBackbone
from backbone.config import ChannelStrategy
from recorder.capture import Recorder
from recorder.config import REST_GROUP_LIMIT_PER_S, RecorderConfig, StorageConfig
from recorder.parts import read_part
from replay import ReplayBackbone
from simulator import Exchange, ScaledClock

MARKETS = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]


def _rows(root: Path, dataset: str) -> pa.Table:
    parts = sorted((root / dataset).rglob("part-*.parquet"))
    return pa.concat_tables(read_part(p) for p in parts)


def _requests(table: pa.Table) -> dict[int, list[str]]:
    # The symbols each reference request answered for (rows share their request times).
    symbols: dict[int, list[str]] = defaultdict(list)
    for start, symbol in zip(
        table["request_start_ns"].to_pylist(), table["symbol"].to_pylist(), strict=True
    ):
        symbols[start].append(symbol)
    return symbols


async def test_snapshots_batch_every_symbol_and_keep_their_share_of_the_budget(
    tmp_path: Path,
) -> None:
    config = RecorderConfig(
        symbols=tuple(MARKETS),
        rest_snapshot_interval_s=0.3,
        rest_requests_per_s=4,
        storage=StorageConfig(flush_interval_ms=50),
    )
    # The backbone polls every market's ticker and orderbook over REST as fast as its budget
    # (the rest of Upbit's 10 per second) allows: the snapshots must still get theirs.
    busy = config.backbone_config(stream_strategy=ChannelStrategy.REST_ONLY, poll_interval_s=0.001)
    assert busy.rest_requests_per_s + config.rest_share_per_s == REST_GROUP_LIMIT_PER_S
    async with (
        Exchange(seed=9, markets=MARKETS, clock=ScaledClock(10)) as ex,
        MarketDataBackbone(ex.rest_url, ex.ws_url, config=busy) as backbone,
    ):
        async with Recorder(backbone, tmp_path, config=config) as recorder:
            started = time.monotonic()
            await until(lambda: recorder.accepted().get("rest_ticker", 0) >= 5 * len(MARKETS))
            elapsed_s = time.monotonic() - started
            stats = recorder.statistics()
        polled = backbone.statistics()
    assert polled.rest_calls > 30  # the backbone did keep its budget busy
    assert polled.rest_rate_limited == 0 and stats.rest_errors == 0  # never over Upbit's limit
    # Five rounds of 0.3 s took a few seconds, not the backbone's leftovers.
    assert elapsed_s < 15
    tickers = _requests(_rows(tmp_path, "rest_ticker"))
    assert all(sorted(symbols) == MARKETS for symbols in tickers.values())  # one request each
    books = _requests(_rows(tmp_path, "rest_orderbook"))
    assert books and all(sorted(symbols) == MARKETS for symbols in books.values())
    trades = _rows(tmp_path, "rest_trade")
    assert set(trades["symbol"].to_pylist()) <= set(MARKETS)
    assert all(len(set(symbols)) == 1 for symbols in _requests(trades).values())


async def test_a_batch_that_a_delisted_market_fails_is_split(tmp_path: Path) -> None:
    config = RecorderConfig(
        symbols=tuple(MARKETS),
        channels=("ticker",),
        rest_snapshot_interval_s=0.2,
        rest_requests_per_s=5,
        storage=StorageConfig(flush_interval_ms=50),
    )
    budget = config.backbone_config()
    async with (
        Exchange(seed=9, markets=MARKETS, clock=ScaledClock(10)) as ex,
        MarketDataBackbone(ex.rest_url, ex.ws_url, config=budget) as backbone,
        Recorder(backbone, tmp_path, config=config) as recorder,
    ):
        await until(lambda: recorder.accepted().get("rest_ticker", 0) >= len(MARKETS))
        ex.delist_market("KRW-ETH")
        await until(lambda: recorder.statistics().rest_errors >= 2)
        failed_ns = time.time_ns()
        after = recorder.accepted().get("rest_ticker", 0)
        await until(lambda: recorder.accepted().get("rest_ticker", 0) >= after + 4)
    late = _requests(_rows(tmp_path, "rest_ticker"))
    answered = {s for start, symbols in late.items() if start > failed_ns for s in symbols}
    assert answered == {"KRW-BTC", "KRW-XRP"}  # the others still get their snapshots


async def test_the_manifest_names_the_markets_replay_returns(tmp_path: Path) -> None:
    config = RecorderConfig(
        quote="KRW",
        channels=("trade",),
        rest_snapshot_interval_s=0,
        market_refresh_interval_s=0.2,
        storage=StorageConfig(flush_interval_ms=50),
    )
    async with (
        Exchange(seed=9, markets=["KRW-BTC", "KRW-ETH"], clock=ScaledClock(10)) as ex,
        MarketDataBackbone(ex.rest_url, ex.ws_url) as backbone,
    ):
        listed = {m.symbol: m for m in await backbone.get_markets()}
        traded: set[str] = set()
        on_record = lambda record, seq: traded.add(getattr(record, "symbol", ""))  # noqa: E731
        async with Recorder(backbone, tmp_path, config=config, on_record=on_record):
            await until(lambda: "KRW-BTC" in traded)
            ex.list_market("KRW-XRP", korean_name="리플", english_name="XRP")
            await until(lambda: "KRW-XRP" in traded)
    (manifest,) = (tmp_path / "_sessions").glob("*.json")
    body = json.loads(manifest.read_text(encoding="utf-8"))
    assert body["symbols"] == ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
    entries = {m["symbol"]: m for m in body["markets"]}
    assert entries["KRW-XRP"]["korean_name"] == "리플"
    btc = listed["KRW-BTC"]
    assert entries["KRW-BTC"] == {
        "symbol": "KRW-BTC",
        "korean_name": btc.korean_name,
        "english_name": btc.english_name,
        "quote_currency": "KRW",
        "base_currency": "BTC",
        "warning": btc.warning,
        "caution": list(btc.caution),
    }
    async with ReplayBackbone(tmp_path) as replay:
        async for _ in replay.stream_all():
            pass
        named = {m.symbol: m for m in await replay.get_markets()}
    assert named["KRW-BTC"].korean_name == btc.korean_name != ""
    assert named["KRW-XRP"].english_name == "XRP"


def test_the_snapshots_leave_the_backbone_the_rest_of_the_budget() -> None:
    assert RecorderConfig(symbols=("KRW-BTC",)).backbone_rest_requests_per_s == 9
    half = RecorderConfig(symbols=("KRW-BTC",), rest_requests_per_s=0.5)
    assert half.rest_share_per_s == 1 and half.backbone_rest_requests_per_s == 9
    off = RecorderConfig(symbols=("KRW-BTC",), rest_snapshot_interval_s=0)
    assert off.backbone_rest_requests_per_s == REST_GROUP_LIMIT_PER_S
    with pytest.raises(ValueError, match="at least 1"):
        RecorderConfig(symbols=("KRW-BTC",), rest_requests_per_s=9.5)
