"""Trade: one executed trade.

WebSocket, DEFAULT format (Upbit's documented example; keys annotated)::

    {
      "type": "trade",                       # message kind
      "code": "KRW-BTC",                     # market             -> symbol
      "timestamp": 1787728554853,            # ms, message time   -> message_timestamp
      "trade_date": "2026-08-26",            # yyyy-MM-dd UTC (unused: trade_timestamp is exact)
      "trade_time": "07:15:54",              # HH:mm:ss UTC (unused)
      "trade_timestamp": 1787728554797,      # ms, execution time -> trade_timestamp
      "trade_price": 109847000.0,
      "trade_volume": 0.00509799,
      "ask_bid": "ASK",                      # taker side         -> trade_side
      "prev_closing_price": 109165000.0,
      "change": "RISE",                      # RISE / EVEN / FALL
      "change_price": 682000.0,              # UNSIGNED here; the sign comes from change
      "sequential_id": 17877285547970000,    # unique within the market, not ordered
      "best_ask_price": 109867000,           # since 2024-11-27 (WebSocket only)
      "best_ask_size": 0.0099545,
      "best_bid_price": 109847000,
      "best_bid_size": 0.1583673,
      "stream_type": "SNAPSHOT"              # SNAPSHOT / REALTIME (WebSocket only)
    }

The same message in SIMPLE format (abbreviations from Upbit's field table)::

    {"ty": "trade", "cd": "KRW-BTC", "tms": 1787728554853, "td": "2026-08-26",
     "ttm": "07:15:54", "ttms": 1787728554797, "tp": 109847000.0, "tv": 0.00509799,
     "ab": "ASK", "pcp": 109165000.0, "c": "RISE", "cp": 682000.0,
     "sid": 17877285547970000, "bap": 109867000, "bas": 0.0099545, "bbp": 109847000,
     "bbs": 0.1583673, "st": "SNAPSHOT"}

REST ``GET /v1/trades/ticks?market=...`` answers a list, newest first, of::

    {
      "market": "KRW-BTC",
      "trade_date_utc": "2025-06-27",        # unused (timestamp is exact)
      "trade_time_utc": "23:59:59",          # unused
      "timestamp": 1751068799336,            # ms, execution time -> trade_timestamp
      "trade_price": 147058000,
      "trade_volume": 0.00006043,
      "prev_closing_price": 146852000,
      "change_price": 206000,                # SIGNED; change is derived from its sign
      "ask_bid": "BID",
      "sequential_id": 17510687993360000
    }
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

import msgspec

from backbone.models import TradeData
from backbone.upbit.protocol._wire import (
    CHANGE,
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
    "RestTrade",
    "WsTrade",
    "WsTradeSimple",
    "parse_rest_trades",
    "trade_from_rest",
    "trade_from_ws",
]


class WsTrade(msgspec.Struct, tag_field="type", tag="trade", kw_only=True, gc=False):
    """A WebSocket trade message, DEFAULT keys."""

    code: str
    timestamp: int
    trade_timestamp: int
    trade_price: Decimal
    trade_volume: Decimal
    ask_bid: str
    prev_closing_price: Decimal
    change: str
    change_price: Decimal
    sequential_id: int
    best_ask_price: Decimal | None = None
    best_ask_size: Decimal | None = None
    best_bid_price: Decimal | None = None
    best_bid_size: Decimal | None = None
    stream_type: str | None = None


SIMPLE_KEYS: Final = {
    "code": "cd",
    "timestamp": "tms",
    "trade_timestamp": "ttms",
    "trade_price": "tp",
    "trade_volume": "tv",
    "ask_bid": "ab",
    "prev_closing_price": "pcp",
    "change": "c",
    "change_price": "cp",
    "sequential_id": "sid",
    "best_ask_price": "bap",
    "best_ask_size": "bas",
    "best_bid_price": "bbp",
    "best_bid_size": "bbs",
    "stream_type": "st",
}
"""DEFAULT key -> SIMPLE abbreviation, for every field tape decodes."""

WsTradeSimple = simple_variant(WsTrade, SIMPLE_KEYS, tag="trade")


class RestTrade(msgspec.Struct, kw_only=True, gc=False):
    """One element of ``GET /v1/trades/ticks``."""

    market: str
    timestamp: int
    trade_price: Decimal
    trade_volume: Decimal
    prev_closing_price: Decimal
    change_price: Decimal
    ask_bid: str
    sequential_id: int


_REST_DECODER: Final = msgspec.json.Decoder(list[RestTrade])
_ZERO: Final = Decimal(0)
_make = fast_constructor(TradeData)


def trade_from_ws(msg: WsTrade, received_ns: int, raw: object = None) -> TradeData:
    """Convert a decoded WebSocket trade (either format) into a record.

    ``change_price`` comes unsigned over the WebSocket; the record's is signed by ``change``.

    Raises:
        ProtocolError: an enum value Upbit never documented.
    """
    # The hot path of every trade: table lookups inline, the slow path names the culprit.
    try:
        change = CHANGE[msg.change]
        side = SIDE[msg.ask_bid]
        stream_type = None if msg.stream_type is None else STREAM_TYPE[msg.stream_type]
    except KeyError:
        lookup(CHANGE, msg.change, "change", raw)
        lookup(SIDE, msg.ask_bid, "ask_bid", raw)
        lookup_opt(STREAM_TYPE, msg.stream_type, "stream_type", raw)
        raise
    price = msg.change_price
    # Positional, in TradeData's field order (the fastest call; see fast_constructor).
    return _make(
        msg.code,  # symbol
        msg.trade_price,
        msg.trade_volume,
        side,  # trade_side
        ms_to_datetime(msg.trade_timestamp),  # trade_timestamp
        msg.sequential_id,
        "websocket",  # source
        received_ns,
        msg.prev_closing_price,
        change,
        -price if change == "FALL" and price > _ZERO else price,  # change_price, signed
        ms_to_datetime(msg.timestamp),  # message_timestamp
        msg.best_ask_price,
        msg.best_ask_size,
        msg.best_bid_price,
        msg.best_bid_size,
        stream_type,
    )


def trade_from_rest(item: RestTrade, *, received_ns: int, raw: object = None) -> TradeData:
    """Convert one decoded REST trade into a record; ``change`` follows the sign of
    ``change_price``."""
    if item.change_price > _ZERO:
        change = "RISE"
    elif item.change_price < _ZERO:
        change = "FALL"
    else:
        change = "EVEN"
    return TradeData(
        symbol=item.market,
        trade_price=item.trade_price,
        trade_volume=item.trade_volume,
        trade_side=lookup(SIDE, item.ask_bid, "ask_bid", raw),
        trade_timestamp=ms_to_datetime(item.timestamp),
        sequential_id=item.sequential_id,
        source="rest",
        received_ns=received_ns,
        prev_closing_price=item.prev_closing_price,
        change=change,
        change_price=item.change_price,
    )


def parse_rest_trades(body: object, *, received_ns: int) -> list[TradeData]:
    """Decode a ``/v1/trades/ticks`` body into records, in Upbit's order (newest first).

    Raises:
        ProtocolError: the body is not a list of trades; ``raw`` is the body.
    """
    items: list[RestTrade] = decode_body(_REST_DECODER, body, "REST trades body")
    return [trade_from_rest(item, received_ns=received_ns, raw=body) for item in items]
