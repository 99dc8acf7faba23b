"""Candle: OHLCV of one interval.

WebSocket ``candle.{unit}``, DEFAULT format (Upbit's documented example; keys annotated)::

    {
      "type": "candle.1m",                         # message kind, unit -> timeframe "1m"
      "code": "KRW-BTC",                           # market            -> symbol
      "candle_date_time_utc": "2026-08-26T08:08:00",  # interval start, UTC, no zone -> open_time
      "candle_date_time_kst": "2026-08-26T17:08:00",  # the same in KST (unused)
      "opening_price": 109715000.0,                #                   -> open_price
      "high_price": 109756000.0,
      "low_price": 109714000.0,
      "trade_price": 109756000.0,                  # last price         -> close_price
      "candle_acc_trade_volume": 0.71326612,       #                   -> volume
      "candle_acc_trade_price": 78269528.64757,    #                   -> quote_volume
      "timestamp": 1787731717049,                  # ms of the last trade -> timestamp
      "stream_type": "SNAPSHOT"
    }

The same message in SIMPLE format (abbreviations from Upbit's field table)::

    {"ty": "candle.1m", "cd": "KRW-BTC", "cdttmu": "2026-08-26T08:08:00",
     "cdttmk": "2026-08-26T17:08:00", "op": 109715000.0, "hp": 109756000.0,
     "lp": 109714000.0, "tp": 109756000.0, "catv": 0.71326612, "catp": 78269528.64757,
     "tms": 1787731717049, "st": "SNAPSHOT"}

REST ``GET /v1/candles/{seconds | minutes/N | days | weeks | months | years}`` answers a list,
newest first, with ``market`` instead of ``type``/``code`` and the same price keys; minute
candles add ``unit``, day candles add ``prev_closing_price``, ``change_price`` (signed) and
``change_rate`` (signed ratio), week/month candles add ``first_day_of_period``::

    [{"market": "KRW-BTC", "candle_date_time_utc": "2025-06-30T00:00:00",
      "candle_date_time_kst": "2025-06-30T09:00:00", "opening_price": 147996000,
      "high_price": 148480000, "low_price": 145740000, "trade_price": 145759000,
      "timestamp": 1751327999833, "candle_acc_trade_price": 138812096716.42776,
      "candle_acc_trade_volume": 944.35761221, "prev_closing_price": 147996000,
      "change_price": -2237000, "change_rate": -0.0151152734}]
"""

from __future__ import annotations

import types
from decimal import Decimal
from typing import Final

import msgspec

from backbone.errors import InvalidArgumentError
from backbone.models import CANDLE_TIMEFRAMES, CandleData
from backbone.upbit.protocol._wire import (
    STREAM_TYPE,
    decode_body,
    fast_constructor,
    lookup_opt,
    ms_to_datetime,
    parse_utc_naive,
    simple_variant,
)

__all__ = [
    "REST_PATHS",
    "SIMPLE_KEYS",
    "WS_TIMEFRAMES",
    "RestCandle",
    "WsCandle",
    "candle_from_rest",
    "candle_from_ws",
    "check_timeframe",
    "parse_rest_candles",
    "rest_path",
    "timeframe_of_path",
    "ws_candle_types",
    "ws_type",
]

WS_TIMEFRAMES: Final = ("1s", "1m", "3m", "5m", "10m", "15m", "30m", "60m", "240m")
"""Timeframes Upbit streams over the WebSocket (``candle.{tf}``); the rest are REST-only."""

REST_PATHS: Final = {
    "1s": "/candles/seconds",
    **{f"{n}m": f"/candles/minutes/{n}" for n in (1, 3, 5, 10, 15, 30, 60, 240)},
    "1d": "/candles/days",
    "1w": "/candles/weeks",
    "1mo": "/candles/months",
    "1y": "/candles/years",
}
"""Timeframe -> REST path (relative to ``/v1``)."""

_TIMEFRAME_OF_PATH: Final = {path: tf for tf, path in REST_PATHS.items()}


def check_timeframe(timeframe: str) -> str:
    """Return ``timeframe`` if tape knows it.

    Raises:
        InvalidArgumentError: not one of ``CANDLE_TIMEFRAMES``.
    """
    if timeframe not in CANDLE_TIMEFRAMES:
        raise InvalidArgumentError(
            f"unknown candle timeframe {timeframe!r}; use one of {', '.join(CANDLE_TIMEFRAMES)}"
        )
    return timeframe


def rest_path(timeframe: str) -> str:
    """The REST path (relative to ``/v1``) serving ``timeframe`` candles."""
    return REST_PATHS[check_timeframe(timeframe)]


def ws_type(timeframe: str) -> str:
    """The WebSocket type streaming ``timeframe`` candles, e.g. ``candle.1m``.

    Raises:
        InvalidArgumentError: Upbit streams no such candle (days and longer are REST-only).
    """
    if check_timeframe(timeframe) not in WS_TIMEFRAMES:
        raise InvalidArgumentError(f"Upbit streams no {timeframe} candles over the WebSocket")
    return f"candle.{timeframe}"


