"""Orderbook: a full top-N snapshot of one market's book (never a delta).

WebSocket, DEFAULT format (Upbit's documented example, cut to two of its 30 units)::

    {
      "type": "orderbook",                   # message kind
      "code": "KRW-BTC",                     # market (a requested "KRW-BTC.15" comes back plain)
      "timestamp": 1746601573804,            # ms -> timestamp
      "total_ask_size": 4.79158413,          # sum of the units' ask_size
      "total_bid_size": 2.65609625,          # sum of the units' bid_size
      "orderbook_units": [                   # best level first
        {"ask_price": 137002000,             # asks ascending  -> ask_prices
         "bid_price": 137001000,             # bids descending -> bid_prices
         "ask_size": 0.10623869,             #                 -> ask_volumes
         "bid_size": 0.03656812},            #                 -> bid_volumes
        {"ask_price": 137023000, "bid_price": 137000000,
         "ask_size": 0.06144079, "bid_size": 0.33543284}
      ],
      "level": 0,                            # price aggregation unit (0: none)
      "stream_type": "REALTIME"              # SNAPSHOT / REALTIME (WebSocket only)
    }

The same message in SIMPLE format (abbreviations from Upbit's field table)::

    {"ty": "orderbook", "cd": "KRW-BTC", "tms": 1746601573804, "tas": 4.79158413,
     "tbs": 2.65609625,
     "obu": [{"ap": 137002000, "bp": 137001000, "as": 0.10623869, "bs": 0.03656812},
             {"ap": 137023000, "bp": 137000000, "as": 0.06144079, "bs": 0.33543284}],
     "lv": 0, "st": "REALTIME"}

REST ``GET /v1/orderbook?markets=...`` answers a list of objects with the DEFAULT keys,
``market`` instead of ``type``/``code`` and no ``stream_type``.
``GET /v1/orderbook/instruments`` answers tick sizes and supported levels as *strings*::

    [{"market": "KRW-BTC", "quote_currency": "KRW", "tick_size": "1000",
      "supported_levels": ["0", "10000", "100000"]}]
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Final

import msgspec

from backbone.errors import ProtocolError
from backbone.models import OrderbookData, Source
from backbone.upbit.protocol._wire import (
    STREAM_TYPE,
    decode_body,
    fast_constructor,
    lookup_opt,
    ms_to_datetime,
    simple_variant,
)

__all__ = [
    "SIMPLE_KEYS",
    "SIMPLE_UNIT_KEYS",
    "OrderbookInstrument",
    "OrderbookUnit",
    "RestOrderbook",
    "WsOrderbook",
    "WsOrderbookSimple",
    "orderbook_from_rest",
    "orderbook_from_ws",
    "parse_rest_instruments",
    "parse_rest_orderbooks",
]


_make = fast_constructor(OrderbookData)


class OrderbookUnit(msgspec.Struct, kw_only=True, gc=False):
    """One level pair: the i-th best ask and the i-th best bid."""

    ask_price: Decimal
    bid_price: Decimal
    ask_size: Decimal
    bid_size: Decimal


SIMPLE_UNIT_KEYS: Final = {"ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs"}
"""DEFAULT key -> SIMPLE abbreviation inside ``orderbook_units``."""

OrderbookUnitSimple = simple_variant(OrderbookUnit, SIMPLE_UNIT_KEYS)


class WsOrderbook(msgspec.Struct, tag_field="type", tag="orderbook", kw_only=True, gc=False):
    """A WebSocket orderbook message, DEFAULT keys."""

    code: str
    timestamp: int
    total_ask_size: Decimal
    total_bid_size: Decimal
    orderbook_units: list[OrderbookUnit]
    level: Decimal | None = None
    stream_type: str | None = None


SIMPLE_KEYS: Final = {
    "code": "cd",
    "timestamp": "tms",
    "total_ask_size": "tas",
    "total_bid_size": "tbs",
    "orderbook_units": "obu",
    "level": "lv",
    "stream_type": "st",
}
"""DEFAULT key -> SIMPLE abbreviation, for every field tape decodes."""

WsOrderbookSimple = simple_variant(
    WsOrderbook,
    SIMPLE_KEYS,
    tag="orderbook",
    types={"orderbook_units": list[OrderbookUnitSimple]},  # type: ignore[valid-type]
)


class RestOrderbook(msgspec.Struct, kw_only=True, gc=False):
    """One element of ``GET /v1/orderbook``."""

    market: str
    timestamp: int
    total_ask_size: Decimal
    total_bid_size: Decimal
    orderbook_units: list[OrderbookUnit]
    level: Decimal | None = None


class _RestInstrument(msgspec.Struct, kw_only=True):
    market: str
    quote_currency: str
    tick_size: str
    supported_levels: list[str]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderbookInstrument:
    """A market's tick size and the aggregation levels its orderbook accepts."""

    symbol: str
    quote_currency: str
    tick_size: Decimal
    supported_levels: tuple[Decimal, ...]


