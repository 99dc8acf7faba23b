"""One entry point per channel: a WebSocket message or a REST body in, records out.

WebSocket messages are told apart without a second parse: a JSON array is a LIST format, a
``"ty"`` key means SIMPLE, a ``"type"`` key DEFAULT; msgspec then decodes the message straight
into the struct its ``type``/``ty`` value names (``ticker``, ``trade``, ``orderbook``,
``candle.{unit}``). Anything else is a control message (``{"status":"UP"}``, an error, a
LIST_SUBSCRIPTIONS answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeAlias

import msgspec

from backbone.errors import InvalidArgumentError, ProtocolError
from backbone.models import CandleData, Market, MarketRecord, OrderbookData, TickerData, TradeData
from backbone.upbit.protocol import candle, orderbook, ticker, trade
from backbone.upbit.protocol.market import parse_rest_markets
from backbone.upbit.protocol.status import Status, SubscriptionList, decode_control

__all__ = ["WsResult", "convert_ws", "decode_rest", "decode_ws", "decode_ws_message"]

WsResult: TypeAlias = MarketRecord | list[MarketRecord] | Status | SubscriptionList
"""What a WebSocket message decodes into."""

_Converter: TypeAlias = Callable[..., MarketRecord]

_DEFAULT_TYPES: Final[tuple[type[Any], ...]] = (
    ticker.WsTicker,
    trade.WsTrade,
    orderbook.WsOrderbook,
    *candle.ws_candle_types(simple=False),
)
_SIMPLE_TYPES: Final[tuple[type[Any], ...]] = (
    ticker.WsTickerSimple,
    trade.WsTradeSimple,
    orderbook.WsOrderbookSimple,
    *candle.ws_candle_types(simple=True),
)


def _union(types: tuple[type[Any], ...]) -> Any:
    union: Any = types[0]
    for t in types[1:]:
        union = union | t
    return union


_DEFAULT: Final = msgspec.json.Decoder(_union(_DEFAULT_TYPES))
_SIMPLE: Final = msgspec.json.Decoder(_union(_SIMPLE_TYPES))
_DEFAULT_LIST: Final = msgspec.json.Decoder(list[_union(_DEFAULT_TYPES)])  # type: ignore[misc]
_SIMPLE_LIST: Final = msgspec.json.Decoder(list[_union(_SIMPLE_TYPES)])  # type: ignore[misc]

_CONVERTERS: Final[dict[type[Any], _Converter]] = {
    ticker.WsTicker: ticker.ticker_from_ws,
    ticker.WsTickerSimple: ticker.ticker_from_ws,
    trade.WsTrade: trade.trade_from_ws,
    trade.WsTradeSimple: trade.trade_from_ws,
    orderbook.WsOrderbook: orderbook.orderbook_from_ws,
    orderbook.WsOrderbookSimple: orderbook.orderbook_from_ws,
    **{cls: candle.candle_from_ws for cls in candle.ws_candle_types(simple=False)},
    **{cls: candle.candle_from_ws for cls in candle.ws_candle_types(simple=True)},
}


def convert_ws(msg: Any, received_ns: int, raw: object = None) -> MarketRecord:
    """Convert one struct from :func:`decode_ws_message` into its record.

    Raises:
        ProtocolError: an enum value or date Upbit never documented.
    """
    return _CONVERTERS[type(msg)](msg, received_ns, raw)


def decode_ws_message(raw: bytes | str) -> Any:
    """Decode one WebSocket message of any of Upbit's four formats into its wire struct(s),
    without building records: the struct (``trade.WsTrade``, ``ticker.WsTicker``, ...), a
    list of them (LIST formats), or a control message (:class:`Status`,
    :class:`SubscriptionList`). Pass each struct to :func:`convert_ws` for its record.

    Raises:
        UpbitAPIError: the message is an error envelope (``status`` is ``None``).
        ProtocolError: malformed JSON, an unknown ``type``, a missing or mistyped field; the
            exception's ``raw`` is the message.
    """
    data = raw.encode() if isinstance(raw, str) else raw
    # Upbit puts the type key first; look further only when it does not.
    if data.startswith(b'{"type"'):
        decoder = _DEFAULT
    elif data.startswith(b'{"ty"'):
        decoder = _SIMPLE
    else:
        is_list = data.lstrip()[:1] == b"["
        if b'"type"' in data:
            decoder = _DEFAULT_LIST if is_list else _DEFAULT
        elif b'"ty"' in data:
            decoder = _SIMPLE_LIST if is_list else _SIMPLE
        elif is_list:
            raise ProtocolError("websocket list message without typed entries", raw)
        else:
            return decode_control(data)
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        if b'"method"' in data or b'"mthd"' in data:
            return decode_control(data)
        raise ProtocolError(f"malformed websocket message: {exc}", raw) from exc


def decode_ws(raw: bytes | str, *, received_ns: int) -> WsResult:
    """Decode one WebSocket message of any of Upbit's four formats.

    Returns:
        A record (DEFAULT, SIMPLE), a list of records (JSON_LIST, SIMPLE_LIST), or a control
        message: :class:`Status` (``{"status":"UP"}``) or :class:`SubscriptionList`.

    Raises:
        UpbitAPIError: the message is an error envelope (``status`` is ``None``).
        ProtocolError: malformed JSON, an unknown ``type``, a missing or mistyped field; the
            exception's ``raw`` is the message.
    """
    decoded = decode_ws_message(raw)
    converter = _CONVERTERS.get(type(decoded))
    if converter is not None:
        return converter(decoded, received_ns, raw)  # the hot path, inlined
    if type(decoded) is list:
        return [_CONVERTERS[type(msg)](msg, received_ns, raw) for msg in decoded]
    return decoded  # type: ignore[no-any-return]


def _path_only(path: str) -> str:
    bare = path.split("?", 1)[0].rstrip("/")
    return bare[3:] if bare.startswith("/v1/") else bare


def decode_rest(
    path: str, body: object, *, received_ns: int
) -> list[TickerData] | list[TradeData] | list[OrderbookData] | list[CandleData] | list[Market]:
    """Decode the body that REST ``path`` answered (``/v1`` prefix and query optional).

    Returns:
        Records in Upbit's order: tickers, trades (newest first), orderbooks, candles
        (newest first), or markets.

    Raises:
        InvalidArgumentError: ``path`` is not a quotation path tape decodes.
        ProtocolError: the body does not match the path; ``raw`` is the body.
    """
    bare = _path_only(path)
    if bare in ("/ticker", "/ticker/all"):
        return ticker.parse_rest_tickers(body, received_ns=received_ns)
    if bare == "/trades/ticks":
        return trade.parse_rest_trades(body, received_ns=received_ns)
    if bare == "/orderbook":
        return orderbook.parse_rest_orderbooks(body, received_ns=received_ns)
    if bare == "/market/all":
        return parse_rest_markets(body)
    timeframe = candle.timeframe_of_path(bare)
    if timeframe is not None:
        return candle.parse_rest_candles(body, timeframe, received_ns=received_ns)
    raise InvalidArgumentError(
        f"no decoder for REST path {path!r}; expected /v1/ticker, /v1/trades/ticks, "
        "/v1/orderbook, /v1/market/all or a /v1/candles/... path"
    )
