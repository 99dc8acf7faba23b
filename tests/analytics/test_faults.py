"""The checks against a live recording with faults injected: they find exactly those.

One shared recording (built once per module): the simulator on a scaled clock, the backbone
stamping receive times on the same clock, the recorder writing everything; faults one after
the other, each in its own window of exchange time (``disconnect``, ``rest_stale``,
``delay_ws``, ``clock_skew``, ``drop_ws`` on trades). Each fault's effect is compared with what the
exchange's fault log (``ex.faults.list()``, the data of ``GET /_sim/faults``) says it did: the
channel, the interval and the count. A second, clean recording reports no problem.

The backbone's own trade reconciliation is switched off here, so that the trades ``drop_ws``
removed stay missing and the checks must find them from the REST references themselves.

Nothing but the faults may delay a message, or the checks rightly report it late. The exchange
computes a market's last 24 hours of trades the first time it builds a ticker (seconds on a
loaded machine, with its event loop blocked, and the messages due meanwhile sent late, with
their own times), and one more hour block each time the 24-hour window crosses an hour. So
every recording starts at a fixed time early in an hour (no hour is crossed while it runs; the
market's activity is the same on every run) and the exchange answers a REST ticker for every
market, promptly, before the recorder connects.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import aiohttp
import jsonschema
import pytest

from analytics import MeasureConfig, Recording, check_schema, run_checks
from analytics.summary import findings
from backbone.client import MarketDataBackbone
from backbone.models import MarketRecord
from recorder.capture import Recorder
from recorder.config import RecorderConfig, StorageConfig
from simulator import Exchange, ExchangeConfig, ScaledClock

MARKETS = ("KRW-BTC", "KRW-ETH", "KRW-XRP")
SPEED = 5.0  # exchange seconds per real second
START_MS = 1_795_230_300_000  # 2026-11-21T03:05:00Z: Korean midday, 55 minutes to the next hour
MS_PER_REAL_S = int(1000 * SPEED)
# thresholds far above what a loaded machine does in real time, far below the faults
CONFIG = MeasureConfig(late_floor_ms=0.8 * MS_PER_REAL_S, silence_floor_ms=0.8 * MS_PER_REAL_S)
DELAY_MS = int(1.6 * MS_PER_REAL_S)
SKEW_MS = int(0.8 * MS_PER_REAL_S)
STREAM_CHANNELS = ("ticker", "trade", "orderbook")


class Ready:
    """``on_record`` hook: wakes the test once every market streamed a ticker and a book."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self.event = asyncio.Event()

    def __call__(self, record: Any, seq: int) -> None:
        kind = type(record).__name__
        symbol = getattr(record, "symbol", None)
        if isinstance(record, MarketRecord) and symbol is not None:
            self.seen.add((kind, symbol))
        wanted = {(k, m) for k in ("TickerData", "OrderbookData") for m in MARKETS}
        if wanted <= self.seen:
            self.event.set()


async def _warm_up(ex: Exchange) -> None:
    """Return once the exchange answers a REST ticker of every market within a tenth of a
    second: the history its tickers need is built and cached."""
    url = f"{ex.rest_url}/ticker?markets={','.join(MARKETS)}"
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            began = time.monotonic()
            async with session.get(url) as answer:
                answer.raise_for_status()
                await answer.read()
            if time.monotonic() - began < 0.1:
                return
    raise AssertionError("the exchange never answered a ticker promptly")


