"""Ticker: the state of one market (last price, daily and rolling 24 h figures).

WebSocket, DEFAULT format (Upbit's documented example; keys annotated)::

    {
      "type": "ticker",                      # message kind
      "code": "KRW-BTC",                     # market            -> symbol
      "opening_price": 31883000,             # since 00:00 UTC   -> opening_price
      "high_price": 32310000,                # since 00:00 UTC   -> high_24h
      "low_price": 31855000,                 # since 00:00 UTC   -> low_24h
      "trade_price": 32287000,               # last price        -> current_price
      "prev_closing_price": 31883000.00000000,
      "acc_trade_price": 78039261076.51241000,
      "change": "RISE",                      # RISE / EVEN / FALL
      "change_price": 404000.00000000,       # unsigned (unused: the signed one is kept)
      "signed_change_price": 404000.00000000,   #                -> change_amount
      "change_rate": 0.0126713295,           # unsigned ratio (unused)
      "signed_change_rate": 0.0126713295,    # signed ratio      -> change_rate x 100 (percent)
      "ask_bid": "ASK",                      # side of the last trade (WebSocket only)
      "trade_volume": 0.03103806,
      "acc_trade_volume": 2429.58834336,
      "trade_date": "20230221",              # yyyyMMdd UTC (unused: trade_timestamp is exact)
      "trade_time": "074102",                # HHmmss UTC (unused)
      "trade_timestamp": 1676965262139,      # ms
      "acc_ask_volume": 1146.25573608,       # WebSocket only
      "acc_bid_volume": 1283.33260728,       # WebSocket only
      "highest_52_week_price": 57678000.00000000,
      "highest_52_week_date": "2022-03-28",
      "lowest_52_week_price": 20700000.00000000,
      "lowest_52_week_date": "2022-12-30",
      "market_state": "ACTIVE",              # PREVIEW / ACTIVE / DELISTED (WebSocket only)
      "is_trading_suspended": false,         # deprecated (unused)
      "delisting_date": null,                # WebSocket only
      "market_warning": "NONE",              # deprecated (unused)
      "timestamp": 1676965262177,            # ms, message time -> timestamp
      "acc_trade_price_24h": 228827082483.70729000,
      "acc_trade_volume_24h": 7158.80283560, #                   -> volume_24h
      "stream_type": "REALTIME"              # SNAPSHOT / REALTIME (WebSocket only)
    }

The same message in SIMPLE format (abbreviations from Upbit's field table)::

    {"ty": "ticker", "cd": "KRW-BTC", "op": 31883000, "hp": 32310000, "lp": 31855000,
     "tp": 32287000, "pcp": 31883000.00000000, "atp": 78039261076.51241000, "c": "RISE",
     "cp": 404000.00000000, "scp": 404000.00000000, "cr": 0.0126713295,
     "scr": 0.0126713295, "ab": "ASK", "tv": 0.03103806, "atv": 2429.58834336,
     "tdt": "20230221", "ttm": "074102", "ttms": 1676965262139, "aav": 1146.25573608,
     "abv": 1283.33260728, "h52wp": 57678000.00000000, "h52wdt": "2022-03-28",
     "l52wp": 20700000.00000000, "l52wdt": "2022-12-30", "ms": "ACTIVE", "its": false,
     "dd": null, "mw": "NONE", "tms": 1676965262177, "atp24h": 228827082483.70729000,
     "atv24h": 7158.80283560, "st": "REALTIME"}

REST ``GET /v1/ticker?markets=...`` (and ``/v1/ticker/all``) answers a list of objects with
the DEFAULT keys above, ``market`` instead of ``type``/``code``, plus ``trade_date_kst`` /
``trade_time_kst``, and without ``ask_bid``, ``acc_ask_volume``, ``acc_bid_volume``,
``market_state``, ``delisting_date`` and ``stream_type`` (``None`` in its records).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Final

import msgspec

from backbone.models import TickerData
from backbone.upbit.protocol._wire import (
    CHANGE,
    MARKET_STATE,
    SIDE,
    STREAM_TYPE,
    decode_body,
    fast_constructor,
    lookup,
    lookup_opt,
    ms_to_datetime,
    simple_variant,
)

__all__ = [
    "SIMPLE_KEYS",
    "RestTicker",
    "WsTicker",
    "WsTickerSimple",
    "parse_rest_tickers",
    "ticker_from_rest",
    "ticker_from_ws",
]


_make = fast_constructor(TickerData)


class _TickerFields(msgspec.Struct, kw_only=True, gc=False):
    # The fields both channels send, under the same names.
    opening_price: Decimal
    high_price: Decimal
    low_price: Decimal
    trade_price: Decimal
    prev_closing_price: Decimal
    change: str
    signed_change_price: Decimal
    signed_change_rate: Decimal
    trade_volume: Decimal
    acc_trade_volume: Decimal
    acc_trade_volume_24h: Decimal
    acc_trade_price: Decimal
    acc_trade_price_24h: Decimal
    trade_timestamp: int
    highest_52_week_price: Decimal
    highest_52_week_date: date
    lowest_52_week_price: Decimal
    lowest_52_week_date: date
    timestamp: int


class WsTicker(_TickerFields, tag_field="type", tag="ticker", kw_only=True):
    """A WebSocket ticker message, DEFAULT keys. Fields tape does not keep are not decoded."""

    code: str
    ask_bid: str | None = None
    acc_ask_volume: Decimal | None = None
    acc_bid_volume: Decimal | None = None
    market_state: str | None = None
    delisting_date: date | None = None
    stream_type: str | None = None


SIMPLE_KEYS: Final = {
    "code": "cd",
    "opening_price": "op",
    "high_price": "hp",
    "low_price": "lp",
    "trade_price": "tp",
    "prev_closing_price": "pcp",
    "change": "c",
    "signed_change_price": "scp",
    "signed_change_rate": "scr",
    "trade_volume": "tv",
    "acc_trade_volume": "atv",
    "acc_trade_volume_24h": "atv24h",
    "acc_trade_price": "atp",
    "acc_trade_price_24h": "atp24h",
    "trade_timestamp": "ttms",
    "highest_52_week_price": "h52wp",
    "highest_52_week_date": "h52wdt",
    "lowest_52_week_price": "l52wp",
    "lowest_52_week_date": "l52wdt",
    "timestamp": "tms",
    "ask_bid": "ab",
    "acc_ask_volume": "aav",
    "acc_bid_volume": "abv",
    "market_state": "ms",
    "delisting_date": "dd",
    "stream_type": "st",
}
"""DEFAULT key -> SIMPLE abbreviation, for every field tape decodes."""

WsTickerSimple = simple_variant(WsTicker, SIMPLE_KEYS, tag="ticker")


class RestTicker(_TickerFields, kw_only=True):
    """One element of ``GET /v1/ticker`` or ``/v1/ticker/all``."""

    market: str


_REST_DECODER: Final = msgspec.json.Decoder(list[RestTicker])


def _ticker(
    item: _TickerFields,
    symbol: str,
    received_ns: int,
    raw: object,
    ws: WsTicker | None = None,
) -> TickerData:
    # Positional, in TickerData's field order (see fast_constructor); dates are decoded by
    # msgspec (ISO yyyy-MM-dd, anything else is a validation error).
    try:
        change = CHANGE[item.change]
    except KeyError:
        change = lookup(CHANGE, item.change, "change", raw)
    if ws is None:
        source = "rest"
        ask_bid = acc_ask_volume = acc_bid_volume = market_state = delisting = stream = None
    else:
        source = "websocket"
        ask_bid = lookup_opt(SIDE, ws.ask_bid, "ask_bid", raw)
        acc_ask_volume = ws.acc_ask_volume
        acc_bid_volume = ws.acc_bid_volume
        market_state = lookup_opt(MARKET_STATE, ws.market_state, "market_state", raw)
        delisting = ws.delisting_date
        stream = lookup_opt(STREAM_TYPE, ws.stream_type, "stream_type", raw)
    return _make(
        symbol,
        item.trade_price,  # current_price
        item.signed_change_rate.scaleb(2),  # change_rate, in percent
        item.signed_change_price,  # change_amount
        item.acc_trade_volume_24h,  # volume_24h
        item.high_price,  # high_24h
        item.low_price,  # low_24h
        item.prev_closing_price,
        ms_to_datetime(item.timestamp),  # timestamp
        source,
        received_ns,
        item.opening_price,
        change,
        item.trade_volume,
        ms_to_datetime(item.trade_timestamp),  # trade_timestamp
        item.acc_trade_volume,
        item.acc_trade_price,
        item.acc_trade_price_24h,
        item.highest_52_week_price,
        item.highest_52_week_date,
        item.lowest_52_week_price,
        item.lowest_52_week_date,
        ask_bid,
        acc_ask_volume,
        acc_bid_volume,
        market_state,
        delisting,
        stream,
    )


def ticker_from_ws(msg: WsTicker, received_ns: int, raw: object = None) -> TickerData:
    """Convert a decoded WebSocket ticker (either format) into a record.

    Raises:
        ProtocolError: an enum value or date Upbit never documented.
    """
    return _ticker(msg, msg.code, received_ns, raw, msg)


def ticker_from_rest(item: RestTicker, *, received_ns: int, raw: object = None) -> TickerData:
    """Convert one decoded REST ticker into a record (WebSocket-only fields are ``None``)."""
    return _ticker(item, item.market, received_ns, raw)


def parse_rest_tickers(body: object, *, received_ns: int) -> list[TickerData]:
    """Decode a ``/v1/ticker`` or ``/v1/ticker/all`` body into records, in Upbit's order.

    ``body`` is the bytes or text received, or the same already decoded into lists and dicts
    (numbers as Decimal or int, not float, to stay exact).

    Raises:
        ProtocolError: the body is not a list of tickers; ``raw`` is the body.
    """
    items: list[RestTicker] = decode_body(_REST_DECODER, body, "REST ticker body")
    return [ticker_from_rest(item, received_ns=received_ns, raw=body) for item in items]
