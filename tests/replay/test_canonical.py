"""The canonical form is what its docstring says, and the decoder builds the same records."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from decimal import Decimal

import pytest
from replay_factories import Market

from backbone.models import Record
from recorder.rows import dataset_of, to_batch
from replay.canonical import DIGEST_PREFIX, Digest, canonical_line, json_line, plain
from replay.decode import decode, fast_constructor


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("127.0", "127"),
        ("127.00000000", "127"),
        ("1.27E+2", "127"),
        ("-0", "0"),
        ("0E-18", "0"),
        ("0.00012345", "0.00012345"),
        ("-1.5000", "-1.5"),
        ("1E+20", "100000000000000000000"),
        ("12345678901234567890.123456789012345678", "12345678901234567890.123456789012345678"),
    ],
)
def test_plain_decimals(value: str, text: str) -> None:
    assert plain(Decimal(value)) == text


def _records() -> list[Record]:
    return Market(seed=31).records(300)


def test_canonical_lines_are_sorted_compact_ascii_json() -> None:
    for record in _records():
        line = canonical_line(record)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        body = json.loads(line)
        assert (
            line
            == (
                json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n"
            ).encode()
        )
        assert set(body) == {"type"} | {f.name for f in fields(record)}  # type: ignore[arg-type]
        for f in fields(record):  # type: ignore[arg-type]
            value = getattr(record, f.name)
            if isinstance(value, Decimal):
                assert Decimal(body[f.name]) == value


def test_json_lines_keep_field_order_and_values() -> None:
    for record in _records():
        body = json.loads(json_line(record))
        assert list(body) == ["type", *[f.name for f in fields(record)]]  # type: ignore[arg-type]
        assert list(body)[1:] == [f.name for f in fields(record)]  # type: ignore[arg-type]


def test_digest_prefix_and_count() -> None:
    import hashlib

    records = _records()[:3]
    digest = Digest()
    for record in records:
        digest.update(record)
    want = hashlib.sha256(DIGEST_PREFIX + b"".join(canonical_line(r) for r in records))
    assert digest.hexdigest() == want.hexdigest() and digest.count == 3


def test_not_a_record() -> None:
    with pytest.raises(TypeError):
        canonical_line(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        json_line(object())  # type: ignore[arg-type]

    @dataclass(frozen=True)
    class Odd:
        value: object

    from replay import canonical

    with pytest.raises(TypeError, match="no canonical form"):
        canonical._value(Odd(1))


def test_decoding_equals_the_dataclass_constructor() -> None:
    by_dataset: dict[str, list[Record]] = {}
    for record in _records():
        by_dataset.setdefault(dataset_of(record), []).append(record)
    assert set(by_dataset) == {"ticker", "trade", "orderbook", "candle", "events"}
    for dataset, records in by_dataset.items():
        batch = to_batch(dataset, records, session_id="s", seqs=list(range(len(records))))
        got = decode(dataset, batch)
        assert got == records
        for mine, theirs in zip(got, records, strict=True):
            rebuilt = type(theirs)(**{f.name: getattr(mine, f.name) for f in fields(theirs)})  # type: ignore[arg-type]
            assert rebuilt == mine and type(mine) is type(theirs)


def test_fast_constructor_falls_back_for_classes_it_cannot_fill() -> None:
    @dataclass(frozen=True)
    class Checked:
        a: int
        b: str

        def __post_init__(self) -> None:
            if self.a < 0:
                raise ValueError("negative")

    make = fast_constructor(Checked)
    assert make(1, "x") == Checked(1, "x")
    with pytest.raises(ValueError, match="negative"):
        make(-1, "x")
