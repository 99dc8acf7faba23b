"""Seeded synthetic market data for the replay tests: every record type, every field shape.

Values vary on purpose: decimals with different exponents (``127.0``, ``0.00012345``,
``-3E+2``), optional fields both set and ``None``, REST- and WebSocket-sourced records,
receive stamps that are not monotone in delivery order, rows on both sides of 00:00 UTC.
"""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from backbone.models import (
    CandleData,
    ConnectionEvent,
    EventKind,
    OrderbookData,
    Record,
    TickerData,
    TradeData,
)
from recorder.parts import publish_table
from recorder.rows import dataset_of, to_table

# 2025-11-26T23:59:58Z: recordings straddle a date partition boundary.
BASE_NS = 1_764_201_598_000_000_000


def _ms(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=UTC)


class Market:
    """A seeded generator of one day's records for a few symbols."""

    def __init__(self, seed: int, symbols: tuple[str, ...] = ("KRW-BTC", "KRW-ETH")) -> None:
        self.rng = random.Random(seed)
        self.symbols = symbols
        self.seq_ids = dict.fromkeys(symbols, 1000)

    def price(self) -> Decimal:
        rng = self.rng
        shape = rng.randrange(4)
        if shape == 0:
            return Decimal(f"{rng.randrange(1, 10**8)}.0")
        if shape == 1:
            return Decimal(f"0.{rng.randrange(1, 10**8):08d}")
        if shape == 2:
            return Decimal(rng.randrange(1, 1000)).scaleb(2)
        return Decimal(f"{rng.randrange(1, 10**6)}.{rng.randrange(0, 10**4):04d}000")

    def maybe(self, value: Any) -> Any:
        return value if self.rng.random() < 0.7 else None

    def trade(self, symbol: str, ns: int) -> TradeData:
        self.seq_ids[symbol] += self.rng.randrange(1, 5)
        rest = self.rng.random() < 0.2
        return TradeData(
            symbol=symbol,
            trade_price=self.price(),
            trade_volume=self.price(),
            trade_side=self.rng.choice(("BID", "ASK")),
            trade_timestamp=_ms(ns - 5_000_000),
            sequential_id=self.seq_ids[symbol],
            source="rest" if rest else "websocket",
            received_ns=ns,
            prev_closing_price=Decimal("127.0"),
            change=self.rng.choice(("RISE", "EVEN", "FALL")),
            change_price=-self.price(),
            message_timestamp=None if rest else _ms(ns - 1_000_000),
            best_ask_price=None if rest else self.maybe(self.price()),
            best_ask_size=None if rest else self.maybe(self.price()),
            best_bid_price=None if rest else self.maybe(self.price()),
            best_bid_size=None if rest else self.maybe(self.price()),
            stream_type=None if rest else self.rng.choice(("REALTIME", "SNAPSHOT")),
        )

    def ticker(self, symbol: str, ns: int) -> TickerData:
        return TickerData(
            symbol=symbol,
            current_price=self.price(),
            change_rate=Decimal("-0.0123"),
            change_amount=-self.price(),
            volume_24h=self.price(),
            high_24h=self.price(),
            low_24h=self.price(),
            prev_closing_price=Decimal("127.00000000"),
            timestamp=_ms(ns - 2_000_000),
            source=self.rng.choice(("websocket", "rest")),
            received_ns=ns,
            opening_price=self.price(),
            change="RISE",
            trade_volume=self.price(),
            trade_timestamp=_ms(ns - 3_000_000),
            acc_trade_volume=self.price(),
            acc_trade_price=Decimal("78039261076.51241000"),
            acc_trade_price_24h=self.price(),
            highest_52_week_price=self.price(),
            highest_52_week_date=date(2025, 3, 1),
            lowest_52_week_price=self.price(),
            lowest_52_week_date=date(2025, 8, 1),
            ask_bid=self.maybe("BID"),
            acc_ask_volume=self.maybe(self.price()),
            acc_bid_volume=self.maybe(self.price()),
            market_state=self.maybe("ACTIVE"),
            delisting_date=self.maybe(date(2026, 1, 2)),
            stream_type=self.maybe("REALTIME"),
        )

    def orderbook(self, symbol: str, ns: int) -> OrderbookData:
        units = self.rng.randrange(1, 6)
        return OrderbookData(
            symbol=symbol,
            bid_prices=tuple(self.price() for _ in range(units)),
            bid_volumes=tuple(self.price() for _ in range(units)),
            ask_prices=tuple(self.price() for _ in range(units)),
            ask_volumes=tuple(self.price() for _ in range(units)),
            timestamp=_ms(ns - 1_000_000),
            source="websocket",
            received_ns=ns,
            total_ask_size=self.price(),
            total_bid_size=self.price(),
            level=self.maybe(Decimal(0)),
            stream_type=self.maybe("REALTIME"),
        )

    def candle(self, symbol: str, ns: int) -> CandleData:
        moment = _ms(ns)
        return CandleData(
            symbol=symbol,
            timeframe=self.rng.choice(("1m", "1s")),
            open_time=moment.replace(second=0, microsecond=0),
            open_price=self.price(),
            high_price=self.price(),
            low_price=self.price(),
            close_price=self.price(),
            volume=self.price(),
            quote_volume=self.price(),
            timestamp=moment,
            source="websocket",
            received_ns=ns,
            stream_type=self.maybe("REALTIME"),
            prev_closing_price=self.maybe(self.price()),
            change_price=self.maybe(self.price()),
            change_rate=self.maybe(Decimal("0.001")),
        )

    def event(self, ns: int) -> ConnectionEvent:
        symbols = self.rng.choice(((), (self.symbols[0],), self.symbols, ("KRW-ZZZ",)))
        return ConnectionEvent(
            kind=self.rng.choice(list(EventKind)),
            source=self.rng.choice(("websocket", "rest")),
            received_ns=ns,
            channel=self.maybe("trade"),
            symbols=symbols,
            start_ns=self.maybe(ns - 1000),
            end_ns=self.maybe(ns),
            exchange_start=self.maybe(_ms(ns - 10_000_000)),
            exchange_end=self.maybe(_ms(ns)),
            cause=self.rng.choice(("", "disconnect", "stall")),
            rows_recovered=self.maybe(3),
            rows_missing=self.maybe(0),
            detail="synthetic ✓",
        )

    def records(
        self, count: int, *, start_ns: int = BASE_NS, step_ns: int = 1_000_000
    ) -> list[Record]:
        """``count`` records in delivery order; receive stamps jitter backwards now and then."""
        out: list[Record] = []
        ns = start_ns
        for _ in range(count):
            ns += self.rng.randrange(0, 2 * step_ns)
            stamp = ns - self.rng.randrange(0, 3 * step_ns) if self.rng.random() < 0.1 else ns
            symbol = self.rng.choice(self.symbols)
            kind = self.rng.random()
            if kind < 0.45:
                out.append(self.trade(symbol, stamp))
            elif kind < 0.65:
                out.append(self.ticker(symbol, stamp))
            elif kind < 0.8:
                out.append(self.orderbook(symbol, stamp))
            elif kind < 0.93:
                out.append(self.candle(symbol, stamp))
            else:
                out.append(self.event(stamp))
        return out


def write_parts(
    root: Path,
    records: list[Record],
    *,
    session_id: str,
    seqs: list[int],
    compression: str = "zstd",
) -> None:
    """Write ``records`` (with their ``seqs``) as parts of one session, through the recorder's
    own writer: one call makes one part per partition, so calling it again for later records
    of the same session makes a partition hold several parts."""
    by_dataset: dict[str, tuple[list[Record], list[int]]] = {}
    for record, seq in zip(records, seqs, strict=True):
        group = by_dataset.setdefault(dataset_of(record), ([], []))
        group[0].append(record)
        group[1].append(seq)
    for dataset, (recs, numbers) in by_dataset.items():
        table = to_table(dataset, recs, session_id=session_id, seqs=numbers)
        publish_table(root, dataset, table, compression=compression)


def with_received(record: Record, received_ns: int) -> Record:
    """The same record received at another time."""
    return replace(record, received_ns=received_ns)
