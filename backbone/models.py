"""The one model every part of tape speaks: what the backbone yields, the recorder writes and
the replay engine yields again.

Records are frozen, slotted dataclasses with value equality, so "replay equals live" is ``==``.
Prices and sizes are :class:`~decimal.Decimal` equal to the number text Upbit sent; sequences
are tuples; exchange times are aware UTC :class:`~datetime.datetime` values (millisecond
resolution, as Upbit sends them); the local receive time is ``received_ns``, integer
nanoseconds since the Unix epoch, stamped by the I/O shell when the frame or response arrived.

A field that only one channel carries (WebSocket or REST) is ``None`` in records from the
other channel; ``source`` says which channel a record came from.

Field names follow the API tape grew from (its Phase 1.1: ``current_price``, ``change_rate``,
``change_amount``, ``volume_24h``, ``high_24h``, ``low_24h``) where it had one, and Upbit's
names otherwise. Callers must treat records as values: build new ones, never mutate.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Final, Literal, TypeAlias

__all__ = [
    "CANDLE_TIMEFRAMES",
    "CandleData",
    "ConnectionEvent",
    "EventKind",
    "Market",
    "MarketRecord",
    "OrderbookData",
    "RawFrame",
    "Record",
    "Source",
    "TickerData",
    "TradeData",
    "record_fields",
]

Source: TypeAlias = Literal["websocket", "rest"]
"""Which channel produced a record."""

CANDLE_TIMEFRAMES: Final[tuple[str, ...]] = (
    "1s",
    "1m",
    "3m",
    "5m",
    "10m",
    "15m",
    "30m",
    "60m",
    "240m",
    "1d",
    "1w",
    "1mo",
    "1y",
)
"""Every candle timeframe tape knows, shortest first. No two differ only by case."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TickerData:
    """The state of one market: last price, daily and rolling-24 h figures.

    ``change_rate`` is in percent and signed (Upbit's ``signed_change_rate`` times 100),
    ``change_amount`` is signed. ``high_24h`` and ``low_24h`` are Upbit's ``high_price`` and
    ``low_price``, which reset at 00:00 UTC (the names are kept from tape's first API);
    ``volume_24h`` is Upbit's rolling ``acc_trade_volume_24h``.
    """

    symbol: str
    current_price: Decimal
    change_rate: Decimal
    change_amount: Decimal
    volume_24h: Decimal
    high_24h: Decimal
    low_24h: Decimal
    prev_closing_price: Decimal
    timestamp: datetime
    source: Source
    received_ns: int
    opening_price: Decimal
    change: str
    trade_volume: Decimal
    trade_timestamp: datetime
    acc_trade_volume: Decimal
    acc_trade_price: Decimal
    acc_trade_price_24h: Decimal
    highest_52_week_price: Decimal
    highest_52_week_date: date
    lowest_52_week_price: Decimal
    lowest_52_week_date: date
    ask_bid: str | None = None
    acc_ask_volume: Decimal | None = None
    acc_bid_volume: Decimal | None = None
    market_state: str | None = None
    delisting_date: date | None = None
    stream_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeData:
    """One executed trade.

    ``sequential_id`` is unique within a market only: key trades on
    ``(symbol, sequential_id)``. ``trade_side`` is the taker's side (``"BID"`` bought from the
    asks, ``"ASK"`` sold into the bids). ``change_price`` is signed on both channels.
    ``message_timestamp`` is when Upbit sent the WebSocket message (REST has no such time).
    """

    symbol: str
    trade_price: Decimal
    trade_volume: Decimal
    trade_side: str
    trade_timestamp: datetime
    sequential_id: int
    source: Source
    received_ns: int
    prev_closing_price: Decimal
    change: str
    change_price: Decimal
    message_timestamp: datetime | None = None
    best_ask_price: Decimal | None = None
    best_ask_size: Decimal | None = None
    best_bid_price: Decimal | None = None
    best_bid_size: Decimal | None = None
    stream_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderbookData:
    """A full top-N snapshot of one market's book (Upbit sends snapshots, never deltas).

    Levels are best first: bids descending, asks ascending. ``level`` is the price
    aggregation unit Upbit applied (0: none).
    """

    symbol: str
    bid_prices: tuple[Decimal, ...]
    bid_volumes: tuple[Decimal, ...]
    ask_prices: tuple[Decimal, ...]
    ask_volumes: tuple[Decimal, ...]
    timestamp: datetime
    source: Source
    received_ns: int
    total_ask_size: Decimal
    total_bid_size: Decimal
    level: Decimal | None = None
    stream_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CandleData:
    """One OHLCV candle. ``open_time`` is the interval's start (UTC); ``timestamp`` is the
    time of the last trade in it. ``timeframe`` is one of :data:`CANDLE_TIMEFRAMES`.

    The WebSocket may send the same ``open_time`` many times while the candle grows: the last
    one wins. ``prev_closing_price``, ``change_price`` and ``change_rate`` (a signed ratio)
    come with REST day candles only.
    """

    symbol: str
    timeframe: str
    open_time: datetime
    open_price: Decimal
    high_price: Decimal
    low_price: Decimal
    close_price: Decimal
    volume: Decimal
    quote_volume: Decimal
    timestamp: datetime
    source: Source
    received_ns: int
    stream_type: str | None = None
    prev_closing_price: Decimal | None = None
    change_price: Decimal | None = None
    change_rate: Decimal | None = None


