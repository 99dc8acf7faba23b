"""What clients send over the WebSocket: parsing of Upbit's request array, and rate windows."""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from simulator.markets import SCALE
from simulator.model import CANDLE_UNITS_MIN

FORMATS = ("DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST")
CANDLE_TYPES = ("candle.1s", *(f"candle.{m}m" for m in CANDLE_UNITS_MIN))
TYPES = ("ticker", "trade", "orderbook", *CANDLE_TYPES)
DEPTHS = (1, 5, 15, 30)


class RequestError(Exception):
    """A request the exchange answers with an error frame ``{"error": {"name", "message"}}``."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


@dataclass(frozen=True, slots=True)
class TypeSub:
    """One data type object; ``kind`` is ticker, trade, orderbook or ``candle.<unit>``."""

    kind: str
    codes: tuple[str, ...]
    level: int | None
    only_snapshot: bool
    only_realtime: bool


@dataclass(frozen=True, slots=True)
class Request:
    ticket: str
    subs: tuple[TypeSub, ...]
    format: str | None
    method: str | None


def _flag(obj: dict[str, Any], snake: str, camel: str) -> bool:
    value = obj.get(snake, obj.get(camel, False))
    if not isinstance(value, bool):
        raise RequestError("INVALID_PARAM", f"{snake} must be true or false")
    return value


def _level(value: Any) -> int:
    if isinstance(value, bool):
        raise RequestError("INVALID_PARAM", "level must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise RequestError("INVALID_PARAM", "level must be a number") from None
    if not amount.is_finite() or amount < 0:
        raise RequestError("INVALID_PARAM", "level must be a non-negative number")
    return int(amount * SCALE)


def parse_request(raw: str) -> Request:
    """Parse one request array.

    Raises:
        RequestError: WRONG_FORMAT, NO_TICKET, NO_TYPE, NO_CODES or INVALID_PARAM.
    """
    try:
        items = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise RequestError("WRONG_FORMAT", "the request is not valid JSON") from None
    if not isinstance(items, list) or not items or not all(isinstance(o, dict) for o in items):
        raise RequestError("WRONG_FORMAT", "the request must be a JSON array of objects")
    ticket: str | None = None
    fmt: str | None = None
    method: str | None = None
    subs: list[TypeSub] = []
    for obj in items:
        if "ticket" in obj:
            if not isinstance(obj["ticket"], str) or not obj["ticket"]:
                raise RequestError("INVALID_PARAM", "ticket must be a non-empty string")
            ticket = obj["ticket"]
        if "format" in obj:
            if obj["format"] not in FORMATS:
                raise RequestError("INVALID_PARAM", f"format must be one of {', '.join(FORMATS)}")
            fmt = obj["format"]
        if "method" in obj:
            if obj["method"] != "LIST_SUBSCRIPTIONS":
                raise RequestError("INVALID_PARAM", "the only method is LIST_SUBSCRIPTIONS")
            method = obj["method"]
        if "type" in obj:
            subs.append(_type_sub(obj))
    if ticket is None:
        raise RequestError("NO_TICKET", "the request has no ticket object")
    if not subs and method is None:
        raise RequestError("NO_TYPE", "the request has no type object")
    return Request(ticket, tuple(subs), fmt, method)


def _type_sub(obj: dict[str, Any]) -> TypeSub:
    kind = obj["type"]
    if kind not in TYPES:
        raise RequestError("INVALID_PARAM", f"unknown type {kind!r}")
    codes = obj.get("codes")
    if codes is None or codes == []:
        raise RequestError("NO_CODES", f"type {kind} has no codes")
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
        raise RequestError("INVALID_PARAM", "codes must be an array of strings")
    only_snapshot = _flag(obj, "is_only_snapshot", "isOnlySnapshot")
    only_realtime = _flag(obj, "is_only_realtime", "isOnlyRealtime")
    level = _level(obj["level"]) if "level" in obj and kind == "orderbook" else None
    return TypeSub(kind, tuple(codes), level, only_snapshot, only_realtime)


def split_depth(code: str) -> tuple[str, int]:
    """Split ``KRW-BTC.15`` into (``KRW-BTC``, 15); depths other than 1, 5, 15, 30 mean 30."""
    base, dot, suffix = code.partition(".")
    if not dot:
        return code, 30
    depth = int(suffix) if suffix.isdigit() else 30
    return base, depth if depth in DEPTHS else 30


class RateWindow:
    """Sliding windows on real monotonic time: at most ``per_s`` a second, ``per_min`` a minute."""

    def __init__(self, per_s: int | None, per_min: int | None = None) -> None:
        self._per_s = per_s
        self._per_min = per_min
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        """Count one event now and return whether it is within the limits (refusals don't count)."""
        if self._per_s is None and self._per_min is None:
            return True
        now = time.monotonic()
        horizon = 60.0 if self._per_min is not None else 1.0
        while self._times and self._times[0] <= now - horizon:
            self._times.popleft()
        last_second = sum(1 for t in self._times if t > now - 1.0) if self._per_s is not None else 0
        if self._per_s is not None and last_second >= self._per_s:
            return False
        if self._per_min is not None and len(self._times) >= self._per_min:
            return False
        self._times.append(now)
        return True

    def remaining(self) -> int:
        """Return how many more events the per-second window would accept now."""
        if self._per_s is None:
            return 999
        now = time.monotonic()
        return max(0, self._per_s - sum(1 for t in self._times if t > now - 1.0))
