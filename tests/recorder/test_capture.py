"""The live recorder's parts: market-list refresh, metrics, status, de-duplication, raw tap."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from recorder_factories import BASE_NS, raw, until

from backbone.client import MarketDataBackbone
from backbone.config import BackboneConfig
from backbone.models import RawFrame
from recorder.capture import Recorder
from recorder.config import RecorderConfig, StorageConfig
from recorder.dedupe import TradeDeduper
from recorder.metrics import MetricsServer
from recorder.raw import RawTap
from simulator import Exchange, ScaledClock
from tape.record_status import PlainStatus, RichStatus, render


async def test_quote_mode_follows_listings_and_delistings(tmp_path: Path) -> None:
    seen: set[str] = set()

    def on_record(record: Any, seq: int) -> None:
        symbol = getattr(record, "symbol", None)
        if symbol:
            seen.add(symbol)

    config = RecorderConfig(
        quote="KRW",
        market_refresh_interval_s=0.2,
        rest_snapshot_interval_s=0,
        channels=("trade", "ticker"),
    )
    markets = ["KRW-BTC", "KRW-ETH", "BTC-ETH"]
    async with (
        Exchange(seed=9, markets=markets, clock=ScaledClock(10)) as ex,
        MarketDataBackbone(ex.rest_url, ex.ws_url, config=BackboneConfig()) as backbone,
        Recorder(backbone, tmp_path, config=config, on_record=on_record) as recorder,
    ):
        assert recorder.symbols == ("KRW-BTC", "KRW-ETH")
        ex.list_market("KRW-XRP")
        await until(lambda: "KRW-XRP" in recorder.symbols)
        await until(lambda: "KRW-XRP" in seen)
        ex.delist_market("KRW-ETH")
        await until(lambda: "KRW-ETH" not in recorder.symbols)
        assert recorder.symbols == ("KRW-BTC", "KRW-XRP")
        assert "BTC-ETH" not in seen


async def test_metrics_and_health_are_served(tmp_path: Path) -> None:
    config = RecorderConfig(
        symbols=("KRW-BTC",),
        rest_snapshot_interval_s=0.2,
        rest_requests_per_s=5,
        storage=StorageConfig(flush_interval_ms=50),
    )
    async with (
        Exchange(seed=9, markets=["KRW-BTC"], clock=ScaledClock(10)) as ex,
        MarketDataBackbone(ex.rest_url, ex.ws_url) as backbone,
        Recorder(backbone, tmp_path, config=config) as recorder,
        MetricsServer(recorder.statistics, port=0) as server,
        aiohttp.ClientSession() as http,
    ):
        await until(lambda: recorder.statistics().accepted.get("trade", 0) > 0)
        await until(lambda: recorder.statistics().sink.last_flush_age_s is not None)
        async with http.get(f"http://127.0.0.1:{server.port}/metrics") as response:
            body = await response.text()
        assert response.status == 200
        assert 'tape_records_accepted_total{dataset="trade"}' in body
        assert "tape_journal_bytes_total" in body
        assert "tape_partitions_compacted_total 0.0" in body  # no finished day here
        async with http.get(f"http://127.0.0.1:{server.port}/healthz") as response:
            health = await response.json()
        assert response.status == 200 and health["status"] == "ok"
        assert health["session_id"] == recorder.session_id
        stats = recorder.statistics()
        assert stats.symbols == 1 and stats.rest_snapshots >= 0
        line = render(stats, {"trade": 12.0})
        assert "trade 12/s" in line and "written" in line


def test_health_is_stale_when_nothing_was_flushed() -> None:
    from recorder.capture import RecorderStatistics
    from recorder.sink import SinkStatistics

    sink = SinkStatistics({}, 0, 0, 0, 0, 0, 0, 0, None, None)
    stats = RecorderStatistics("s", 1, {}, {"trade": None}, 0, 0, 0, 0, 0, 0, 0, 0, sink)

    async def probe() -> tuple[int, dict[str, Any]]:
        async with (
            MetricsServer(lambda: stats, port=0) as server,
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{server.port}/healthz") as response,
        ):
            return response.status, await response.json()

    status, body = asyncio.run(probe())
    assert status == 503 and body["status"] == "stale"
    assert "trade - (last -)" not in render(stats, {})
    PlainStatus(1.0).update(stats)
    with RichStatus() as view:
        view.update(stats)


def test_the_deduper_remembers_a_window_and_forgets_within_two() -> None:
    now = [0.0]
    dedupe = TradeDeduper(10.0, clock=lambda: now[0])
    assert dedupe.first_time("KRW-BTC", 1)
    assert dedupe.first_time("KRW-ETH", 1)  # ids are unique per market only
    assert not dedupe.first_time("KRW-BTC", 1)

    def fresh_keys(start: int) -> None:  # enough keys to reach the next check of the clock
        assert all(dedupe.first_time("KRW-XRP", i) for i in range(start, start + 256))

    now[0] = 11.0
    fresh_keys(1000)
    assert not dedupe.first_time("KRW-BTC", 1)  # past one window: still remembered
    now[0] = 22.0
    fresh_keys(2000)
    assert dedupe.first_time("KRW-BTC", 1)  # past two windows: forgotten
    assert not dedupe.first_time("KRW-XRP", 2255)  # the newest keys stay
    assert dedupe.duplicates == 3
    assert len(dedupe) < 2 * 256 + 3


def test_the_raw_tap_holds_frames_until_attached() -> None:
    tap = RawTap(backlog=2)
    for i in range(3):
        tap(raw(BASE_NS + i))
    assert tap.dropped == 1
    got: list[RawFrame] = []
    tap.attach(got.append)
    tap(raw(BASE_NS + 9))
    assert [f.received_ns for f in got] == [BASE_NS + 1, BASE_NS + 2, BASE_NS + 9]
    tap.detach()
    tap(raw(BASE_NS + 10))
    assert len(got) == 3


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "nothing to record"),
        ({"symbols": ("KRW-BTC",), "quote": "KRW"}, "not both"),
        ({"symbols": ("KRW-BTC",), "channels": ("trades",)}, "unknown channels"),
        ({"symbols": ("KRW-BTC",), "dedupe_window_s": 0}, "positive"),
        ({"symbols": ("KRW-BTC",), "rest_snapshot_interval_s": -1}, "0 \\(off\\)"),
        ({"symbols": ("KRW-BTC",), "backfill_max_days": 8}, "7 days"),
    ],
)
def test_bad_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RecorderConfig(**changes)


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"compression": "zip"}, "unknown compression"), ({"flush_interval_ms": 0}, "positive")],
)
def test_bad_storage_settings_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        StorageConfig(**changes)


async def test_a_recorder_is_used_once_and_raw_needs_a_tap(tmp_path: Path) -> None:
    config = RecorderConfig(symbols=("KRW-BTC",), rest_snapshot_interval_s=0)
    async with (
        Exchange(seed=9, markets=["KRW-BTC"]) as ex,
        MarketDataBackbone(ex.rest_url, ex.ws_url) as backbone,
    ):
        with pytest.raises(ValueError, match="RawTap"):
            Recorder(backbone, tmp_path, config=RecorderConfig(symbols=("KRW-BTC",), raw=True))
        recorder = Recorder(backbone, tmp_path, config=config)
        with pytest.raises(RuntimeError, match="not open"):
            recorder.statistics()
        async with recorder:
            pass
        await recorder.aclose()
        with pytest.raises(RuntimeError, match="used once"):
            await recorder.__aenter__()
