"""Records to Arrow and back, in exactly the schemas of :mod:`recorder.schema`.

:func:`to_batch` turns the records of one dataset, with their session id and ``seq`` numbers,
into a :class:`pyarrow.RecordBatch` whose schema is ``schema_for(dataset)``. Every value is
stored exactly or not at all: a Decimal that does not fit ``decimal128(38, 18)``, an exchange
time finer than a millisecond, or a missing required value raises :class:`ValueDoesNotFit`
naming the dataset, the field, the value and the symbol.

:func:`from_table` is the inverse for tests and tools: it rebuilds the model's records from
rows (Decimals compare equal to the originals; their exponent is the column's scale).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter
from typing import Any, Final, TypeAlias

import pyarrow as pa

from backbone.models import (
    CandleData,
    ConnectionEvent,
    EventKind,
    MarketRecord,
    OrderbookData,
    RawFrame,
    TickerData,
    TradeData,
)
from recorder.errors import ValueDoesNotFit
from recorder.schema import DATE_ONLY_DATASETS, DECIMAL, REST_DATASETS, schema_for

__all__ = [
    "DATASET_OF",
    "AnyRecord",
    "RestSnapshot",
    "dataset_of",
    "from_table",
    "symbol_of",
    "to_batch",
    "to_table",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class RestSnapshot:
    """A record fetched by one of the recorder's reference REST requests.

    It is stored in ``rest_<dataset>`` with the local times the request was sent
    (``request_start_ns``) and its response arrived (``request_end_ns``).
    """

    record: MarketRecord
    request_start_ns: int
    request_end_ns: int


AnyRecord: TypeAlias = MarketRecord | ConnectionEvent | RawFrame | RestSnapshot
"""Anything the recorder stores, each in its own dataset."""

DATASET_OF: Final[dict[type, str]] = {
    TickerData: "ticker",
    TradeData: "trade",
    OrderbookData: "orderbook",
    CandleData: "candle",
    ConnectionEvent: "events",
    RawFrame: "raw",
}
"""The dataset of each record class (a :class:`RestSnapshot` goes to ``rest_`` + its record's)."""

_CLASS_OF: Final = {name: cls for cls, name in DATASET_OF.items()}
_HEAD: Final = ("session_id", "seq", "received_ns", "source")
_REST_TAIL: Final = ("request_start_ns", "request_end_ns")
_TIME_US: Final = pa.timestamp("us", tz="UTC")


def dataset_of(record: AnyRecord) -> str:
    """Return the dataset ``record`` is stored in.

    Raises:
        TypeError: ``record`` is not a record the recorder stores.
    """
    if type(record) is RestSnapshot:
        return "rest_" + DATASET_OF[type(record.record)]
    try:
        return DATASET_OF[type(record)]
    except KeyError:
        raise TypeError(
            f"cannot store a {type(record).__name__}: expected a record of backbone.models, "
            "a RawFrame or a RestSnapshot"
        ) from None


def symbol_of(record: AnyRecord) -> str | None:
    """Return the symbol partition of ``record`` (``None`` for date-only datasets)."""
    inner = record.record if type(record) is RestSnapshot else record
    return getattr(inner, "symbol", None) if type(inner) in _SYMBOLED else None


_SYMBOLED: Final = frozenset({TickerData, TradeData, OrderbookData, CandleData})


def _decimal_array(
    dataset: str, name: str, values: list[Any], symbols: Sequence[str | None], list_: bool
) -> pa.Array:
    type_ = pa.list_(DECIMAL) if list_ else DECIMAL
    try:
        return pa.array(values, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    # Find the first offending value so the error can name it.
    for index, value in enumerate(values):
        for item in value if list_ and value is not None else (value,):
            if item is None:
                continue
            if not isinstance(item, Decimal | int):
                why = f"a {type(item).__name__} is not an exact number: pass a Decimal"
            elif isinstance(item, Decimal) and not item.is_finite():
                why = "not a finite number"
            else:
                try:
                    pa.array([item], DECIMAL)
                    continue
                except (pa.ArrowInvalid, pa.ArrowTypeError):
                    why = (
                        "it does not fit decimal128(38, 18) (at most 20 integer and "
                        "18 fractional digits)"
                    )
            raise ValueDoesNotFit(dataset, name, value, symbols[index], why)
    raise AssertionError("pyarrow refused a decimal column without an offending value")


def _time_array(
    dataset: str, name: str, values: list[Any], symbols: Sequence[str | None], type_: pa.DataType
) -> pa.Array:
    try:
        micros = pa.array(values, _TIME_US)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        index = next(i for i, v in enumerate(values) if v is not None and not hasattr(v, "tzinfo"))
        raise ValueDoesNotFit(dataset, name, values[index], symbols[index], str(exc)) from None
    try:
        return micros.cast(type_, safe=True)
    except pa.ArrowInvalid:
        index = next(i for i, v in enumerate(values) if v is not None and v.microsecond % 1000)
        raise ValueDoesNotFit(
            dataset,
            name,
            values[index],
            symbols[index],
            "exchange times are stored to the millisecond and this one is finer",
        ) from None


_Converter: TypeAlias = Callable[[str, str, list[Any], Sequence[str | None]], pa.Array]


def _plain(type_: pa.DataType) -> _Converter:
    def convert(
        dataset: str, name: str, values: list[Any], symbols: Sequence[str | None]
    ) -> pa.Array:
        try:
            return pa.array(values, type_)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise ValueDoesNotFit(dataset, name, values[0], symbols[0], str(exc)) from None

    return convert


def _converter(field: pa.Field) -> _Converter:
    type_ = field.type
    if type_ == DECIMAL:
        return lambda d, n, v, s: _decimal_array(d, n, v, s, list_=False)
    if pa.types.is_list(type_) and type_.value_type == DECIMAL:
        return lambda d, n, v, s: _decimal_array(d, n, v, s, list_=True)
    if pa.types.is_timestamp(type_):
        return lambda d, n, v, s: _time_array(d, n, v, s, type_)
    return _plain(type_)


@dataclass(frozen=True, slots=True)
class _Plan:
    schema: pa.Schema
    # record fields: name, value getter, required, converter
    fields: tuple[tuple[str, Callable[[Any], Any], bool, _Converter], ...]
    rest: bool


def _plan(dataset: str) -> _Plan:
    schema = schema_for(dataset)
    rest = dataset in REST_DATASETS
    body = [f for f in schema if f.name not in _HEAD and f.name not in _REST_TAIL]
    fields = tuple((f.name, attrgetter(f.name), not f.nullable, _converter(f)) for f in body)
    return _Plan(schema, fields, rest)


_PLANS: Final = {name: _plan(name) for name in (*DATASET_OF.values(), *REST_DATASETS)}
_SYMBOL: Final = attrgetter("symbol")
_RECEIVED_NS: Final = attrgetter("received_ns")
_SOURCE: Final = attrgetter("source")


def to_batch(
    dataset: str, records: Sequence[AnyRecord], *, session_id: str, seqs: Sequence[int]
) -> pa.RecordBatch:
    """Return the records of one dataset as a batch in exactly ``schema_for(dataset)``.

    ``seqs[i]`` is the ``seq`` of ``records[i]``. For ``rest_*`` datasets the records are
    :class:`RestSnapshot` values.

    Raises:
        ValueDoesNotFit: a value cannot be stored exactly, or a required value is missing.
        TypeError: a record does not belong to ``dataset``.
        ValueError: ``seqs`` and ``records`` differ in length.
    """
    plan = _PLANS.get(dataset)
    if plan is None:
        raise KeyError(f"unknown dataset {dataset!r}: expected one of {', '.join(_PLANS)}")
    if len(seqs) != len(records):
        raise ValueError(f"{len(records)} records but {len(seqs)} seqs: give one seq per record")
    if plan.rest:
        snapshots: Sequence[RestSnapshot] = records  # type: ignore[assignment]
        _check_types(dataset, snapshots, RestSnapshot)
        inner: Sequence[Any] = [s.record for s in snapshots]
        _check_types(dataset, inner, _CLASS_OF[dataset.removeprefix("rest_")])
    else:
        inner = records
        _check_types(dataset, inner, _CLASS_OF[dataset])
    count = len(inner)
    symbols: Sequence[str | None] = (
        [None] * count if dataset in DATE_ONLY_DATASETS else list(map(_SYMBOL, inner))
    )
    columns: list[pa.Array] = [
        pa.repeat(pa.scalar(session_id, pa.string()), count),
        pa.array(seqs, pa.int64()),
        pa.array(list(map(_RECEIVED_NS, inner)), pa.int64()),
        pa.array(list(map(_SOURCE, inner)), pa.string()),
    ]
    for name, get, required, convert in plan.fields:
        values: list[Any] = list(symbols) if name == "symbol" else list(map(get, inner))
        if name == "kind":
            values = [EventKind(v).value for v in values]
        array = convert(dataset, name, values, symbols)
        if required and array.null_count:
            index = values.index(None)
            raise ValueDoesNotFit(dataset, name, None, symbols[index], "the column is required")
        columns.append(array)
    if plan.rest:
        columns.append(pa.array([s.request_start_ns for s in snapshots], pa.int64()))
        columns.append(pa.array([s.request_end_ns for s in snapshots], pa.int64()))
    for array, field in zip(columns[:4], plan.schema, strict=False):
        if array.null_count:
            raise ValueDoesNotFit(dataset, field.name, None, None, "the column is required")
    return pa.RecordBatch.from_arrays(columns, schema=plan.schema)


def to_table(
    dataset: str, records: Sequence[AnyRecord], *, session_id: str, seqs: Sequence[int]
) -> pa.Table:
    """Return :func:`to_batch` as a table (same errors)."""
    batch = to_batch(dataset, records, session_id=session_id, seqs=seqs)
    return pa.Table.from_batches([batch], schema=batch.schema)


def _check_types(dataset: str, records: Sequence[Any], cls: type) -> None:
    for record in records:
        if type(record) is not cls:
            raise TypeError(
                f"dataset {dataset!r} stores {cls.__name__} records, got {type(record).__name__}"
            )


def from_table(dataset: str, table: pa.Table) -> list[AnyRecord]:
    """Return the records stored in ``table`` (rows of ``dataset``), in row order.

    The ``session_id`` and ``seq`` columns are dropped; ``rest_*`` rows come back as
    :class:`RestSnapshot` values. Columns the record class does not know are ignored, so
    a table read back with hive partition columns is accepted.

    Raises:
        KeyError: ``dataset`` is unknown.
    """
    rest = dataset in REST_DATASETS
    cls = _CLASS_OF[dataset.removeprefix("rest_")] if rest else _CLASS_OF[dataset]
    wanted = [f.name for f in schema_for(dataset) if f.name not in ("session_id", "seq")]
    out: list[AnyRecord] = []
    for row in table.select(wanted).to_pylist():
        start = row.pop("request_start_ns", None)
        end = row.pop("request_end_ns", None)
        for key, value in row.items():
            if isinstance(value, list):
                row[key] = tuple(value)
        if cls is ConnectionEvent:
            row["kind"] = EventKind(row["kind"])
        record = cls(**row)
        out.append(
            RestSnapshot(record=record, request_start_ns=start, request_end_ns=end)
            if rest
            else record
        )
    return out
