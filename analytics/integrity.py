"""Integrity: the ``integrity`` section of the checks.

The SQL is in ``integrity.sql`` beside this module: crossed, unsorted or malformed books and
book totals that differ from the sum of the levels (``book_checks``), duplicate trade keys
(``trade_duplicates``), non-positive prices and sizes or negative volumes
(``value_checks``), WebSocket records whose exchange time runs backwards in delivery order
(``out_of_order``), and ``seq`` numbers used twice in a session (``seq_duplicates``).
"""

from __future__ import annotations

from typing import Any

from analytics.recording import Recording

__all__ = ["integrity_section"]


def integrity_section(recording: Recording) -> dict[str, Any]:
    """Return the ``integrity`` section of the checks (shape: ``check_schema.json``)."""
    counts = {name: int(value) for name, value in recording.one("integrity_summary").items()}
    # conflicting duplicates are a subset of the duplicate trades: counted once
    problems = sum(value for name, value in counts.items() if name != "conflicting_duplicates")
    return {**counts, "problems": problems}
