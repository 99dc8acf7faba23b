"""Arrow rows back into the records of :mod:`backbone.models`, fast and exact.

:func:`decode` turns a batch of one dataset into its records, column by column:

- decimals (``decimal128(38, 18)``): each distinct value of the batch is converted once
  (Arrow formats it, trailing zeros are cut, :class:`~decimal.Decimal` parses the text), then
  rows take their value by index. Prices, previous closes and best quotes repeat a lot, so
  this costs far less than one conversion per row; the value is exact either way. A replayed
  Decimal equals the live one (``==``); its exponent is the shortest that holds the value
  (``127.0`` comes back as ``127``), since the file keeps 18 fractional digits, not the text;
- exchange times: distinct values converted once into aware UTC datetimes;
- strings: distinct values shared (one object per distinct text in a batch);
- records are built by a constructor generated for each model class that fills the slots
  directly (the frozen dataclass ``__init__`` goes through ``object.__setattr__`` per field);
  it is used only for classes without ``__post_init__``, and a test checks it builds records
  equal to the dataclass constructor's for every class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbone.models import (
    CandleData,
    ConnectionEvent,
    EventKind,
    OrderbookData,
    Record,
    TickerData,
    TradeData,
    record_fields,
)

__all__ = ["CLASS_OF", "decode", "fast_constructor"]

CLASS_OF: Final[dict[str, type[Record]]] = {
    "ticker": TickerData,
    "trade": TradeData,
    "orderbook": OrderbookData,
    "candle": CandleData,
    "events": ConnectionEvent,
}
"""The record class of each replayed dataset."""

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_TIME_STEP: Final = {
    "s": timedelta(seconds=1),
    "ms": timedelta(milliseconds=1),
    "us": timedelta(microseconds=1),
}


def fast_constructor(cls: type[Any]) -> Callable[..., Any]:
    """Return a function taking a record's fields positionally (declaration order) and
    returning the record; faster than the dataclass constructor, same result.

    Falls back to the class itself (called with keywords) when it is not a slotted
    dataclass or has a ``__post_init__``.
    """
    names = [f.name for f in fields(cls)] if is_dataclass(cls) else []
    slotted = all(hasattr(getattr(cls, name, None), "__set__") for name in names)
    if not names or not slotted or hasattr(cls, "__post_init__"):

        def by_keywords(*values: Any) -> Any:
            return cls(**dict(zip(names, values, strict=True)))

        return by_keywords
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    lines = [f"def make({', '.join(names)}):", "    record = _new(_cls)"]
    for name in names:
        namespace[f"_set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    _set_{name}(record, {name})")
    lines.append("    return record")
    exec("\n".join(lines), namespace)  # generated from the class's own field names only
    make: Callable[..., Any] = namespace["make"]
    return make


_MAKE: Final = {name: fast_constructor(cls) for name, cls in CLASS_OF.items()}
_FIELDS: Final = {name: record_fields(cls) for name, cls in CLASS_OF.items()}


def _number(text: str) -> Decimal:
    # Arrow's text of a decimal128(38, 18): cut the scale's trailing zeros.
    if "." in text:
        text = text.rstrip("0").rstrip(".")
        if text == "-0":
            text = "0"
    value = Decimal(text)
    return value if value else Decimal(0)


def _by_dictionary(array: pa.Array, convert: Callable[[pa.Array], list[Any]]) -> list[Any]:
    # Convert each distinct value once (``convert`` gets the distinct values), then index.
    if array.null_count == len(array):
        return [None] * len(array)
    encoded = pc.dictionary_encode(array)
    values = convert(encoded.dictionary)
    indices = encoded.indices
    if indices.null_count:
        values.append(None)
        indices = pc.fill_null(indices, len(values) - 1)
    return list(map(values.__getitem__, indices.to_numpy().tolist()))


def _decimals(array: pa.Array) -> list[Any]:
    return _by_dictionary(
        array, lambda distinct: [_number(t) for t in pc.cast(distinct, pa.string()).to_pylist()]
    )


def _times(array: pa.Array) -> list[Any]:
    step = _TIME_STEP[array.type.unit]
    return _by_dictionary(
        array.view(pa.int64()), lambda distinct: [_EPOCH + step * t for t in distinct.to_pylist()]
    )


def _strings(array: pa.Array) -> list[Any]:
    return _by_dictionary(array, lambda distinct: distinct.to_pylist())


def _kinds(array: pa.Array) -> list[Any]:
    return _by_dictionary(array, lambda distinct: [EventKind(t) for t in distinct.to_pylist()])


def _ints(array: pa.Array) -> list[Any]:
    if array.null_count:
        return list(array.to_pylist())
    return list(array.to_numpy().tolist())


def _tuples(array: pa.Array, inner: Callable[[pa.Array], list[Any]]) -> list[Any]:
    flat = inner(array.flatten())
    lengths = pc.list_value_length(array).fill_null(0).to_numpy()
    ends = np.cumsum(lengths).tolist()
    starts = [0, *ends[:-1]]
    return [tuple(flat[a:b]) for a, b in zip(starts, ends, strict=True)]


def _column(array: pa.Array) -> list[Any]:
    type_ = array.type
    if pa.types.is_decimal(type_):
        return _decimals(array)
    if pa.types.is_timestamp(type_):
        return _times(array)
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return _strings(array)
    if pa.types.is_integer(type_):
        return _ints(array)
    if pa.types.is_list(type_) or pa.types.is_large_list(type_):
        value = type_.value_type
        if pa.types.is_decimal(value):
            return _tuples(array, _decimals)
        return _tuples(array, _strings)
    return list(array.to_pylist())  # dates, booleans


def decode(dataset: str, batch: pa.RecordBatch | pa.Table) -> list[Record]:
    """Return the records of ``batch`` (rows of ``dataset``, any extra columns ignored).

    Raises:
        KeyError: ``dataset`` is not one replay yields.
    """
    make = _MAKE[dataset]
    columns: list[Sequence[Any]] = []
    for name in _FIELDS[dataset]:
        column = batch.column(name)
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        columns.append(_kinds(column) if name == "kind" else _column(column))
    return list(map(make, *columns))
