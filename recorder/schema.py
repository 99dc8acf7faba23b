"""The on-disk contract, part one: the Arrow schema of every dataset tape writes.

Every dataset is plain hive-partitioned Parquet that DuckDB, polars, pyarrow and Spark read
with no project code. The columns follow the fields of the records in ``backbone.models``
plus three that every row carries:

- ``session_id`` (string): the recording session that wrote the row;
- ``seq`` (int64): the order in which the backbone delivered records within that session,
  one counter across all datasets of the session (the replay order is built on it);
- ``received_ns`` (int64): the local receive time, integer nanoseconds since the Unix epoch.

Types:

- prices, sizes, rates: ``decimal128(38, 18)`` (:data:`DECIMAL`): 20 integer digits and 18
  fractional digits, wider than anything Upbit sends (its largest figures are 24 h turnovers
  near 10^12 KRW, its finest 10^-10 rates and 10^-8 sizes). A value that does not fit is an
  error when the row is written, never a silent rounding;
- exchange times: ``timestamp[ms, tz=UTC]`` (Upbit's resolution), dates: ``date32``;
- orderbook levels: ``list<decimal128(38, 18)>``, best level first.

The REST reference datasets (``rest_*``) have the columns of their stream dataset plus
``request_start_ns`` and ``request_end_ns``, the local times the request was sent and its
response arrived. ``raw`` keeps undecoded frames and bodies for renormalization.

The schema version is written into every file's key-value metadata
(:data:`SCHEMA_VERSION_KEY`) and into the recording's manifest. Bump :data:`SCHEMA_VERSION`
on any change to a column's name, type or meaning, and keep reading older versions.

This module imports nothing of tape's (analytics reads it without the live client).
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

__all__ = [
    "DATASETS",
    "DATASET_KEY",
    "DATE_ONLY_DATASETS",
    "DECIMAL",
    "DECIMAL_PRECISION",
    "DECIMAL_SCALE",
    "REST_DATASETS",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_KEY",
    "STREAM_DATASETS",
    "SUPPORTED_SCHEMA_VERSIONS",
    "UnknownSchemaVersion",
    "schema_for",
    "schema_version_of",
]

SCHEMA_VERSION: Final = 1
"""The version of the on-disk contract this code writes."""

SUPPORTED_SCHEMA_VERSIONS: Final = frozenset({1})
"""Every version this code can read."""

SCHEMA_VERSION_KEY: Final = b"tape.schema_version"
"""Parquet key-value metadata key holding the schema version, as ASCII digits."""

DATASET_KEY: Final = b"tape.dataset"
"""Parquet key-value metadata key holding the dataset name."""

DECIMAL_PRECISION: Final = 38
DECIMAL_SCALE: Final = 18
DECIMAL: Final = pa.decimal128(DECIMAL_PRECISION, DECIMAL_SCALE)

_TIME = pa.timestamp("ms", tz="UTC")
_LEVELS = pa.list_(DECIMAL)

_ROW_HEAD: Final = (
    pa.field("session_id", pa.string(), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("received_ns", pa.int64(), nullable=False),
    pa.field("source", pa.string(), nullable=False),
)


def _req(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=False)


def _opt(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=True)


_TICKER = pa.schema(
    [
        *_ROW_HEAD,
        _req("symbol", pa.string()),
        _req("current_price", DECIMAL),
        _req("change_rate", DECIMAL),
        _req("change_amount", DECIMAL),
        _req("volume_24h", DECIMAL),
        _req("high_24h", DECIMAL),
        _req("low_24h", DECIMAL),
        _req("prev_closing_price", DECIMAL),
        _req("timestamp", _TIME),
        _req("opening_price", DECIMAL),
        _req("change", pa.string()),
        _req("trade_volume", DECIMAL),
        _req("trade_timestamp", _TIME),
        _req("acc_trade_volume", DECIMAL),
        _req("acc_trade_price", DECIMAL),
        _req("acc_trade_price_24h", DECIMAL),
        _req("highest_52_week_price", DECIMAL),
        _req("highest_52_week_date", pa.date32()),
        _req("lowest_52_week_price", DECIMAL),
        _req("lowest_52_week_date", pa.date32()),
        _opt("ask_bid", pa.string()),
        _opt("acc_ask_volume", DECIMAL),
        _opt("acc_bid_volume", DECIMAL),
        _opt("market_state", pa.string()),
        _opt("delisting_date", pa.date32()),
        _opt("stream_type", pa.string()),
    ]
)

_TRADE = pa.schema(
    [
        *_ROW_HEAD,
        _req("symbol", pa.string()),
        _req("trade_price", DECIMAL),
        _req("trade_volume", DECIMAL),
        _req("trade_side", pa.string()),
        _req("trade_timestamp", _TIME),
        _req("sequential_id", pa.int64()),
        _req("prev_closing_price", DECIMAL),
        _req("change", pa.string()),
        _req("change_price", DECIMAL),
        _opt("message_timestamp", _TIME),
        _opt("best_ask_price", DECIMAL),
        _opt("best_ask_size", DECIMAL),
        _opt("best_bid_price", DECIMAL),
        _opt("best_bid_size", DECIMAL),
        _opt("stream_type", pa.string()),
    ]
)

_ORDERBOOK = pa.schema(
    [
        *_ROW_HEAD,
        _req("symbol", pa.string()),
        _req("bid_prices", _LEVELS),
        _req("bid_volumes", _LEVELS),
        _req("ask_prices", _LEVELS),
        _req("ask_volumes", _LEVELS),
        _req("timestamp", _TIME),
        _req("total_ask_size", DECIMAL),
        _req("total_bid_size", DECIMAL),
        _opt("level", DECIMAL),
        _opt("stream_type", pa.string()),
    ]
)

_CANDLE = pa.schema(
    [
        *_ROW_HEAD,
        _req("symbol", pa.string()),
        _req("timeframe", pa.string()),
        _req("open_time", _TIME),
        _req("open_price", DECIMAL),
        _req("high_price", DECIMAL),
        _req("low_price", DECIMAL),
        _req("close_price", DECIMAL),
        _req("volume", DECIMAL),
        _req("quote_volume", DECIMAL),
        _req("timestamp", _TIME),
        _opt("stream_type", pa.string()),
        _opt("prev_closing_price", DECIMAL),
        _opt("change_price", DECIMAL),
        _opt("change_rate", DECIMAL),
    ]
)

_EVENTS = pa.schema(
    [
        *_ROW_HEAD,
        _req("kind", pa.string()),
        _opt("channel", pa.string()),
        _req("symbols", pa.list_(pa.string())),
        _opt("start_ns", pa.int64()),
        _opt("end_ns", pa.int64()),
        _opt("exchange_start", _TIME),
        _opt("exchange_end", _TIME),
        _req("cause", pa.string()),
        _opt("rows_recovered", pa.int64()),
        _opt("rows_missing", pa.int64()),
        _req("detail", pa.string()),
    ]
)

_RAW = pa.schema(
    [
        *_ROW_HEAD,
        # WebSocket: the connection's label; REST: the request path with its query string.
        _req("endpoint", pa.string()),
        _req("payload", pa.binary()),
    ]
)

_REQUEST_TIMES = (
    _req("request_start_ns", pa.int64()),
    _req("request_end_ns", pa.int64()),
)

STREAM_DATASETS: Final = ("ticker", "trade", "orderbook", "candle")
"""Datasets holding exactly what the backbone's streams delivered."""