_REST_DECODER: Final = msgspec.json.Decoder(list[RestOrderbook])
_INSTRUMENTS_DECODER: Final = msgspec.json.Decoder(list[_RestInstrument])


_astuple: Final = msgspec.structs.astuple


def _book(
    symbol: str,
    units: list[OrderbookUnit],
    timestamp: int,
    total_ask: Decimal,
    total_bid: Decimal,
    level: Decimal | None,
    source: Source,
    received_ns: int,
    stream_type: str | None,
) -> OrderbookData:
    if units:
        # One pass in C: each unit as (ask_price, bid_price, ask_size, bid_size), transposed.
        ask_prices, bid_prices, ask_sizes, bid_sizes = zip(*map(_astuple, units), strict=True)
    else:
        ask_prices = bid_prices = ask_sizes = bid_sizes = ()
    # Positional, in OrderbookData's field order (see fast_constructor).
    return _make(
        symbol,
        bid_prices,
        bid_sizes,  # bid_volumes
        ask_prices,
        ask_sizes,  # ask_volumes
        ms_to_datetime(timestamp),
        source,
        received_ns,
        total_ask,
        total_bid,
        level,
        stream_type,
    )


def orderbook_from_ws(msg: WsOrderbook, received_ns: int, raw: object = None) -> OrderbookData:
    """Convert a decoded WebSocket orderbook (either format) into a record.

    Raises:
        ProtocolError: an enum value Upbit never documented.
    """
    return _book(
        msg.code,
        msg.orderbook_units,
        msg.timestamp,
        msg.total_ask_size,
        msg.total_bid_size,
        msg.level,
        "websocket",
        received_ns,
        lookup_opt(STREAM_TYPE, msg.stream_type, "stream_type", raw),
    )


def orderbook_from_rest(item: RestOrderbook, *, received_ns: int) -> OrderbookData:
    """Convert one decoded REST orderbook into a record."""
    return _book(
        item.market,
        item.orderbook_units,
        item.timestamp,
        item.total_ask_size,
        item.total_bid_size,
        item.level,
        "rest",
        received_ns,
        None,
    )


def parse_rest_orderbooks(body: object, *, received_ns: int) -> list[OrderbookData]:
    """Decode a ``/v1/orderbook`` body into records, in Upbit's order.

    An unsupported ``level`` makes Upbit answer an empty list; so does this.

    Raises:
        ProtocolError: the body is not a list of orderbooks; ``raw`` is the body.
    """
    items: list[RestOrderbook] = decode_body(_REST_DECODER, body, "REST orderbook body")
    return [orderbook_from_rest(item, received_ns=received_ns) for item in items]


def _decimal_text(text: str, raw: object) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ProtocolError(f"bad decimal string {text!r}", raw) from None


def parse_rest_instruments(body: object) -> list[OrderbookInstrument]:
    """Decode a ``/v1/orderbook/instruments`` body (numbers arrive as strings).

    Raises:
        ProtocolError: the body has another shape, or a number string is not a number.
    """
    items: list[_RestInstrument] = decode_body(
        _INSTRUMENTS_DECODER, body, "REST orderbook instruments body"
    )
    return [
        OrderbookInstrument(
            symbol=item.market,
            quote_currency=item.quote_currency,
            tick_size=_decimal_text(item.tick_size, body),
            supported_levels=tuple(_decimal_text(v, body) for v in item.supported_levels),
        )
        for item in items
    ]
