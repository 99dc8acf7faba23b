"""After the recorder's own downtime: missed trades backfilled, the rest recorded as gaps."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from record_helpers import Accepted, read_dataset, truth_trades

from backbone.client import MarketDataBackbone
from backbone.config import BackboneConfig
from backbone.models import EventKind, TradeData
from recorder import SessionManifest, write_recording
from recorder.capture import Recorder
from recorder.config import RecorderConfig
from recorder.inventory import open_gaps
from recorder.manifest import write_session
from simulator import Exchange, ExchangeConfig, ScaledClock

MARKETS = ["KRW-BTC", "KRW-ETH"]
# Four times the default activity: about a trade a second per market, so an outage of a few
# seconds of exchange time misses several trades and a void run (none missed, or only the one
# each resubscription's snapshot sends again) is out of reach.
BUSY = ExchangeConfig(activity_scale=4)


def _config(**changes: object) -> RecorderConfig:
    return RecorderConfig(symbols=tuple(MARKETS), rest_snapshot_interval_s=0, **changes)  # type: ignore[arg-type]


async def test_trades_missed_while_down_are_backfilled_exactly(tmp_path: Path) -> None:
    first, second = Accepted(), Accepted()
    backbone_config = BackboneConfig(reconcile_interval_s=1.0, reconcile_grace_ms=1000)
    async with Exchange(seed=21, markets=MARKETS, clock=ScaledClock(8), config=BUSY) as ex:
        async with (
            MarketDataBackbone(ex.rest_url, ex.ws_url, config=backbone_config) as backbone,
            Recorder(backbone, tmp_path, config=_config(), on_record=first),
        ):
            await first.wait(lambda: len(first.first_trade_ms) == 2, 60, "a trade per market")
            await first.wait(lambda: len(first.trades) >= 20, 60, "20 trades")
        stopped_ms = ex.clock.now_ms()
        await ex.clock.sleep_until(stopped_ms + 20_000)  # down for 20 s of exchange time
        async with (
            MarketDataBackbone(ex.rest_url, ex.ws_url, config=backbone_config) as backbone,
            Recorder(backbone, tmp_path, config=_config(), on_record=second) as recorder,
        ):
            await recorder.backfill_done.wait()
            end_ms = ex.clock.now_ms()
            truth = {
                m: await truth_trades(ex.admin_url, m, first.first_trade_ms[m], end_ms)
                for m in MARKETS
            }
            wanted = {(m, t["sequential_id"]) for m, ts in truth.items() for t in ts}
            await second.wait(
                lambda: wanted <= (first.trades.keys() | second.trades.keys()), 60, "all trades"
            )
    missed = [
        t
        for t in truth["KRW-BTC"]
        if stopped_ms + 2000 <= t["trade_timestamp"] < stopped_ms + 18_000
    ]
    assert missed, "no trade happened while the recorder was down: the test is void"
    trades = read_dataset(tmp_path, "trade").to_pylist()
    keys = Counter((t["symbol"], t["sequential_id"]) for t in trades)
    assert max(keys.values()) == 1
    for market in MARKETS:
        stored = {
            t["sequential_id"]: t
            for t in trades
            if t["symbol"] == market
            and first.first_trade_ms[market] <= t["trade_timestamp"].timestamp() * 1000 < end_ms
        }
        assert stored.keys() == {t["sequential_id"] for t in truth[market]}, market
        for want in truth[market]:
            assert stored[want["sequential_id"]]["trade_price"] == want["trade_price"]
            assert stored[want["sequential_id"]]["trade_volume"] == want["trade_volume"]
    backfilled = {t["sequential_id"] for t in missed}
    rest = {t["sequential_id"] for t in trades if t["source"] == "rest"}
    # All came from the backfill but, at most, the one the new subscription's snapshot sent.
    assert len(backfilled - rest) <= 1 and backfilled & rest
    events = read_dataset(tmp_path, "events").to_pylist()
    downtime = [e for e in events if e["cause"] == "recorder_downtime"]
    repaired = [e for e in downtime if e["kind"] == "gap_repaired"]
    assert len(repaired) == 1 and repaired[0]["rows_recovered"] >= len(missed)
    assert {e["channel"] for e in downtime if e["kind"] == "gap_unrepaired"} == {
        "ticker",
        "orderbook",
        "candle",
    }
    assert all(e["start_ns"] < e["end_ns"] for e in downtime if e["kind"] == "gap_unrepaired")


async def test_a_trade_gap_open_when_the_recorder_stopped_is_repaired_on_restart(
    tmp_path: Path,
) -> None:
    # REST answers stale (as of the fault's start) while the socket goes down and comes
    # back, and the periodic reconciliation is off: the trades between the stale time and
    # the new socket's first trade are missing when the recorder stops, while the socket has
    # delivered newer ones. The gap must stay open in the recording, and the next start must
    # backfill from where it begins, not from the newest recorded trade.
    first, second = Accepted(), Accepted()
    backbone_config = BackboneConfig(reconcile_interval_s=3600.0)
    async with Exchange(seed=21, markets=MARKETS, clock=ScaledClock(8), config=BUSY) as ex:
        async with (
            MarketDataBackbone(ex.rest_url, ex.ws_url, config=backbone_config) as backbone,
            Recorder(backbone, tmp_path, config=_config(), on_record=first),
        ):
            await first.wait(lambda: len(first.first_trade_ms) == 2, 60, "a trade per market")
            stale = ex.faults.apply("rest_stale", seconds=600)

            def streamed_past(accepted: Accepted, ms: int) -> bool:
                newest: dict[str, int] = {}
                for (market, _), trade in accepted.trades.items():
                    when = int(trade.trade_timestamp.timestamp() * 1000)
                    newest[market] = max(newest.get(market, 0), when)
                return all(newest.get(m, 0) > ms for m in MARKETS)

            await first.wait(lambda: streamed_past(first, stale["start_ms"] + 3_000), 60, "3 s")
            ex.faults.apply("refuse_ws", seconds=8)
            ex.faults.apply("disconnect")
            await first.wait(lambda: first.kinds(EventKind.RECONNECTED) > 0, 60, "a reconnect")
            back_ms = ex.clock.now_ms()
            await first.wait(lambda: streamed_past(first, back_ms), 60, "trades after it")
        assert ex.clock.now_ms() < stale["end_ms"], "REST was fresh before the stop: void"
        held = {
            (t["symbol"], t["sequential_id"]) for t in read_dataset(tmp_path, "trade").to_pylist()
        }
        start_ms = max(first.first_trade_ms.values())
        truth = {m: await truth_trades(ex.admin_url, m, start_ms, back_ms) for m in MARKETS}
        assert {(m, t["sequential_id"]) for m in MARKETS for t in truth[m]} - held, (
            "no trade of either market was missing when the recorder stopped: the test is void"
        )
        left_open = [g for g in open_gaps(tmp_path) if g.channel == "trade"]
        assert left_open and all(g.kind == "gap_detected" for g in left_open)
        assert all(g.exchange_start is not None for g in left_open)
        ex.faults.clear()
        async with (
            MarketDataBackbone(ex.rest_url, ex.ws_url, config=backbone_config) as backbone,
            Recorder(backbone, tmp_path, config=_config(), on_record=second) as recorder,
        ):
            await recorder.backfill_done.wait()
    trades = read_dataset(tmp_path, "trade").to_pylist()
    keys = Counter((t["symbol"], t["sequential_id"]) for t in trades)
    assert max(keys.values()) == 1
    for market in MARKETS:
        stored = {t["sequential_id"] for t in trades if t["symbol"] == market}
        wanted = {t["sequential_id"] for t in truth[market]}
        assert not wanted - stored, f"{market}: {len(wanted - stored)} trades never recorded"
    assert not [g for g in open_gaps(tmp_path) if g.channel == "trade"]


async def test_history_beyond_upbits_reach_is_recorded_as_an_unrepaired_gap(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    old = now - timedelta(days=9)
    old_ns = int(old.timestamp() * 1e9)
    last = TradeData(
        symbol="KRW-BTC",
        trade_price=Decimal("1000"),
        trade_volume=Decimal("1"),
        trade_side="BID",
        trade_timestamp=old.replace(microsecond=0),
        sequential_id=1,
        source="websocket",
        received_ns=old_ns,
        prev_closing_price=Decimal("1000"),
        change="EVEN",
        change_price=Decimal("0"),
    )
    write_recording(tmp_path, [last], session_id="00000000T000000000Z-old")
    write_session(
        tmp_path,
        SessionManifest(
            session_id="00000000T000000000Z-old",
            started_ns=old_ns,
            status="closed",
            last_received_ns=old_ns,
        ),
    )
    accepted = Accepted()
    quiet = ExchangeConfig(activity_scale=0.002)
    async with (
        Exchange(seed=3, markets=["KRW-BTC"], config=quiet) as ex,
        MarketDataBackbone(ex.rest_url, ex.ws_url) as backbone,
        Recorder(
            backbone,
            tmp_path,
            config=RecorderConfig(
                symbols=("KRW-BTC",), rest_snapshot_interval_s=0, channels=("trade",)
            ),
            on_record=accepted,
        ) as recorder,
    ):
        await recorder.backfill_done.wait()
    backfilled = [t for t in accepted.trades.values() if t.source == "rest"]
    assert backfilled, "the quiet market had no trade in 7 days: the test is void"
    reach = (now - timedelta(days=7)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert min(t.trade_timestamp for t in backfilled) >= reach
    (lost,) = [e for e in accepted.events if e.kind.value == "gap_unrepaired"]
    assert lost.channel == "trade" and lost.symbols == ("KRW-BTC",)
    assert lost.exchange_start == last.trade_timestamp
    assert lost.exchange_end == min(t.trade_timestamp for t in backfilled)
    assert lost.cause == "recorder_downtime"
