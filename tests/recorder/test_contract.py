"""The on-disk contract agrees with the model: every record field has its column."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from backbone.models import (
    CandleData,
    ConnectionEvent,
    OrderbookData,
    TickerData,
    TradeData,
    record_fields,
)
from recorder import layout, schema

HEAD = ("session_id", "seq", "received_ns")
MODELS = {
    "ticker": TickerData,
    "trade": TradeData,
    "orderbook": OrderbookData,
    "candle": CandleData,
    "events": ConnectionEvent,
}


@pytest.mark.parametrize("dataset", sorted(MODELS))
def test_columns_are_the_model_fields(dataset: str) -> None:
    columns = set(schema.schema_for(dataset).names)
    assert columns == set(HEAD) | set(record_fields(MODELS[dataset]))


@pytest.mark.parametrize("dataset", schema.STREAM_DATASETS)
def test_rest_datasets_add_request_times(dataset: str) -> None:
    stream = schema.schema_for(dataset).names
    rest = schema.schema_for(f"rest_{dataset}").names
    assert rest == [*stream, "request_start_ns", "request_end_ns"]


def test_files_carry_version_and_dataset() -> None:
    meta = schema.schema_for("trade").metadata
    assert schema.schema_version_of(meta) == schema.SCHEMA_VERSION
    assert meta[schema.DATASET_KEY] == b"trade"


@pytest.mark.parametrize(
    "metadata", [None, {}, {schema.SCHEMA_VERSION_KEY: b"999"}, {schema.SCHEMA_VERSION_KEY: b"x"}]
)
def test_unknown_versions_are_refused(metadata: dict[bytes, bytes] | None) -> None:
    with pytest.raises(schema.UnknownSchemaVersion, match="tape"):
        schema.schema_version_of(metadata)


def test_decimal_column_refuses_a_value_that_does_not_fit() -> None:
    from decimal import Decimal

    fine = Decimal("78039261076.51241000")
    assert pa.array([fine], schema.DECIMAL).to_pylist() == [fine]
    with pytest.raises(pa.ArrowInvalid):
        pa.array([Decimal("0.0000000000000000001")], schema.DECIMAL)
    with pytest.raises(pa.ArrowInvalid):
        pa.array([Decimal("1" + "0" * 20)], schema.DECIMAL)


def test_partition_paths() -> None:
    from pathlib import Path

    root = Path("/r")
    ns = 1_764_115_200_000_000_000  # 2025-11-26T00:00:00Z
    path = layout.partition_path(root, "trade", "KRW-BTC", ns, ns + 5)
    assert path == Path(f"/r/trade/date=2025-11-26/symbol=KRW-BTC/part-{ns}-{ns + 5}.parquet")
    assert layout.parse_part_name(path.name) == layout.PartName(ns, ns + 5)
    assert layout.partition_path(root, "events", None, ns, ns).parent == Path(
        "/r/events/date=2025-11-26"
    )
    assert layout.date_of_ns(ns - 1) == date(2025, 11, 25)
    with pytest.raises(ValueError, match="00:00 UTC"):
        layout.partition_path(root, "trade", "KRW-BTC", ns - 1, ns)
    with pytest.raises(ValueError, match="QUOTE-BASE"):
        layout.partition_path(root, "trade", "krw-btc", ns, ns)
    with pytest.raises(ValueError, match="date only"):
        layout.partition_path(root, "events", "KRW-BTC", ns, ns)
    assert layout.parse_part_name("notes.txt") is None
