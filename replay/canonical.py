"""The canonical form of records, for the replay digest, and their JSON lines for people.

**Canonical form** (what :func:`canonical_line` returns, what the digest hashes). One line per
record: a JSON object with the keys sorted, no spaces (``","`` and ``":"``), ASCII only
(other characters as ``\\uXXXX``), ending in ``"\\n"``. Its keys are ``"type"`` (``"ticker"``,
``"trade"``, ``"orderbook"``, ``"candle"`` or ``"event"``) and every field of the record.
Values:

- ``Decimal``: a JSON string of the value in plain notation with no exponent, no trailing
  fractional zeros and no trailing point, ``"-"`` only for negative values: ``127.0``,
  ``127.00000000`` and ``1.27E+2`` are all ``"127"``; ``-0`` is ``"0"``;
- ``datetime``: the UTC instant as ``"YYYY-MM-DDTHH:MM:SS.ffffffZ"``; ``date``:
  ``"YYYY-MM-DD"``;
- ``int``: JSON number; ``str`` (and event kinds): JSON string; ``None``: ``null``;
  tuples: JSON arrays of the above.

**Digest** (:class:`Digest`): SHA-256 over the bytes ``b"tape-replay-digest-v1\\n"`` followed
by the canonical lines of the records in replay order; written as 64 lowercase hex digits.
The prefix names the version of this form: a change to it changes the prefix.

:func:`json_line` is the output of ``tape replay``: the same values (Decimals as strings,
times ISO-8601) in the record's field order, for reading and for tools.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from backbone.models import (
    CandleData,
    ConnectionEvent,
    OrderbookData,
    Record,
    TickerData,
    TradeData,
    record_fields,
)

__all__ = ["DIGEST_PREFIX", "TYPE_NAMES", "Digest", "canonical_line", "json_line", "plain"]

DIGEST_PREFIX: Final = b"tape-replay-digest-v1\n"

TYPE_NAMES: Final[dict[type, str]] = {
    TickerData: "ticker",
    TradeData: "trade",
    OrderbookData: "orderbook",
    CandleData: "candle",
    ConnectionEvent: "event",
}
"""The ``type`` of each record class in canonical lines and JSON lines."""

_SORTED: Final = {cls: tuple(sorted((*record_fields(cls), "type"))) for cls in TYPE_NAMES}
_DECLARED: Final = {cls: record_fields(cls) for cls in TYPE_NAMES}


def plain(value: Decimal) -> str:
    """Return ``value`` in plain notation, without exponent or trailing fractional zeros."""
    if not value:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if isinstance(value, Decimal):
        return '"' + plain(value) + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return '"' + value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") + '"'
    if isinstance(value, date):
        return '"' + value.isoformat() + '"'
    if isinstance(value, tuple | list):
        return "[" + ",".join(_value(item) for item in value) + "]"
    raise TypeError(f"no canonical form for a {type(value).__name__}: {value!r}")


def canonical_line(record: Record) -> bytes:
    """Return the canonical line of ``record`` (see the module docstring), newline included.

    Raises:
        TypeError: ``record`` is not a replayed record.
    """
    cls = type(record)
    name = TYPE_NAMES.get(cls)
    if name is None:
        raise TypeError(f"not a replayed record: {type(record).__name__}")
    parts = []
    for key in _SORTED[cls]:
        value = name if key == "type" else getattr(record, key)
        parts.append(f'"{key}":{_value(value)}')
    return ("{" + ",".join(parts) + "}\n").encode("ascii")


def json_line(record: Record) -> str:
    """Return ``record`` as one line of JSON (no newline): ``type`` first, then its fields
    in declaration order; Decimals as strings, times ISO-8601 UTC.

    Raises:
        TypeError: ``record`` is not a replayed record.
    """
    cls = type(record)
    name = TYPE_NAMES.get(cls)
    if name is None:
        raise TypeError(f"not a replayed record: {type(record).__name__}")
    parts = [f'"type":"{name}"']
    for key in _DECLARED[cls]:
        parts.append(f'"{key}":{_value(getattr(record, key))}')
    return "{" + ",".join(parts) + "}"


class Digest:
    """A running replay digest: :meth:`update` with records in replay order, then
    :meth:`hexdigest`."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(DIGEST_PREFIX)
        self.count = 0

    def update(self, record: Record) -> None:
        """Add the next record."""
        self._hash.update(canonical_line(record))
        self.count += 1

    def hexdigest(self) -> str:
        """Return the digest so far, 64 lowercase hex digits."""
        return self._hash.hexdigest()
