"""End to end: the recorder against the simulator, through faults, equals the truth."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import polars as pl
from record_helpers import Accepted, read_dataset, truth_trades

from backbone.client import MarketDataBackbone
from backbone.models import EventKind
from recorder.capture import Recorder
from recorder.config import RecorderConfig, StorageConfig
from simulator import Exchange, ScaledClock

MARKETS = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def test_recorded_trades_equal_the_truth_through_faults(tmp_path: Path) -> None:
    accepted = Accepted()
    config = RecorderConfig(
        symbols=tuple(MARKETS),
        rest_snapshot_interval_s=1.0,
        rest_requests_per_s=2.0,
        storage=StorageConfig(flush_interval_ms=50, rotation_interval_s=2.0),
    )
    # the backbone gets what the reference snapshots leave of Upbit's budget, as in tape record
    backbone_config = config.backbone_config(reconcile_interval_s=1.0, reconcile_grace_ms=1000)
    exchange = Exchange(seed=7, markets=MARKETS, clock=ScaledClock(8))
    async with exchange as ex:
        async with (
            MarketDataBackbone(ex.rest_url, ex.ws_url, config=backbone_config) as backbone,
            Recorder(backbone, tmp_path, config=config, on_record=accepted),
        ):
            await accepted.wait(
                lambda: len(accepted.first_trade_ms) == len(MARKETS), 60, "a trade per market"
            )
            # A stall of 40 s of exchange time lasts 5 s here: longer than the backbone needs
            # to notice it (3 s), so it is noticed and the socket replaced.
            for kind, params in (("disconnect", {}), ("stall", {"seconds": 40})):
                before = accepted.kinds(EventKind.RECONNECTED)
                ex.faults.apply(kind, **params)
                await accepted.wait(
                    lambda b=before: accepted.kinds(EventKind.RECONNECTED) > b, 60, kind
                )
            ex.faults.apply("rest_error", status=500, seconds=2)
            # On a loaded machine the trade socket can be between connections for a whole
            # window (the backbone replaces a socket whose pings go unanswered), and a window
            # that dropped nothing proves nothing: another follows, three at most.
            for _ in range(3):
                dropped = ex.faults.apply("drop_ws", channel="trade", fraction=0.5, seconds=20)
                await ex.clock.sleep_until(dropped["end_ms"] + 500)
                if any(f["id"] == dropped["id"] and f["effects"] for f in ex.faults.list()):
                    break
            end_ms = ex.clock.now_ms()
            truth = {
                market: await truth_trades(
                    ex.admin_url, market, accepted.first_trade_ms[market], end_ms
                )
                for market in MARKETS
            }
            wanted = {(m, t["sequential_id"]) for m, ts in truth.items() for t in ts}
            try:
                await accepted.wait(lambda: wanted <= accepted.trades.keys(), 90, "every trade")
            except AssertionError:
                missing = sorted(wanted - accepted.trades.keys())
                gaps = [e for e in accepted.events if e.kind.value.startswith("gap")]
                raise AssertionError(
                    f"{len(missing)} of {len(wanted)} truth trades never accepted, e.g. "
                    f"{missing[:5]}; faults {ex.faults.list()}; gap events {gaps}"
                ) from None
            assert ex.stats["rest_429"] == 0 and ex.stats["rest_418"] == 0
        faults = {f["kind"]: f for f in ex.faults.list()}
    assert faults["drop_ws"]["effects"], "the drop_ws fault dropped nothing: the test is void"

    trades = read_dataset(tmp_path, "trade").to_pylist()
    keys = Counter((t["symbol"], t["sequential_id"]) for t in trades)
    assert max(keys.values()) == 1, "a trade was recorded twice"
    for market in MARKETS:
        start = accepted.first_trade_ms[market]
        recorded = {
            t["sequential_id"]: t
            for t in trades
            if t["symbol"] == market and start <= _ms(t["trade_timestamp"]) < end_ms
        }
        expected = {t["sequential_id"]: t for t in truth[market]}
        assert recorded.keys() == expected.keys(), f"{market}: missing or extra trades"
        for sid, want in expected.items():
            got = recorded[sid]
            assert got["trade_price"] == want["trade_price"], (market, sid)
            assert got["trade_volume"] == want["trade_volume"], (market, sid)
            assert got["trade_side"] == want["ask_bid"], (market, sid)
            assert got["trade_timestamp"] == datetime.fromtimestamp(
                want["trade_timestamp"] / 1000, tz=UTC
            ), (market, sid)
    sources = Counter(t["source"] for t in trades)
    assert sources["websocket"] > 0 and sources["rest"] > 0  # repairs came from REST

    events = read_dataset(tmp_path, "events").to_pylist()
    kinds = {e["kind"] for e in events}
    assert {EventKind.RECONNECTED.value, EventKind.GAP_REPAIRED.value} <= kinds
    assert read_dataset(tmp_path, "rest_ticker").num_rows > 0
    assert read_dataset(tmp_path, "orderbook").num_rows > 0

    glob = str(tmp_path / "trade" / "**" / "*.parquet")
    ((count,),) = duckdb.sql(
        f"select count(*) from read_parquet('{glob}', hive_partitioning=true)"
    ).fetchall()
    assert count == len(trades) == pl.scan_parquet(glob, hive_partitioning=True).collect().height
