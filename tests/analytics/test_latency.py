"""Latency measures on a recording with planted late and negative records."""

from __future__ import annotations

from pathlib import Path

import pytest
from analytics_synth import MS, T0_NS, Synth, at

from analytics import Recording, run_checks

A, B = "KRW-BTC", "KRW-ETH"
STEP_NS = 100 * MS
LATE = range(30, 35)  # delivered 3 s late
AHEAD = range(50, 53)  # stamped 200 ms in our future: the exchange's clock ran ahead


def latency_ms(i: int) -> int:
    if i in LATE:
        return 3000
    if i in AHEAD:
        return -200
    return 5 + i % 3  # 5, 6 or 7 ms


def build(root: Path) -> Path:
    synth = Synth(root)
    for i in range(1, 101):
        exchange_ns = T0_NS + i * STEP_NS
        synth.add(
            "trade",
            received_ns=exchange_ns + latency_ms(i) * MS,
            symbol=A,
            sequential_id=i,
            trade_timestamp=at(exchange_ns),
        )
        synth.add("ticker", received_ns=exchange_ns + 9 * MS, symbol=B, timestamp=at(exchange_ns))
        if i % 20 == 0:  # a REST ticker of the same state, answered 30 ms later
            synth.add(
                "rest_ticker",
                received_ns=exchange_ns + 39 * MS,
                request_start_ns=exchange_ns + 39 * MS - (i // 20) * MS,
                symbol=B,
                timestamp=at(exchange_ns),
            )
    # REST delivered one trade into the stream during a fallback: not a WebSocket latency
    synth.add(
        "trade",
        received_ns=T0_NS + 101 * STEP_NS + 900 * MS,
        source="rest",
        symbol=A,
        sequential_id=101,
        trade_timestamp=at(T0_NS + 101 * STEP_NS),
    )
    return synth.write(by_receive_time=True)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    with Recording(build(tmp_path_factory.mktemp("latency"))) as opened:
        yield opened  # type: ignore[misc]


def test_quantiles_by_channel_and_source(recording: Recording) -> None:
    rows = {(r["channel"], r["source"]): r for r in recording.rows("latency_by_channel")}
    assert set(rows) == {("trade", "websocket"), ("trade", "rest"), ("ticker", "websocket")}
    trade = rows[("trade", "websocket")]
    values = sorted(latency_ms(i) for i in range(1, 101))
    assert trade["rows"] == 100
    assert trade["p50_ms"] == values[49]
    assert trade["p90_ms"] == values[89]
    assert trade["p99_ms"] == 3000
    assert trade["max_ms"] == 3000
    assert trade["min_ms"] == -200
    assert trade["negative"] == len(AHEAD)
    assert rows[("trade", "rest")]["rows"] == 1
    assert rows[("trade", "rest")]["p50_ms"] == 900
    assert rows[("ticker", "websocket")]["max_ms"] == 9


def test_by_symbol_and_hour(recording: Recording) -> None:
    by_symbol = {(r["channel"], r["symbol"]) for r in recording.rows("latency_by_symbol")}
    assert by_symbol == {("trade", A), ("ticker", B)}
    hours = {r["hour"] for r in recording.rows("latency_by_hour")}
    assert hours == {at(T0_NS)}


def test_excursions_are_the_planted_runs(recording: Recording) -> None:
    runs = recording.rows("latency_excursions", order="start_ns")
    assert [(r["channel"], r["symbol"], r["kind"], r["rows"]) for r in runs] == [
        ("trade", A, "negative", len(AHEAD)),
        ("trade", A, "late", len(LATE)),
    ]
    late = runs[1]
    assert late["exchange_start"] == at(T0_NS + LATE[0] * STEP_NS)
    assert late["exchange_end"] == at(T0_NS + LATE[-1] * STEP_NS)
    assert late["threshold_ms"] == 1000  # the floor: 10 x the 6 ms median is less
    assert runs[0]["min_ms"] == -200


def test_rest_round_trips_and_freshness(recording: Recording) -> None:
    trip = recording.one("rest_round_trip")
    assert trip["channel"] == "ticker"
    assert trip["requests"] == 5
    assert (trip["p50_ms"], trip["max_ms"]) == (3, 5)
    fresh = recording.one("freshness_by_channel")
    assert (fresh["channel"], fresh["compared"], fresh["p50_ms"], fresh["rest_first"]) == (
        "ticker",
        5,
        30,
        0,
    )


def test_latency_section(recording: Recording) -> None:
    section = run_checks(recording)["latency"]
    assert section["trade"]["late"] == len(LATE)
    assert section["trade"]["negative"] == len(AHEAD)
    assert section["negative"] == len(AHEAD)
    assert section["clock_problem"] is True
    assert section["candle"]["rows"] == 0 and section["candle"]["p99_ms"] is None
    assert section["trade"]["by_symbol"][A]["rows"] == 100
    assert section["round_trip"]["ticker"]["requests"] == 5
    assert section["freshness"]["ticker"]["p90_ms"] == 30
    assert [e["kind"] for e in section["excursions"]] == ["late", "negative"]


def test_the_section_alone_equals_the_checks_part(recording: Recording) -> None:
    from analytics.latency import latency_section

    assert latency_section(recording, limit=100) == run_checks(recording)["latency"]
