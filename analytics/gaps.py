"""Gaps: the ``gaps`` section of the checks.

The SQL is in ``gaps.sql`` beside this module. Two sources: the ``events`` ledger the
backbone wrote (disconnects, source switches, gaps detected, repaired or not, records
dropped; ``events_ledger``, ``events_by_kind``), and the data itself: a dataset is silent
for a symbol when no record arrived for longer than its usual rhythm (``stream_rhythm``,
``silences``; see :class:`~analytics.recording.MeasureConfig`).
"""

from __future__ import annotations

from typing import Any, Final

from analytics.recording import Recording
from analytics.timefmt import iso, iso_ns

__all__ = ["EVENT_KINDS", "gaps_section"]

EVENT_KINDS: Final = (
    "connected",
    "disconnected",
    "reconnected",
    "source_switched",
    "gap_detected",
    "gap_repaired",
    "gap_unrepaired",
    "records_dropped",
)
"""The event kinds of the recording contract (``backbone.models.EventKind``'s values)."""


def gaps_section(
    recording: Recording, *, limit: int, trades_missing: int, fallback_rows: dict[str, int]
) -> dict[str, Any]:
    """Return the ``gaps`` section of the checks (shape: ``check_schema.json``), listing at most
    ``limit`` ledger events and silent periods.

    ``trades_missing`` is the consistency section's count of REST-listed trades the stream
    lacks; ``fallback_rows`` the stream rows per channel that REST delivered.
    """
    kinds = {kind: 0 for kind in EVENT_KINDS}
    recovered = missing = 0
    for row in recording.rows("events_by_kind"):
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + row["events"]
        recovered += row["rows_recovered"]
        missing += row["rows_missing"]
    listed = recording.rows("silence_list", order="start_ns, dataset, symbol", limit=max(limit, 1))
    silences = listed[0]["silences"] if listed else 0
    longest = listed[0]["longest_silence_s"] if listed else None
    return {
        "trades_missing": trades_missing,
        "events": kinds,
        "rows_recovered": int(recovered),
        "rows_missing": int(missing),
        "ledger": [
            {
                "kind": row["kind"],
                "source": row["source"],
                "channel": row["channel"],
                "symbols": list(row["symbols"]),
                "at": iso_ns(row["received_ns"]),
                "start": iso_ns(row["start_ns"]),
                "end": iso_ns(row["end_ns"]),
                "duration_s": row["duration_s"],
                "exchange_start": iso(row["exchange_start"]),
                "exchange_end": iso(row["exchange_end"]),
                "cause": row["cause"],
                "rows_recovered": row["rows_recovered"],
                "rows_missing": row["rows_missing"],
            }
            for row in recording.rows("events_ledger", order="session_id, seq", limit=limit)
        ],
        "silences": silences,
        "longest_silence_s": longest,
        "silent_periods": [
            {
                "dataset": row["dataset"],
                "symbol": row["symbol"],
                "start": iso_ns(row["start_ns"]),
                "end": iso_ns(row["end_ns"]),
                "silent_s": row["silent_ms"] / 1e3,
                "threshold_s": row["threshold_ms"] / 1e3,
            }
            for row in listed[:limit]
        ],
        "fallback_rows": fallback_rows,
    }
