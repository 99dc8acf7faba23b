"""Synthetic records for the recorder's tests: every field filled, values exact."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from backbone.models import (
    CandleData,
    ConnectionEvent,
    EventKind,
    OrderbookData,
    RawFrame,
    TickerData,
    TradeData,
)

BASE_NS = 1_764_115_200_000_000_000  # 2025-11-26T00:00:00Z


def at_ms(received_ns: int) -> datetime:
    """An exchange time a little before the receive time, to the millisecond."""
    return datetime.fromtimestamp((received_ns // 1_000_000 - 7) / 1000, tz=UTC)


def trade(
    symbol: str,
    sequential_id: int,
    received_ns: int,
    *,
    price: str = "1000.5",
    source: str = "websocket",
) -> TradeData:
    return TradeData(
        symbol=symbol,
        trade_price=Decimal(price),
        trade_volume=Decimal("0.00012345"),
        trade_side="BID" if sequential_id % 2 else "ASK",
        trade_timestamp=at_ms(received_ns),
        sequential_id=sequential_id,
        source=source,  # type: ignore[arg-type]
        received_ns=received_ns,
        prev_closing_price=Decimal("999"),
        change="RISE",
        change_price=Decimal("1.5"),
        message_timestamp=at_ms(received_ns) if source == "websocket" else None,
        best_ask_price=Decimal("1001") if source == "websocket" else None,
        best_ask_size=Decimal("0.5") if source == "websocket" else None,
        best_bid_price=Decimal("1000") if source == "websocket" else None,
        best_bid_size=Decimal("0.25") if source == "websocket" else None,
        stream_type="REALTIME" if source == "websocket" else None,
    )


def ticker(symbol: str, received_ns: int, *, price: str = "1000.5") -> TickerData:
    return TickerData(
        symbol=symbol,
        current_price=Decimal(price),
        change_rate=Decimal("0.15"),
        change_amount=Decimal("-1.5"),
        volume_24h=Decimal("12345.67890123"),
        high_24h=Decimal("1010"),
        low_24h=Decimal("990"),
        prev_closing_price=Decimal("999"),
        timestamp=at_ms(received_ns),
        source="websocket",
        received_ns=received_ns,
        opening_price=Decimal("995"),
        change="RISE",
        trade_volume=Decimal("0.001"),
        trade_timestamp=at_ms(received_ns),
        acc_trade_volume=Decimal("100.5"),
        acc_trade_price=Decimal("78039261076.51241000"),
        acc_trade_price_24h=Decimal("98039261076.51241"),
        highest_52_week_price=Decimal("2000"),
        highest_52_week_date=date(2025, 3, 1),
        lowest_52_week_price=Decimal("500"),
        lowest_52_week_date=date(2025, 8, 1),
        ask_bid="BID",
        acc_ask_volume=Decimal("50"),
        acc_bid_volume=Decimal("50.5"),
        market_state="ACTIVE",
        delisting_date=None,
        stream_type="REALTIME",
    )


def orderbook(symbol: str, received_ns: int, *, units: int = 30) -> OrderbookData:
    bids = tuple(Decimal(1000 - i) for i in range(units))
    asks = tuple(Decimal(1001 + i) for i in range(units))
    sizes = tuple(Decimal(f"0.{i + 1:08d}") for i in range(units))
    return OrderbookData(
        symbol=symbol,
        bid_prices=bids,
        bid_volumes=sizes,
        ask_prices=asks,
        ask_volumes=sizes,
        timestamp=at_ms(received_ns),
        source="websocket",
        received_ns=received_ns,
        total_ask_size=sum(sizes, Decimal(0)),
        total_bid_size=sum(sizes, Decimal(0)),
        level=Decimal(0),
        stream_type="REALTIME",
    )


def candle(symbol: str, received_ns: int) -> CandleData:
    moment = at_ms(received_ns)
    return CandleData(
        symbol=symbol,
        timeframe="1m",
        open_time=moment.replace(second=0, microsecond=0),
        open_price=Decimal("1000"),
        high_price=Decimal("1010"),
        low_price=Decimal("990"),
        close_price=Decimal("1005"),
        volume=Decimal("1.23456789"),
        quote_volume=Decimal("1234.5678"),
        timestamp=moment,
        source="websocket",
        received_ns=received_ns,
        stream_type="REALTIME",
    )


def event(received_ns: int, kind: EventKind = EventKind.DISCONNECTED) -> ConnectionEvent:
    return ConnectionEvent(
        kind=kind,
        source="websocket",
        received_ns=received_ns,
        channel="trade",
        symbols=("KRW-BTC", "KRW-ETH"),
        start_ns=received_ns - 1000,
        end_ns=received_ns,
        cause="test",
        detail="synthetic",
    )


def raw(received_ns: int, payload: bytes = b'{"ty":"trade"}') -> RawFrame:
    return RawFrame(source="websocket", endpoint="ws-0", payload=payload, received_ns=received_ns)


async def until(predicate: Callable[[], object], timeout_s: float = 60) -> None:
    """Wait until ``predicate()`` is true; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