async def _record(root: Path, faults: bool) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Record the simulator into ``root``; return the fault log and each market's publication
    lag (a trade is sent ``lag`` ms after its ``trade_timestamp``; tickers and books carry the
    time they were sent)."""
    clock = ScaledClock(SPEED, start_ms=START_MS)

    def clock_ns() -> int:
        return clock.now_ms() * 1_000_000

    exchange = Exchange(
        seed=11, markets=list(MARKETS), clock=clock, config=ExchangeConfig(activity_scale=8)
    )
    async with exchange as ex:
        await _warm_up(ex)
        return await _capture(ex, root, faults, clock_ns)


async def _capture(
    ex: Exchange, root: Path, faults: bool, clock_ns: Callable[[], int]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    ready = Ready()
    config = RecorderConfig(
        symbols=MARKETS,
        rest_snapshot_interval_s=0.3,
        rest_requests_per_s=8.0,
        backfill=False,
        storage=StorageConfig(flush_interval_ms=50),
    )
    backbone_config = config.backbone_config(reconcile_interval_s=3600.0)
    async with (
        MarketDataBackbone(
            ex.rest_url, ex.ws_url, config=backbone_config, clock_ns=clock_ns
        ) as backbone,
        Recorder(backbone, root, config=config, on_record=ready, clock_ns=clock_ns),
    ):
        await asyncio.wait_for(ready.event.wait(), timeout=60)
        start = time.monotonic()

        async def at(real_s: float) -> None:
            await asyncio.sleep(max(0.0, start + real_s - time.monotonic()))

        if faults:
            # the disconnect first: the backbone's repair after reconnecting fetches the
            # trades it missed, and must not reach back to those drop_ws removes later
            await at(1.0)
            ex.faults.apply("disconnect")
            await at(3.0)
            ex.faults.apply("rest_stale", seconds=1.6 * SPEED)
            await at(5.2)
            ex.faults.apply("delay_ws", ms=DELAY_MS, seconds=1.0 * SPEED)
            await at(8.4)
            ex.faults.apply("clock_skew", ms=SKEW_MS, seconds=1.2 * SPEED)
            await at(10.8)
            ex.faults.apply("drop_ws", channel="trade", fraction=1.0, seconds=2.0 * SPEED)
            await at(14.0)
        else:
            await at(3.0)
        log: list[dict[str, Any]] = ex.faults.list()
        lags = {code: int(ex.model(code).lag) for code in MARKETS}
    return log, lags


LAGS: dict[str, int] = {}


@pytest.fixture(scope="module")
def faulted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("faulted")
    log, lags = asyncio.run(_record(root, faults=True))
    LAGS.update(lags)
    return root, {fault["kind"]: fault for fault in log}


def sent_ms(row: dict[str, Any]) -> int:
    """When the exchange sent a record (the time its faults are decided by)."""
    lag = LAGS[row["symbol"]] if row["channel"] == "trade" else 0
    return ms_of(row["exchange_time"]) + lag


@pytest.fixture(scope="module")
def recording(faulted: tuple[Path, dict[str, dict[str, Any]]]) -> Recording:
    with Recording(faulted[0], config=CONFIG) as opened:
        yield opened  # type: ignore[misc]


@pytest.fixture(scope="module")
def checks(recording: Recording) -> dict[str, Any]:
    return run_checks(recording, limit=1000)


def window_ns(fault: dict[str, Any], *, after_ms: int = 0) -> tuple[int, int]:
    return fault["start_ms"] * 1_000_000, (fault["end_ms"] + after_ms) * 1_000_000


def inside(ns: int, windows: Iterable[tuple[int, int]]) -> bool:
    return any(start <= ns <= end for start, end in windows)


def ms_of(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def per_market(counts: dict[str, dict[str, int]], channel: str) -> Counter[str]:
    return Counter({code: by[channel] for code, by in counts.items() if by.get(channel)})


def test_every_fault_did_something(faulted: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    log = faulted[1]
    assert set(log) == {"drop_ws", "rest_stale", "delay_ws", "clock_skew", "disconnect"}
    assert log["drop_ws"]["effects"]["dropped_trades"]
    assert log["rest_stale"]["effects"]["requests_stale"]["/v1/ticker"] > 0
    assert per_market(log["delay_ws"]["effects"]["messages_delayed"], "trade")
    assert per_market(log["clock_skew"]["effects"]["messages_skewed"], "ticker")
    assert log["disconnect"]["effects"]["connections_closed"] > 0


def test_the_checks_match_their_schema(checks: dict[str, Any]) -> None:
    jsonschema.validate(checks, check_schema())


def test_dropped_trades_are_the_missing_ones(
    faulted: tuple[Path, dict[str, dict[str, Any]]], recording: Recording, checks: dict[str, Any]
) -> None:
    drop = faulted[1]["drop_ws"]
    # REST lists the newest 20 trades of a market, so an answer lists every trade strictly
    # inside its window (the boundary milliseconds may hold trades it cut off). An answer
    # served while the exchange's clock was skewed gives every trade it lists a skewed time,
    # and its window does not say which trades it listed: only the others prove anything.
    # The simulator's ids are trade_timestamp_ms * 10000 + n (Upbit's shape).
    skew = faulted[1]["clock_skew"]
    skewed = (
        (skew["start_ms"] - MS_PER_REAL_S) * 1_000_000,
        (skew["end_ms"] + MS_PER_REAL_S) * 1_000_000,
    )
    honest: dict[str, list[tuple[int, int]]] = {}
    for row in recording.rows("trade_windows"):
        if not inside(row["request_start_ns"], [skewed]):
            honest.setdefault(row["symbol"], []).append(
                (ms_of(row["window_start"]), ms_of(row["window_end"]))
            )
    dropped = {(code, key) for code, key in drop["effects"]["dropped_trades"]}
    seen = {
        (code, key)
        for code, key in dropped
        if any(start < key // 10_000 < end for start, end in honest.get(code, []))
    }
    missing = {
        (row["symbol"], row["sequential_id"]): row["sequential_id"] // 10_000
        for row in recording.rows("rest_trade_keys")
        if not row["streamed"]
    }
    # On a loaded machine a late ping can make the backbone reconnect during the drop; its
    # repair then delivers some dropped trades by REST, and those are not missing.
    repaired = {(row["symbol"], row["sequential_id"]) for row in _rest_sourced(recording)}
    # The disconnect loses nothing, even with the periodic reconciliation off: after the
    # reconnect the backbone syncs from REST until it has confirmed past the new socket's
    # first trade, so a trade made between its first sync and that trade is repaired too.
    assert len(seen) >= len(dropped) // 2 > 0
    assert seen - repaired <= set(missing) <= dropped
    assert checks["gaps"]["trades_missing"] == len(missing)
    start, end = drop["start_ms"], drop["end_ms"]
    # dropped while the fault lasted: sent (trade time + the market's lag) inside its window
    assert all(start <= made_ms + LAGS[code] < end for (code, _), made_ms in missing.items())
    runs = checks["consistency"]["trade"]["missing_runs"]
    assert sum(run["trades"] for run in runs) == len(missing)
    assert {run["symbol"] for run in runs} == {code for code, _ in missing}
    for run in runs:
        first_ms = ms_of(_time(run["first_time"])) + LAGS[run["symbol"]]
        last_ms = ms_of(_time(run["last_time"])) + LAGS[run["symbol"]]
        # (a trade that only a skewed answer listed carries a time up to SKEW_MS late)
        assert start <= first_ms and last_ms < end + SKEW_MS, run
    # the backbone's reconciliation is off: what reached the stream by REST since the drop
    # began is only what the socket lost (a repair after a reconnect)
    assert {
        (row["symbol"], row["sequential_id"])
        for row in _rest_sourced(recording)
        if row["trade_timestamp"] >= _dt(start)
    } <= dropped


def test_stale_rest_answers_are_those_of_the_stale_window(
    faulted: tuple[Path, dict[str, dict[str, Any]]], recording: Recording, checks: dict[str, Any]
) -> None:
    log = faulted[1]
    stale_fault = log["rest_stale"]
    frozen_ms = stale_fault["start_ms"]
    stale = [row for row in recording.rows("staleness") if row["stale"]]
    in_stale = [row for row in stale if inside(row["request_start_ns"], [window_ns(stale_fault)])]
    assert in_stale, "the stale window produced no stale answer"
    # every stale answer inside the window shows the state as of the fault's start
    assert all(ms_of(row["rest_time"]) <= frozen_ms for row in in_stale)
    # REST tickers and books are only stale there, or just after the skew (the WebSocket's
    # skewed states ran ahead of the first honest REST answers by at most the skew)
    skew = log["clock_skew"]
    for row in stale:
        if row not in in_stale:
            assert inside(row["request_start_ns"], [window_ns(skew, after_ms=SKEW_MS)]), row
            assert row["behind_ms"] <= SKEW_MS
    answered = log["rest_stale"]["effects"]["requests_stale"]
    # one request answers every recorded market at once: count requests, not rows
    requests = Counter({(row["channel"], row["request_start_ns"]) for row in in_stale})
    by_channel = Counter(channel for channel, _ in requests)
    assert by_channel["ticker"] <= answered["/v1/ticker"]
    assert by_channel["orderbook"] <= answered["/v1/orderbook"]
    assert checks["consistency"]["ticker"]["stale"] + checks["consistency"]["orderbook"][
        "stale"
    ] == len(stale)


def _late_records(recording: Recording) -> list[dict[str, Any]]:
    return (
        recording.connection.sql(
            "SELECT l.* FROM stream_latency AS l JOIN late_thresholds USING (channel) "
            "WHERE l.source = 'websocket' AND l.channel <> 'candle' AND l.latency_ms > threshold_ms"
        )
        .pl()
        .to_dicts()
    )


def test_delayed_messages_are_the_late_ones(
    faulted: tuple[Path, dict[str, dict[str, Any]]], recording: Recording, checks: dict[str, Any]
) -> None:
    delay = faulted[1]["delay_ws"]
    start, end = delay["start_ms"], delay["end_ms"]
    delayed = delay["effects"]["messages_delayed"]
    late = _late_records(recording)
    for channel in STREAM_CHANNELS:
        mine = [row for row in late if row["channel"] == channel]
        # every late record was sent inside the window, or queued on the same connection
        # behind one that was (released at most DELAY_MS after the window)
        assert all(start <= sent_ms(row) < end + DELAY_MS for row in mine), mine
        # ... and arrived once released (give a loaded machine a real second to send it)
        released_by = end + DELAY_MS + MS_PER_REAL_S
        assert all(row["received_ns"] // 1_000_000 <= released_by for row in mine)
        sent_inside = Counter(row["symbol"] for row in mine if start <= sent_ms(row) < end)
        assert sent_inside == per_market(delayed, channel), channel
        assert checks["latency"][channel]["late"] == len(mine)
    episodes = [row for row in recording.rows("latency_excursions") if row["kind"] == "late"]
    assert episodes and all(start * 1_000_000 <= row["start_ns"] for row in episodes)


def test_skewed_messages_are_the_negative_ones(
    faulted: tuple[Path, dict[str, dict[str, Any]]], recording: Recording, checks: dict[str, Any]
) -> None:
    skew = faulted[1]["clock_skew"]
    skewed = skew["effects"]["messages_skewed"]
    start_ns, end_ns = window_ns(skew, after_ms=SKEW_MS // 4)
    negative = [row for row in recording.rows("latency_excursions") if row["kind"] == "negative"]
    for channel in (*STREAM_CHANNELS, "candle"):
        found: Counter[str] = Counter()
        for row in negative:
            if row["channel"] == channel:
                found[row["symbol"]] += row["rows"]
                assert start_ns <= row["start_ns"] and row["end_ns"] <= end_ns
                assert row["min_ms"] >= -SKEW_MS
        assert found == per_market(skewed, channel), channel
        assert checks["latency"][channel]["negative"] == sum(found.values())
    assert checks["latency"]["clock_problem"] is True


def test_trades_differ_from_rest_only_where_the_clock_was_skewed(
    faulted: tuple[Path, dict[str, dict[str, Any]]], recording: Recording
) -> None:
    # while the skew lasted, the WebSocket carried skewed times of the trades made then, and
    # REST answers skewed times of every trade they listed
    skew = faulted[1]["clock_skew"]
    differ = [
        r for r in recording.rows("rest_trades_compared") if r["streamed"] and not r["agrees"]
    ]
    assert differ, "the skew made no streamed trade differ from REST: the test is void"
    # the skew stamps a message when it is sent: a trade's sending time is its own time plus
    # its market's lag; a request is served a moment after it starts
    margin_ms = MS_PER_REAL_S // 10
    start_ms, end_ms = skew["start_ms"] - margin_ms, skew["end_ms"] + margin_ms
    for row in differ:
        sent_ms = ms_of(row["trade_timestamp"]) + LAGS[row["symbol"]]
        answered_ms = row["request_start_ns"] // 1_000_000
        assert start_ms <= sent_ms <= end_ms or start_ms <= answered_ms <= end_ms, row


def test_the_disconnect_is_in_the_ledger(
    faulted: tuple[Path, dict[str, dict[str, Any]]], checks: dict[str, Any]
) -> None:
    disconnect = faulted[1]["disconnect"]
    closed = disconnect["effects"]["connections_closed"]
    events = checks["gaps"]["events"]
    assert events["disconnected"] == closed
    assert events["reconnected"] == closed
    ledger = [e for e in checks["gaps"]["ledger"] if e["kind"] == "disconnected"]
    assert all(e["at"] >= _iso(disconnect["start_ms"]) for e in ledger)


def test_silences_are_explained_by_the_faults(
    faulted: tuple[Path, dict[str, dict[str, Any]]], recording: Recording
) -> None:
    log = faulted[1]
    windows = [
        window_ns(log["delay_ws"], after_ms=DELAY_MS),
        window_ns(log["disconnect"], after_ms=2 * MS_PER_REAL_S),
        window_ns(log["drop_ws"], after_ms=MS_PER_REAL_S),  # no trade came through at all
    ]
    for row in recording.rows("silences"):
        assert inside(row["end_ns"], windows), row


def test_every_finding_is_a_fault(checks: dict[str, Any]) -> None:
    found = findings(checks)
    allowed = (
        # REST answered with skewed times while the skew lasted
        "REST tickers disagree",
        "REST orderbooks disagree",
        "trades differ between REST and the stream",
        "missing from REST answers",
        "were stale",
        "missing from the stream",
        "arrived late",
        "negative latency",
        "disconnected events",
        "silent periods",
        "integrity problems (out_of_order",  # see below
        "REST candles differ",  # see below
    )
    assert all(any(text in line for text in allowed) for line in found), found
    assert checks["integrity"]["problems"] == checks["integrity"]["out_of_order"]


def test_candles_differ_only_where_trades_were_dropped_or_skewed(
    faulted: tuple[Path, dict[str, dict[str, Any]]], recording: Recording
) -> None:
    log = faulted[1]
    windows = [
        (log["drop_ws"]["start_ms"], log["drop_ws"]["end_ms"]),
        (log["clock_skew"]["start_ms"], log["clock_skew"]["end_ms"] + SKEW_MS),
    ]
    for row in recording.rows("candle_checks"):
        if row["mismatched_fields"]:
            opened = ms_of(row["open_time"])
            closed = opened + 60_000  # the recorder's 1m candles
            assert any(opened < end and start < closed for start, end in windows), row


def test_times_run_backwards_only_when_the_skew_ends(
    faulted: tuple[Path, dict[str, dict[str, Any]]], recording: Recording
) -> None:
    skew = faulted[1]["clock_skew"]
    end_ns = skew["end_ms"] * 1_000_000
    for row in recording.rows("out_of_order"):
        assert end_ns <= row["received_ns"] <= end_ns + SKEW_MS * 1_000_000, row
        assert ms_of(row["previous_time"]) - ms_of(row["exchange_time"]) <= SKEW_MS


def test_a_clean_recording_reports_no_problem(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("clean")
    assert asyncio.run(_record(root, faults=False))[0] == []
    with Recording(root, config=CONFIG) as recording:
        checks = run_checks(recording)
    assert findings(checks) == []
    assert checks["latency"]["trade"]["rows"] > 0
    assert checks["consistency"]["ticker"]["compared"] > 0


def _time(text: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _dt(ms: int) -> Any:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _rest_sourced(recording: Recording) -> list[dict[str, Any]]:
    return [row for row in recording.rows("trade") if row["source"] == "rest"]


def _iso(ms: int) -> str:
    from analytics.timefmt import iso_ns

    text = iso_ns(ms * 1_000_000)
    assert text is not None
    return text
