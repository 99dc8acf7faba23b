"""REST/WebSocket consistency: the ``consistency`` section of the checks.

The SQL is in ``consistency.sql`` beside this module; every statement there is a view of the
opened :class:`~analytics.recording.Recording`:

- tickers: each REST ticker against the WebSocket ticker in force at the same exchange time
  (ASOF join), field by field (``ticker_checks``, ``ticker_comparisons``);
- orderbooks: each REST orderbook against the WebSocket orderbook in force, level by level
  (``orderbook_checks``, ``orderbook_agreement_by_level``);
- staleness: a REST ticker or orderbook older than a WebSocket state received before its
  request was sent is stale (``staleness``);
- trades: REST trades against streamed trades by ``(symbol, sequential_id)``, strictly inside
  the exchange-time interval each REST answer and the stream both covered
  (``rest_trades_compared``, ``trade_missing_runs``, ``stream_trades_unlisted``);
- candles: closed REST candles against candles rebuilt from the recorded trades
  (``candle_checks``).
"""

from __future__ import annotations

from typing import Any, Final

from analytics.recording import Recording
from analytics.timefmt import iso

__all__ = ["CANDLE_FIELDS", "TICKER_FIELDS", "consistency_section", "rate"]

TICKER_FIELDS: Final = (
    "current_price",
    "change_rate",
    "change_amount",
    "volume_24h",
    "high_24h",
    "low_24h",
    "prev_closing_price",
    "opening_price",
    "change",
    "trade_volume",
    "trade_timestamp",
    "acc_trade_volume",
    "acc_trade_price",
    "acc_trade_price_24h",
    "highest_52_week_price",
    "lowest_52_week_price",
)
"""The ticker fields both channels carry, compared by ``ticker_comparisons``."""

CANDLE_FIELDS: Final = (
    "open_price",
    "high_price",
    "low_price",
    "close_price",
    "volume",
    "quote_volume",
)
"""The candle fields compared by ``candle_checks``."""


def rate(part: int, whole: int) -> float | None:
    """Return ``part / whole`` rounded to 6 places, or ``None`` when nothing was compared."""
    return round(part / whole, 6) if whole else None


def consistency_section(recording: Recording, *, limit: int) -> dict[str, Any]:
    """Return the ``consistency`` section of the checks (shape: ``check_schema.json``),
    listing at most ``limit`` runs of missing trades."""
    ticker = recording.one("ticker_summary")
    by_field = {
        row["field"]: row["mismatches"] for row in recording.rows("ticker_agreement_by_field")
    }
    orderbook = recording.one("orderbook_summary")
    trade = recording.one("trade_summary")
    runs = recording.rows("trade_missing_runs", order="first_time, symbol", limit=limit)
    candle = recording.one("candle_summary")
    candle_fields = {
        row["field"]: row["mismatches"] for row in recording.rows("candle_mismatches_by_field")
    }
    return {
        "ticker": {
            **ticker,
            "agreement_rate": rate(ticker["agreed"], ticker["compared"]),
            "mismatches": ticker["compared"] - ticker["agreed"],
            "mismatches_by_field": {name: by_field.get(name, 0) for name in TICKER_FIELDS},
        },
        "orderbook": {
            **orderbook,
            "agreement_rate": rate(orderbook["agreed"], orderbook["compared"]),
            "mismatches": orderbook["compared"] - orderbook["agreed"],
            "level_agreement_rate": rate(orderbook["levels_agreed"], orderbook["levels_compared"]),
        },
        "trade": {
            **trade,
            "agreement_rate": rate(
                trade["compared"] - trade["missing_from_stream"] - trade["mismatched"],
                trade["compared"],
            ),
            "missing_runs": [
                {
                    "symbol": run["symbol"],
                    "first_time": iso(run["first_time"]),
                    "last_time": iso(run["last_time"]),
                    "trades": run["trades"],
                }
                for run in runs
            ],
        },
        "candle": {
            **candle,
            "agreement_rate": rate(candle["agreed"], candle["compared"]),
            "mismatches": candle["compared"] - candle["agreed"],
            "mismatches_by_field": {name: candle_fields.get(name, 0) for name in CANDLE_FIELDS},
        },
    }
