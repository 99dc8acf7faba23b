"""Upbit's wire protocol as pure functions: bytes and dicts in, records and frames out.

No I/O here (no asyncio, aiohttp or websockets): the shells in ``backbone.upbit`` connect,
stamp the receive time and hand bytes to these functions. One module per message kind
(``ticker``, ``trade``, ``orderbook``, ``candle``, ``market``, ``status``); what we send lives
apart (``subscribe`` for the WebSocket, ``request`` for REST); ``quota`` reads Upbit's
``Remaining-Req`` header; ``messages`` dispatches a message or body to the right module.
"""

from backbone.upbit.protocol.candle import WS_TIMEFRAMES, check_timeframe, rest_path, ws_type
from backbone.upbit.protocol.market import parse_rest_markets, split_symbol
from backbone.upbit.protocol.messages import WsResult, decode_rest, decode_ws
from backbone.upbit.protocol.orderbook import OrderbookInstrument, parse_rest_instruments
from backbone.upbit.protocol.quota import Quota, parse_remaining_req
from backbone.upbit.protocol.request import (
    MAX_CANDLES,
    MAX_TRADES,
    MAX_TRADES_DAYS_AGO,
    RestRequest,
    candles_request,
    group_of_path,
    markets_request,
    orderbook_request,
    ticker_request,
    trades_request,
)
from backbone.upbit.protocol.status import (
    ActiveSubscription,
    Status,
    SubscriptionList,
    block_seconds,
    decode_control,
    error_from_body,
)
from backbone.upbit.protocol.subscribe import (
    FORMATS,
    PING,
    Subscription,
    build_list_subscriptions_frame,
    build_subscribe_frame,
)

__all__ = [
    "FORMATS",
    "MAX_CANDLES",
    "MAX_TRADES",
    "MAX_TRADES_DAYS_AGO",
    "PING",
    "WS_TIMEFRAMES",
    "ActiveSubscription",
    "OrderbookInstrument",
    "Quota",
    "RestRequest",
    "Status",
    "Subscription",
    "SubscriptionList",
    "WsResult",
    "block_seconds",
    "build_list_subscriptions_frame",
    "build_subscribe_frame",
    "candles_request",
    "check_timeframe",
    "decode_control",
    "decode_rest",
    "decode_ws",
    "error_from_body",
    "group_of_path",
    "markets_request",
    "orderbook_request",
    "parse_remaining_req",
    "parse_rest_instruments",
    "parse_rest_markets",
    "rest_path",
    "split_symbol",
    "ticker_request",
    "trades_request",
    "ws_type",
]
