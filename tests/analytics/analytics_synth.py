"""Synthetic recordings for analytics tests, written through the recorder's entry point.

:meth:`Synth.add` builds one record of ``backbone.models`` (every field given a neutral
default, exchange times defaulting to the receive time, i.e. zero latency) and
:meth:`Synth.write` hands them to :func:`recorder.write_recording` as one session, so
``seq`` follows the order of the ``add`` calls. ``rest_*`` datasets get a
:class:`recorder.RestSnapshot` whose request was sent 2 ms before its answer arrived.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from backbone.models import (
    CandleData,
    ConnectionEvent,
    EventKind,
    OrderbookData,
    TickerData,
    TradeData,
)
from recorder import RestSnapshot, write_recording

T0_NS = 1_764_118_800_000_000_000  # 2025-11-26T01:00:00Z
MS = 1_000_000
S = 1_000_000_000


def at(ns: int) -> datetime:
    """Return the aware UTC datetime of ``ns`` truncated to the millisecond (Upbit's unit)."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ns // MS)


def dec(value: object) -> Decimal:
    return Decimal(str(value))


_DAY = date(2025, 11, 26)

_DEFAULTS: dict[str, dict[str, Any]] = {
    "ticker": {
        "current_price": dec(100),
        "change_rate": dec("0.5"),
        "change_amount": dec("0.5"),
        "volume_24h": dec(1000),
        "high_24h": dec(110),
        "low_24h": dec(90),
        "prev_closing_price": dec("99.5"),
        "opening_price": dec(99),
        "change": "RISE",
        "trade_volume": dec(1),
        "acc_trade_volume": dec(500),
        "acc_trade_price": dec(50000),
        "acc_trade_price_24h": dec(100000),
        "highest_52_week_price": dec(200),
        "highest_52_week_date": _DAY,
        "lowest_52_week_price": dec(50),
        "lowest_52_week_date": _DAY,
    },
    "trade": {
        "trade_price": dec(100),
        "trade_volume": dec(1),
        "trade_side": "BID",
        "prev_closing_price": dec("99.5"),
        "change": "RISE",
        "change_price": dec("0.5"),
    },
    "orderbook": {
        "bid_prices": (dec(99), dec(98)),
        "bid_volumes": (dec(1), dec(2)),
        "ask_prices": (dec(101), dec(102)),
        "ask_volumes": (dec(3), dec(4)),
        "total_bid_size": dec(3),
        "total_ask_size": dec(7),
        "level": dec(0),
    },
    "candle": {
        "timeframe": "1m",
        "open_price": dec(100),
        "high_price": dec(100),
        "low_price": dec(100),
        "close_price": dec(100),
        "volume": dec(1),
        "quote_volume": dec(100),
    },
    "events": {},
}

_CLASSES: dict[str, type] = {
    "ticker": TickerData,
    "trade": TradeData,
    "orderbook": OrderbookData,
    "candle": CandleData,
    "events": ConnectionEvent,
}

# exchange-time fields, filled from received_ns unless given
_TIME_FIELDS = {
    "ticker": ("timestamp", "trade_timestamp"),
    "trade": ("trade_timestamp",),
    "orderbook": ("timestamp",),
    "candle": ("timestamp", "open_time"),
    "events": (),
}


class Synth:
    """Collects the records of one session, then writes them with ``write_recording``."""

    def __init__(self, root: Path, session_id: str = "s1") -> None:
        self.root = root
        self.session_id = session_id
        self.records: list[Any] = []

    def add(self, dataset: str, *, received_ns: int, **values: Any) -> Any:
        """Add one record of ``dataset`` (``rest_*`` for a REST reference snapshot)."""
        base = dataset.removeprefix("rest_")
        rest = dataset != base
        fields: dict[str, Any] = {
            "source": "rest" if rest else "websocket",
            "received_ns": received_ns,
            **_DEFAULTS[base],
        }
        for name in _TIME_FIELDS[base]:
            fields[name] = at(received_ns)
        if base == "events":
            fields["kind"] = EventKind(values.pop("kind"))
        request_start_ns = values.pop("request_start_ns", received_ns - 2 * MS)
        fields.update(values)
        record = _CLASSES[base](**fields)
        if rest:
            record = RestSnapshot(
                record=record, request_start_ns=request_start_ns, request_end_ns=received_ns
            )
        self.records.append(record)
        return record

    def write(self, *, by_receive_time: bool = False) -> Path:
        """Write the collected records as one session, forget them, and return the root.

        ``by_receive_time`` numbers them in receive-time order (stable), as a live recorder
        would deliver records that arrived late; otherwise in the order they were added.
        """
        if by_receive_time:
            self.records.sort(key=lambda r: getattr(r, "record", r).received_ns)
        write_recording(self.root, self.records, session_id=self.session_id)
        self.records = []
        return self.root
