"""Consistency measures on a recording with planted defects: the exact counts are found."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from analytics_synth import MS, T0_NS, Synth, at, dec

from analytics import Recording, run_checks

A, B = "KRW-BTC", "KRW-ETH"
STEP_NS = 100 * MS  # one trade every 100 ms
DROPPED_TRADES = {20, 21, 22, 60}  # trade stream lost these
MISPRICED_TRADE = 70  # the stream has another price for it
UNLISTED_BY_REST = 45  # the REST answer at 50 omits it
DROPPED_TICKER = 20


def ts_ns(i: int) -> int:
    return T0_NS + i * STEP_NS


def price(i: int) -> Decimal:
    return dec(100 + i % 7)


def trade_fields(symbol: str, i: int) -> dict[str, object]:
    return {
        "symbol": symbol,
        "sequential_id": i,
        "trade_price": price(i),
        "trade_volume": dec("0.5") + dec(i) / 1000,
        "trade_timestamp": at(ts_ns(i)),
    }


def ticker_fields(i: int) -> dict[str, object]:
    return {
        "symbol": A,
        "current_price": price(i),
        "timestamp": at(ts_ns(i)),
        "trade_timestamp": at(ts_ns(i)),
    }


def book_fields(i: int) -> dict[str, object]:
    return {
        "symbol": A,
        "timestamp": at(ts_ns(i)),
        "bid_prices": (price(i) - 1, price(i) - 2),
        "ask_prices": (price(i) + 1, price(i) + 2),
    }


def build(root: Path) -> Path:
    synth = Synth(root)
    # a REST ticker before any WebSocket ticker: nothing to compare it with
    synth.add("rest_ticker", received_ns=T0_NS + 8 * MS, **{**ticker_fields(0)})
    for i in range(1, 101):
        got = ts_ns(i) + 5 * MS
        fields = trade_fields(A, i)
        if i == MISPRICED_TRADE:
            fields["trade_price"] = price(i) + 1000
        if i not in DROPPED_TRADES:
            synth.add("trade", received_ns=got, **fields)
        if i != DROPPED_TICKER:
            synth.add("ticker", received_ns=got, **ticker_fields(i))
        synth.add("orderbook", received_ns=got, **book_fields(i))
        if i <= 30:
            synth.add("trade", received_ns=got, **trade_fields(B, i))
        if i % 10:
            continue
        answer = ts_ns(i) + 8 * MS
        for j in range(max(1, i - 14), i + 1):
            if not (i == 50 and j == UNLISTED_BY_REST):
                synth.add("rest_trade", received_ns=answer, **trade_fields(A, j))
        if i == 30:
            synth.add("rest_trade", received_ns=answer, **trade_fields(B, 30))
            for j in range(1, 30):
                synth.add("rest_trade", received_ns=answer, **trade_fields(B, j))
        rest_ticker = ticker_fields(i)
        if i == 30:
            rest_ticker["volume_24h"] = dec(999)
        if i == 40:  # a stale answer: the state of trade 35
            rest_ticker = ticker_fields(35)
        synth.add("rest_ticker", received_ns=answer, **rest_ticker)
        if i in (10, 50, 90):
            book = book_fields(i)
            if i == 50:
                book["ask_volumes"] = (dec(3), dec(5))
            synth.add("rest_orderbook", received_ns=answer, **book)
    # the last REST answers show the state of trade 101, which the stream never delivered (the
    # recording ended first): not compared, counted apart
    synth.add("rest_ticker", received_ns=ts_ns(101) + 8 * MS, **ticker_fields(101))
    synth.add("rest_orderbook", received_ns=ts_ns(101) + 8 * MS, **book_fields(101))
    # one REST 1s-candle answer at the end: seconds 0..10, from every trade (the truth)
    for second in range(11):
        ids = [i for i in range(1, 101) if (i * STEP_NS) // 1_000_000_000 == second]
        synth.add(
            "rest_candle",
            received_ns=ts_ns(100) + 20 * MS,
            symbol=A,
            timeframe="1s",
            open_time=at(T0_NS + second * 1_000_000_000),
            timestamp=at(ts_ns(ids[-1])),
            open_price=price(ids[0]),
            high_price=max(price(i) for i in ids),
            low_price=min(price(i) for i in ids),
            close_price=price(ids[-1]),
            volume=sum((dec("0.5") + dec(i) / 1000 for i in ids), Decimal(0)),
            quote_volume=sum((price(i) * (dec("0.5") + dec(i) / 1000) for i in ids), Decimal(0)),
        )
    return synth.write()


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    with Recording(build(tmp_path_factory.mktemp("consistency"))) as opened:
        yield opened  # type: ignore[misc]


def test_tickers_against_the_websocket_state_in_force(recording: Recording) -> None:
    summary = recording.one("ticker_summary")
    assert summary == {
        "rest_snapshots": 12,
        "compared": 10,
        "agreed": 8,
        "unmatched": 1,
        "after_stream": 1,
        "stale": 1,
        "max_stale_ms": 500,
    }
    mismatched = {
        row["rest_time"]: row["mismatched_fields"]
        for row in recording.rows("ticker_checks")
        if row["mismatched_fields"]
    }
    assert mismatched == {
        at(ts_ns(20)): ["current_price", "trade_timestamp"],
        at(ts_ns(30)): ["volume_24h"],
    }
    stale = [row for row in recording.rows("staleness") if row["stale"]]
    assert [(row["channel"], row["rest_time"], row["ws_time"]) for row in stale] == [
        ("ticker", at(ts_ns(35)), at(ts_ns(40)))
    ]


def test_orderbooks_level_by_level(recording: Recording) -> None:
    assert recording.one("orderbook_summary") == {
        "rest_snapshots": 4,
        "compared": 3,
        "agreed": 2,
        "unmatched": 0,
        "after_stream": 1,
        "levels_compared": 6,
        "levels_agreed": 5,
        "stale": 0,
        "max_stale_ms": None,
    }
    by_level = {row["level_index"]: row for row in recording.rows("orderbook_agreement_by_level")}
    assert {k: (v["compared"], v["agreed"]) for k, v in by_level.items()} == {1: (3, 3), 2: (3, 2)}


def test_trades_by_key_over_the_intervals_rest_covered(recording: Recording) -> None:
    summary = recording.one("trade_summary")
    # A: ids 2..99 fall strictly inside some answer's interval, but the answer at 50 left
    # out 45 and no other answer lists it; B: ids 2..29 inside the one answer.
    assert summary == {
        "rest_answers": 11,
        "compared_answers": 11,
        "compared": 97 + 28,
        "missing_from_stream": len(DROPPED_TRADES),
        "mismatched": 1,
        "missing_from_rest": 1,
    }
    runs = recording.rows("trade_missing_runs", order="first_time")
    assert [(r["symbol"], r["first_time"], r["last_time"], r["trades"]) for r in runs] == [
        (A, at(ts_ns(20)), at(ts_ns(22)), 3),
        (A, at(ts_ns(60)), at(ts_ns(60)), 1),
    ]
    unlisted = recording.rows("stream_trades_unlisted")
    assert [(r["symbol"], r["sequential_id"]) for r in unlisted] == [(A, UNLISTED_BY_REST)]


def test_candles_rebuilt_from_trades(recording: Recording) -> None:
    # seconds 1..8 are closed and inside the stream's span; 2 and 6 lost trades, 7 holds
    # the mispriced one
    assert recording.one("candle_summary") == {"compared": 8, "agreed": 5, "not_rebuilt": 0}
    bad = {
        row["open_time"]: row["mismatched_fields"]
        for row in recording.rows("candle_checks")
        if row["mismatched_fields"]
    }
    second = 1_000_000_000
    assert set(bad) == {at(T0_NS + s * second) for s in (2, 6, 7)}
    assert "volume" in bad[at(T0_NS + 2 * second)]
    # trade 70 opens second 7 and is its highest
    assert bad[at(T0_NS + 7 * second)] == ["open_price", "high_price", "quote_volume"]


def test_consistency_section(recording: Recording) -> None:
    section = run_checks(recording)["consistency"]
    assert section["ticker"]["agreement_rate"] == 0.8
    assert section["ticker"]["mismatches_by_field"]["current_price"] == 1
    assert section["ticker"]["mismatches_by_field"]["volume_24h"] == 1
    assert sum(section["ticker"]["mismatches_by_field"].values()) == 3
    assert section["orderbook"]["level_agreement_rate"] == round(5 / 6, 6)
    assert section["trade"]["missing_runs"][0] == {
        "symbol": A,
        "first_time": "2025-11-26T01:00:02.000000Z",
        "last_time": "2025-11-26T01:00:02.200000Z",
        "trades": 3,
    }
    assert section["candle"]["mismatches"] == 3


def test_a_candle_interval_with_no_streamed_trade(tmp_path: Path) -> None:
    synth = Synth(tmp_path)
    for i in (1, 2, 25, 26):  # nothing streamed in second 1 (ids 10..19)
        synth.add("trade", received_ns=ts_ns(i), **trade_fields(A, i))
    for second in (1, 2):
        synth.add(
            "rest_candle",
            received_ns=ts_ns(30),
            symbol=A,
            timeframe="1s",
            open_time=at(T0_NS + second * 1_000_000_000),
        )
    with Recording(synth.write()) as recording:
        assert recording.one("candle_summary") == {"compared": 1, "agreed": 0, "not_rebuilt": 1}


def test_a_rest_state_among_several_websocket_states_of_one_millisecond(tmp_path: Path) -> None:
    # trades 1 and 2 happened in the same millisecond: the WebSocket sent a ticker and a book
    # after each, all with one exchange time; REST answered between them (trade 1's state)
    same = ts_ns(5)
    synth = Synth(tmp_path)
    for i in (1, 2):
        got = same + i * MS
        synth.add("ticker", received_ns=got, **{**ticker_fields(i), "timestamp": at(same)})
        synth.add("orderbook", received_ns=got, **{**book_fields(i), "timestamp": at(same)})
    answer = same + 3 * MS
    synth.add("rest_ticker", received_ns=answer, **{**ticker_fields(1), "timestamp": at(same)})
    synth.add("rest_orderbook", received_ns=answer, **{**book_fields(1), "timestamp": at(same)})
    # and a REST answer agreeing with neither: compared with the last one delivered
    synth.add("rest_ticker", received_ns=answer, **{**ticker_fields(3), "timestamp": at(same)})
    with Recording(synth.write()) as recording:
        tickers = recording.rows("ticker_checks", order="rest_seq")
        assert [row["mismatched_fields"] for row in tickers] == [
            [],
            ["current_price", "trade_timestamp"],
        ]
        chosen = recording.rows("ticker_comparisons", order="rest_seq, field")
        assert {row["ws_seq"] for row in chosen if row["rest_seq"] == tickers[0]["rest_seq"]} == {0}
        assert {row["ws_seq"] for row in chosen if row["rest_seq"] == tickers[1]["rest_seq"]} == {2}
        books = recording.rows("orderbook_checks")
        assert [(row["agrees"], row["ws_seq"]) for row in books] == [(True, 1)]
