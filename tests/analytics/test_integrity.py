"""Integrity checks on a recording with one planted defect of each kind."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from analytics_synth import MS, T0_NS, Synth, at, dec

from analytics import Recording, run_checks
from backbone.models import TradeData
from recorder import to_table
from recorder.layout import partition_path

A = "KRW-BTC"


def build(root: Path) -> Path:
    synth = Synth(root)
    books = [
        {},  # sound
        {"bid_prices": (dec(101), dec(98))},  # crossed
        {"bid_prices": (dec(98), dec(99))},  # unsorted
        {"total_bid_size": dec(4)},  # totals differ from the levels
        {"bid_volumes": (dec(0), dec(2)), "total_bid_size": dec(2)},  # a size of zero
        {"bid_volumes": (dec(1),), "total_bid_size": dec(1)},  # one size for two prices
    ]
    for n, book in enumerate(books):
        synth.add("orderbook", received_ns=T0_NS + n * MS, symbol=A, **book)
    synth.add("rest_orderbook", received_ns=T0_NS + 10 * MS, symbol=A, ask_prices=(dec(98),) * 2)
    for i in range(1, 61):
        fields = {"symbol": A, "sequential_id": i, "trade_timestamp": at(T0_NS + i * 100 * MS)}
        if i == 40:  # its exchange time runs backwards
            fields["trade_timestamp"] = at(T0_NS + 35 * 100 * MS)
        if i == 20:
            fields["trade_price"] = dec(0)
        synth.add("trade", received_ns=T0_NS + i * 100 * MS + 5 * MS, **fields)
        if i == 10:  # delivered twice, identical
            synth.add("trade", received_ns=T0_NS + i * 100 * MS + 6 * MS, **fields)
        if i == 11:  # delivered three times, once with another size
            synth.add("trade", received_ns=T0_NS + i * 100 * MS + 6 * MS, **fields)
            synth.add(
                "trade",
                received_ns=T0_NS + i * 100 * MS + 7 * MS,
                **{**fields, "trade_volume": dec(2)},
            )
    synth.add("ticker", received_ns=T0_NS, symbol=A, high_24h=dec(-5))
    synth.add("rest_candle", received_ns=T0_NS, symbol=A, volume=dec(-1))
    synth.write()
    # a part of session s1 reusing seq 0 (an orderbook's): written past the recorder on purpose
    trade = TradeData(
        symbol="KRW-XRP",
        trade_price=dec(100),
        trade_volume=dec(1),
        trade_side="ASK",
        trade_timestamp=at(T0_NS + 7000 * MS),
        sequential_id=70,
        source="websocket",
        received_ns=T0_NS + 7000 * MS,
        prev_closing_price=dec(100),
        change="EVEN",
        change_price=dec(0),
    )
    path = partition_path(root, "trade", "KRW-XRP", trade.received_ns, trade.received_ns)
    path.parent.mkdir(parents=True)
    pq.write_table(to_table("trade", [trade], session_id="s1", seqs=[0]), path)
    return root


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    with Recording(build(tmp_path_factory.mktemp("integrity"))) as opened:
        yield opened  # type: ignore[misc]


def test_each_defect_is_counted_once(recording: Recording) -> None:
    assert recording.one("integrity_summary") == {
        "crossed_books": 1 + 1,  # the REST book's asks sit below its bids
        "unsorted_books": 1 + 1,  # ... and repeat a price
        "malformed_books": 1,
        "book_total_mismatches": 1,
        "non_positive": 1 + 3,  # the zero size; trade price, ticker high, candle volume
        "duplicate_trades": 1 + 2,
        "conflicting_duplicates": 1,
        "out_of_order": 1,
        "seq_duplicates": 1,
    }


def test_the_flagged_records(recording: Recording) -> None:
    values = {(r["dataset"], tuple(r["fields"])) for r in recording.rows("value_checks")}
    assert values == {
        ("trade", ("trade_price",)),
        ("ticker", ("high_24h",)),
        ("rest_candle", ("volume",)),
    }
    late = recording.one("out_of_order")
    assert late["exchange_time"] == at(T0_NS + 3500 * MS)
    assert late["previous_time"] == at(T0_NS + 3900 * MS)
    duplicates = {r["sequential_id"]: r for r in recording.rows("trade_duplicates")}
    assert {k: (v["copies"], v["conflicting"]) for k, v in duplicates.items()} == {
        10: (2, False),
        11: (3, True),
    }


def test_integrity_section(recording: Recording) -> None:
    section = run_checks(recording)["integrity"]
    assert section["problems"] == 2 + 2 + 1 + 1 + 4 + 3 + 1 + 1