REST_DATASETS: Final = tuple(f"rest_{name}" for name in STREAM_DATASETS)
"""Datasets holding the recorder's periodic REST snapshots (the streams' reference)."""

DATE_ONLY_DATASETS: Final = frozenset({"events", "raw"})
"""Datasets partitioned by date only (their rows carry no single symbol)."""

_SCHEMAS: Final[dict[str, pa.Schema]] = {
    "ticker": _TICKER,
    "trade": _TRADE,
    "orderbook": _ORDERBOOK,
    "candle": _CANDLE,
    **{
        f"rest_{name}": pa.schema([*schema, *_REQUEST_TIMES])
        for name, schema in {
            "ticker": _TICKER,
            "trade": _TRADE,
            "orderbook": _ORDERBOOK,
            "candle": _CANDLE,
        }.items()
    },
    "events": _EVENTS,
    "raw": _RAW,
}

DATASETS: Final = tuple(_SCHEMAS)
"""Every dataset name, in a stable order."""


class UnknownSchemaVersion(ValueError):
    """A file was written by a schema version this code cannot read: upgrade tape."""


def schema_for(dataset: str, version: int = SCHEMA_VERSION) -> pa.Schema:
    """Return the Arrow schema of ``dataset`` at schema ``version``, with its metadata.

    Raises:
        KeyError: ``dataset`` is not one of :data:`DATASETS`.
        UnknownSchemaVersion: ``version`` is not one this code reads.
    """
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise UnknownSchemaVersion(
            f"schema version {version} is not one this tape reads "
            f"({sorted(SUPPORTED_SCHEMA_VERSIONS)}): install a newer tape to read it"
        )
    try:
        schema = _SCHEMAS[dataset]
    except KeyError:
        raise KeyError(
            f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}"
        ) from None
    return schema.with_metadata(
        {SCHEMA_VERSION_KEY: str(version).encode(), DATASET_KEY: dataset.encode()}
    )


def schema_version_of(metadata: dict[bytes, bytes] | None) -> int:
    """Return the schema version recorded in a Parquet file's key-value metadata.

    Raises:
        UnknownSchemaVersion: the metadata carries no version, or one this code cannot read.
    """
    raw = (metadata or {}).get(SCHEMA_VERSION_KEY)
    if raw is None:
        raise UnknownSchemaVersion(
            "the file carries no tape schema version: it was not written by tape's recorder"
        )
    try:
        version = int(raw)
    except ValueError:
        raise UnknownSchemaVersion(f"unreadable tape schema version {raw!r}") from None
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise UnknownSchemaVersion(
            f"the file was written with schema version {version}, which this tape cannot read "
            f"(it reads {sorted(SUPPORTED_SCHEMA_VERSIONS)}): install a newer tape"
        )
    return version
