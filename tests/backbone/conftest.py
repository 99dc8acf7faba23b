"""Shared helpers for the backbone tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "upbit"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Num(str):
    """A JSON number kept as its wire text."""

    __slots__ = ()


def wire_text(name: str) -> Any:
    """The fixture with every number kept as its wire text (:class:`Num`), to check
    exactness and to write variants back with the numbers untouched."""
    return loads_wire(fixture_bytes(name))


def loads_wire(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=Num, parse_int=Num)


def dumps_wire(obj: Any) -> bytes:
    """Serialize a :func:`wire_text` structure back, numbers as their original text."""
    if isinstance(obj, dict):
        items = (json.dumps(k).encode() + b":" + dumps_wire(v) for k, v in obj.items())
        return b"{" + b",".join(items) + b"}"
    if isinstance(obj, list):
        return b"[" + b",".join(dumps_wire(v) for v in obj) + b"]"
    if isinstance(obj, Num):
        return obj.encode()
    return json.dumps(obj, ensure_ascii=False).encode()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
