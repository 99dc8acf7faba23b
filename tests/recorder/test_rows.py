"""Records to Arrow: exact schemas, exact values, loud refusals."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from recorder_factories import BASE_NS, candle, event, orderbook, raw, ticker, trade

from recorder import RestSnapshot, ValueDoesNotFit, from_table, to_batch, to_table
from recorder.rows import dataset_of, symbol_of
from recorder.schema import schema_for

SAMPLES = {
    "trade": [trade("KRW-BTC", 7, BASE_NS), trade("KRW-ETH", 9, BASE_NS + 1, source="rest")],
    "ticker": [ticker("KRW-BTC", BASE_NS)],
    "orderbook": [orderbook("KRW-BTC", BASE_NS), orderbook("KRW-ETH", BASE_NS + 5, units=15)],
    "candle": [candle("KRW-BTC", BASE_NS)],
    "events": [event(BASE_NS)],
    "raw": [raw(BASE_NS), raw(BASE_NS + 1, b"\x00\xff")],
}


@pytest.mark.parametrize("dataset", sorted(SAMPLES))
def test_batch_has_exactly_the_contract_schema_and_round_trips(dataset: str) -> None:
    records = SAMPLES[dataset]
    seqs = [10 + i for i in range(len(records))]
    table = to_table(dataset, records, session_id="s1", seqs=seqs)
    assert table.schema == schema_for(dataset)
    assert table.schema.metadata == schema_for(dataset).metadata
    assert table["seq"].to_pylist() == seqs
    assert table["session_id"].to_pylist() == ["s1"] * len(records)
    assert from_table(dataset, table) == records


@pytest.mark.parametrize("dataset", ["trade", "ticker", "orderbook", "candle"])
def test_rest_snapshots_carry_request_times(dataset: str) -> None:
    snapshots = [
        RestSnapshot(record=r, request_start_ns=BASE_NS - 9, request_end_ns=BASE_NS + 9)
        for r in SAMPLES[dataset]
    ]
    table = to_table(f"rest_{dataset}", snapshots, session_id="s", seqs=range(len(snapshots)))
    assert table.schema == schema_for(f"rest_{dataset}")
    assert table["request_end_ns"].to_pylist() == [BASE_NS + 9] * len(snapshots)
    assert from_table(f"rest_{dataset}", table) == snapshots
    assert {dataset_of(s) for s in snapshots} == {f"rest_{dataset}"}
    assert symbol_of(snapshots[0]) == snapshots[0].record.symbol  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (Decimal("0.0000000000000000001"), "decimal128"),
        (Decimal("123456789012345678901"), "decimal128"),
        (Decimal("NaN"), "finite"),
        (1.5, "float"),
    ],
)
def test_a_value_that_does_not_fit_is_a_loud_error_naming_field_and_value(
    value: object, why: str
) -> None:
    bad = replace(trade("KRW-XRP", 1, BASE_NS), trade_volume=value)  # type: ignore[arg-type]
    records = [trade("KRW-BTC", 1, BASE_NS), bad]
    with pytest.raises(ValueDoesNotFit, match=why) as info:
        to_batch("trade", records, session_id="s", seqs=[0, 1])
    assert info.value.field == "trade_volume"
    assert info.value.symbol == "KRW-XRP"
    assert "trade.trade_volume" in str(info.value)
    assert str(value) in str(info.value)


def test_an_orderbook_level_that_does_not_fit_is_named() -> None:
    book = orderbook("KRW-BTC", BASE_NS, units=3)
    bad = replace(book, ask_volumes=(Decimal(1), Decimal("1e-30"), Decimal(2)))
    with pytest.raises(ValueDoesNotFit, match="ask_volumes"):
        to_batch("orderbook", [bad], session_id="s", seqs=[0])


def test_an_exchange_time_finer_than_a_millisecond_is_refused() -> None:
    fine = datetime(2025, 11, 26, 0, 0, 0, 1500, tzinfo=UTC)
    bad = replace(trade("KRW-BTC", 1, BASE_NS), trade_timestamp=fine)
    with pytest.raises(ValueDoesNotFit, match="millisecond"):
        to_batch("trade", [bad], session_id="s", seqs=[0])


def test_a_naive_time_is_refused() -> None:
    bad = replace(trade("KRW-BTC", 1, BASE_NS), trade_timestamp="yesterday")
    with pytest.raises(ValueDoesNotFit, match="trade_timestamp"):
        to_batch("trade", [bad], session_id="s", seqs=[0])


def test_a_missing_required_value_is_refused() -> None:
    bad = replace(trade("KRW-BTC", 1, BASE_NS), trade_side=None)  # type: ignore[arg-type]
    with pytest.raises(ValueDoesNotFit, match="required"):
        to_batch("trade", [bad], session_id="s", seqs=[0])
    with pytest.raises(ValueDoesNotFit, match="required"):
        to_batch("trade", [trade("KRW-BTC", 1, BASE_NS)], session_id=None, seqs=[0])  # type: ignore[arg-type]


def test_wrong_inputs_are_refused_clearly() -> None:
    with pytest.raises(TypeError, match="TradeData"):
        to_batch("trade", [ticker("KRW-BTC", BASE_NS)], session_id="s", seqs=[0])
    with pytest.raises(ValueError, match="one seq per record"):
        to_batch("trade", [trade("KRW-BTC", 1, BASE_NS)], session_id="s", seqs=[])
    with pytest.raises(KeyError, match="unknown dataset"):
        to_batch("trades", [], session_id="s", seqs=[])
    with pytest.raises(TypeError, match="cannot store"):
        dataset_of("a string")  # type: ignore[arg-type]


_DIGITS = st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)


@settings(deadline=None, max_examples=200)
@given(_DIGITS, st.integers(min_value=0, max_value=18))
def test_every_decimal_within_20_integer_and_18_fractional_digits_round_trips(
    digits: int, exponent: int
) -> None:
    value = Decimal(digits).scaleb(-exponent)
    if value.adjusted() >= 20:
        return
    record = replace(trade("KRW-BTC", 1, BASE_NS), trade_price=value)
    table = to_table("trade", [record], session_id="s", seqs=[0])
    back = table["trade_price"][0].as_py()
    assert back == value
    assert isinstance(table["trade_price"].type, pa.Decimal128Type)
