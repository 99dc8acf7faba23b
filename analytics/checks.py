"""The checks of ``tape check``: every measure summed up in one JSON-ready object.

Its shape is documented by the JSON Schema ``check_schema.json`` beside this module
(:func:`check_schema`); top-level keys ``schema_version``, ``consistency``, ``latency``,
``gaps`` and ``integrity``. Times are ISO-8601 UTC strings, durations carry their unit in
their name, counts are integers, rates are in [0, 1] and ``null`` when nothing was compared.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Final

from analytics.consistency import consistency_section
from analytics.gaps import gaps_section
from analytics.integrity import integrity_section
from analytics.latency import CHANNELS, latency_section
from analytics.recording import Recording

__all__ = [
    "CHECKS_SCHEMA_VERSION",
    "DEFAULT_LIMIT",
    "SHARED_MEASURES",
    "check_schema",
    "run_checks",
]

CHECKS_SCHEMA_VERSION: Final = 2
"""The version of the checks' JSON shape; bumped on any change to a documented path."""

DEFAULT_LIMIT: Final = 100
"""How many items the lists (ledger, silences, excursions, missing runs) hold at most."""

SHARED_MEASURES: Final = (
    "trade_stream_spans",
    "trade_windows",
    "rest_trades_compared",
    "rest_trade_keys",
    "staleness",
    "ticker_checks",
    "candle_checks",
    "latency_groups",
    "stream_order_summary",
    "silences",
)
"""Intermediate measures that several parts of the checks read: computed once per run
(:meth:`Recording.kept`), in this order. Each is small beside the datasets."""


@cache
def check_schema() -> dict[str, Any]:
    """Return the JSON Schema of :func:`run_checks`' result (do not mutate it)."""
    text = resources.files("analytics").joinpath("check_schema.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def run_checks(recording: Recording, *, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
    """Run every measure over ``recording`` and return the checks object.

    Lists are cut to ``limit`` items (the counts beside them are complete).
    """
    if limit < 0:
        raise ValueError("limit must not be negative")
    with recording.kept(*SHARED_MEASURES):
        return _checks(recording, limit)


def _checks(recording: Recording, limit: int) -> dict[str, Any]:
    consistency = consistency_section(recording, limit=limit)
    by_channel = recording.rows("latency_by_channel")
    latency = latency_section(recording, limit=limit, by_channel_rows=by_channel)
    fallback = {channel: 0 for channel in CHANNELS}
    for row in by_channel:
        if row["source"] == "rest":
            fallback[row["channel"]] = row["rows"]
    gaps = gaps_section(
        recording,
        limit=limit,
        trades_missing=consistency["trade"]["missing_from_stream"],
        fallback_rows=fallback,
    )
    return {
        "schema_version": CHECKS_SCHEMA_VERSION,
        "consistency": consistency,
        "latency": latency,
        "gaps": gaps,
        "integrity": integrity_section(recording),
    }