def timeframe_of_path(path: str) -> str | None:
    """The timeframe a REST candle path serves (``/v1`` prefix optional), or ``None``."""
    path = path.split("?", 1)[0].rstrip("/")
    if path.startswith("/v1/"):
        path = path[3:]
    return _TIMEFRAME_OF_PATH.get(path)


_make = fast_constructor(CandleData)


class _CandleFields(msgspec.Struct, kw_only=True, gc=False):
    # The fields both channels send, under the same names.
    candle_date_time_utc: str
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    trade_price: Decimal
    candle_acc_trade_volume: Decimal
    candle_acc_trade_price: Decimal
    timestamp: int


class WsCandle(_CandleFields, tag_field="type", kw_only=True):
    """A WebSocket candle message, DEFAULT keys (one tagged subclass per unit)."""

    code: str
    stream_type: str | None = None


SIMPLE_KEYS: Final = {
    "code": "cd",
    "candle_date_time_utc": "cdttmu",
    "opening_price": "op",
    "high_price": "hp",
    "low_price": "lp",
    "trade_price": "tp",
    "candle_acc_trade_volume": "catv",
    "candle_acc_trade_price": "catp",
    "timestamp": "tms",
    "stream_type": "st",
}
"""DEFAULT key -> SIMPLE abbreviation, for every field tape decodes."""

_WsCandleSimple = simple_variant(WsCandle, SIMPLE_KEYS, tag_field="ty")

# One tagged class per unit and format: msgspec picks the class from the "type"/"ty" value in
# the same pass that decodes the fields.
_TIMEFRAME_OF_CLASS: dict[type[WsCandle], str] = {}
_DEFAULT_CLASSES: list[type[WsCandle]] = []
_SIMPLE_CLASSES: list[type[WsCandle]] = []
for _tf in WS_TIMEFRAMES:
    for _base, _into, _suffix in (
        (WsCandle, _DEFAULT_CLASSES, ""),
        (_WsCandleSimple, _SIMPLE_CLASSES, "Simple"),
    ):
        _cls: type[WsCandle] = types.new_class(
            f"WsCandle{_tf}{_suffix}", (_base,), {"tag": f"candle.{_tf}"}
        )
        _into.append(_cls)
        _TIMEFRAME_OF_CLASS[_cls] = _tf


def ws_candle_types(*, simple: bool) -> tuple[type[WsCandle], ...]:
    """The tagged candle classes of one format, for building a union decoder."""
    return tuple(_SIMPLE_CLASSES if simple else _DEFAULT_CLASSES)


class RestCandle(_CandleFields, kw_only=True):
    """One element of a REST candle list."""

    market: str
    prev_closing_price: Decimal | None = None
    change_price: Decimal | None = None
    change_rate: Decimal | None = None


_REST_DECODER: Final = msgspec.json.Decoder(list[RestCandle])


def _candle(
    item: _CandleFields,
    symbol: str,
    timeframe: str,
    *,
    received_ns: int,
    raw: object,
    ws: WsCandle | None = None,
    rest: RestCandle | None = None,
) -> CandleData:
    return _make(
        symbol=symbol,
        timeframe=timeframe,
        open_time=parse_utc_naive(item.candle_date_time_utc, raw),
        open_price=item.opening_price,
        high_price=item.high_price,
        low_price=item.low_price,
        close_price=item.trade_price,
        volume=item.candle_acc_trade_volume,
        quote_volume=item.candle_acc_trade_price,
        timestamp=ms_to_datetime(item.timestamp),
        source="rest" if ws is None else "websocket",
        received_ns=received_ns,
        stream_type=None
        if ws is None
        else lookup_opt(STREAM_TYPE, ws.stream_type, "stream_type", raw),
        prev_closing_price=None if rest is None else rest.prev_closing_price,
        change_price=None if rest is None else rest.change_price,
        change_rate=None if rest is None else rest.change_rate,
    )


def candle_from_ws(msg: WsCandle, received_ns: int, raw: object = None) -> CandleData:
    """Convert a decoded WebSocket candle (either format, any unit) into a record.

    Raises:
        ProtocolError: a bad time or an enum value Upbit never documented.
    """
    timeframe = _TIMEFRAME_OF_CLASS[type(msg)]
    return _candle(msg, msg.code, timeframe, received_ns=received_ns, raw=raw, ws=msg)


def candle_from_rest(
    item: RestCandle, timeframe: str, *, received_ns: int, raw: object = None
) -> CandleData:
    """Convert one decoded REST candle of ``timeframe`` into a record."""
    return _candle(item, item.market, timeframe, received_ns=received_ns, raw=raw, rest=item)


def parse_rest_candles(body: object, timeframe: str, *, received_ns: int) -> list[CandleData]:
    """Decode a REST candle body of ``timeframe`` into records, in Upbit's order (newest
    first).

    Raises:
        ProtocolError: the body is not a list of candles; ``raw`` is the body.
        InvalidArgumentError: ``timeframe`` is unknown.
    """
    check_timeframe(timeframe)
    items: list[RestCandle] = decode_body(_REST_DECODER, body, "REST candle body")
    return [candle_from_rest(item, timeframe, received_ns=received_ns, raw=body) for item in items]