class EventKind(StrEnum):
    """What happened to a connection or a stream."""

    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    RECONNECTED = "reconnected"
    SOURCE_SWITCHED = "source_switched"
    GAP_DETECTED = "gap_detected"
    GAP_REPAIRED = "gap_repaired"
    GAP_UNREPAIRED = "gap_unrepaired"
    RECORDS_DROPPED = "records_dropped"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionEvent:
    """A connection, source-switch or gap event, recorded and replayed like market data.

    ``source`` is the channel the event concerns; ``channel`` the data type (``"ticker"``,
    ``"trade"``, ``"orderbook"``, ``"candle"``) when it concerns one. ``start_ns``/``end_ns``
    bound the interval on the local clock (e.g. from the disconnect to the reconnect);
    ``exchange_start``/``exchange_end`` bound it on the exchange's clock when known (e.g. the
    last trade seen before a gap and the first after it). ``rows_recovered`` counts records a
    repair delivered, ``rows_missing`` those known lost (``None``: not known).
    """

    kind: EventKind
    source: Source
    received_ns: int
    channel: str | None = None
    symbols: tuple[str, ...] = ()
    start_ns: int | None = None
    end_ns: int | None = None
    exchange_start: datetime | None = None
    exchange_end: datetime | None = None
    cause: str = ""
    rows_recovered: int | None = None
    rows_missing: int | None = None
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RawFrame:
    """An undecoded WebSocket frame or REST body, kept so normalization can be redone.

    ``endpoint`` is the WebSocket connection's label or the REST request path with its query
    string; ``payload`` is the bytes exactly as they arrived.
    """

    source: Source
    endpoint: str
    payload: bytes
    received_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Market:
    """One tradable pair from Upbit's market list.

    ``warning`` is Upbit's designated-warning flag; ``caution`` names the caution alerts that
    apply (empty when none, or when the list was fetched without details).
    """

    symbol: str
    korean_name: str
    english_name: str
    quote_currency: str
    base_currency: str
    warning: bool = False
    caution: tuple[str, ...] = ()


MarketRecord: TypeAlias = TickerData | TradeData | OrderbookData | CandleData
"""A market-data record, as a stream yields it."""

Record: TypeAlias = MarketRecord | ConnectionEvent
"""Anything the backbone delivers and the recorder writes."""


def record_fields(cls: type[Record]) -> tuple[str, ...]:
    """Return the field names of a record class, in declaration order."""
    return tuple(f.name for f in fields(cls))
