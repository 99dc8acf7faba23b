"""Latency: the ``latency`` section of the checks.

The SQL is in ``latency.sql`` beside this module. A record's latency is its local receive
time minus its exchange time, in milliseconds (``stream_latency``); figures are given per
channel for WebSocket records (``latency_by_channel``, ``latency_by_symbol``,
``latency_by_hour`` also hold the REST-sourced records of a fallback, with
``source = 'rest'``). A negative latency is a clock problem (the exchange's clock ahead of
ours) and is counted, never hidden. Episodes of late or negative records are listed as
excursions (``latency_excursions``). REST round trips come from the reference requests'
send and answer times (``rest_round_trip``); freshness is how much sooner the WebSocket
delivered a state REST also returned (``freshness_by_channel``).
"""

from __future__ import annotations

from typing import Any, Final

from analytics.recording import Recording
from analytics.timefmt import iso, iso_ns

__all__ = ["CHANNELS", "FRESHNESS_CHANNELS", "latency_section"]

CHANNELS: Final = ("ticker", "trade", "orderbook", "candle")
"""The stream channels (datasets), in report order."""

FRESHNESS_CHANNELS: Final = ("ticker", "orderbook")
"""The channels whose states REST and the WebSocket both identify by exchange time."""

_FIGURES: Final = ("p50_ms", "p90_ms", "p99_ms", "max_ms", "min_ms")


def _figures(row: dict[str, Any] | None) -> dict[str, Any]:
    return {name: None if row is None else row[name] for name in _FIGURES}


def latency_section(
    recording: Recording, *, limit: int, by_channel_rows: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """Return the ``latency`` section of the checks (shape: ``check_schema.json``), listing at
    most ``limit`` excursions, worst first. ``by_channel_rows`` are the rows of
    ``latency_by_channel`` when the caller has them already."""
    if by_channel_rows is None:
        by_channel_rows = recording.rows("latency_by_channel")
    by_channel = {(row["channel"], row["source"]): row for row in by_channel_rows}
    excursions = recording.rows("latency_excursions", order="rows DESC, start_ns, channel, symbol")
    late = dict.fromkeys(CHANNELS, 0)
    for row in excursions:
        if row["kind"] == "late":
            late[row["channel"]] += row["rows"]
    by_symbol: dict[str, dict[str, Any]] = {name: {} for name in CHANNELS}
    for row in recording.rows("latency_by_symbol", order="symbol"):
        if row["source"] == "websocket":
            by_symbol[row["channel"]][row["symbol"]] = {
                "rows": row["rows"],
                **_figures(row),
                "negative": row["negative"],
            }
    section: dict[str, Any] = {}
    for channel in CHANNELS:
        found = by_channel.get((channel, "websocket"))
        section[channel] = {
            "rows": 0 if found is None else found["rows"],
            **_figures(found),
            "negative": 0 if found is None else found["negative"],
            "late": late[channel],
            "by_symbol": by_symbol[channel],
        }
    trips = {row["channel"]: row for row in recording.rows("rest_round_trip")}
    section["round_trip"] = {
        channel: {
            "requests": trips[channel]["requests"] if channel in trips else 0,
            **{
                name: trips[channel][name] if channel in trips else None
                for name in ("p50_ms", "p90_ms", "p99_ms", "max_ms")
            },
        }
        for channel in CHANNELS
    }
    fresh = {row["channel"]: row for row in recording.rows("freshness_by_channel")}
    section["freshness"] = {
        channel: {
            "compared": fresh[channel]["compared"] if channel in fresh else 0,
            **{
                name: fresh[channel][name] if channel in fresh else None
                for name in ("p50_ms", "p90_ms", "max_ms", "min_ms")
            },
            "rest_first": fresh[channel]["rest_first"] if channel in fresh else 0,
        }
        for channel in FRESHNESS_CHANNELS
    }
    negative = sum(section[channel]["negative"] for channel in CHANNELS)
    section["late"] = sum(section[channel]["late"] for channel in CHANNELS)
    section["negative"] = negative
    section["clock_problem"] = negative > 0
    section["excursions"] = [
        {
            "channel": row["channel"],
            "symbol": row["symbol"],
            "kind": row["kind"],
            "start": iso_ns(row["start_ns"]),
            "end": iso_ns(row["end_ns"]),
            "exchange_start": iso(row["exchange_start"]),
            "exchange_end": iso(row["exchange_end"]),
            "rows": row["rows"],
            "max_ms": row["max_ms"],
            "min_ms": row["min_ms"],
            "threshold_ms": row["threshold_ms"],
        }
        for row in excursions[:limit]
    ]
    return section
