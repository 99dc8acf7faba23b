"""analytics: feed quality over recordings, as DuckDB SQL over the Parquet files in place.

Open a recording, read measures, or run every check::

    from analytics import Recording, Selection, run_checks

    with Recording(Path("data"), Selection(symbols=("KRW-BTC",))) as recording:
        late = recording.frame("latency_by_channel")      # a polars DataFrame
        checks = run_checks(recording)                     # the `tape check --json` object

Every dataset of the recording is a view (``trade``, ``rest_ticker``, ``events``, ...) and
every measure a named SQL statement installed as a view (listed by ``Recording.measures``),
from ``consistency.sql``, ``latency.sql``, ``gaps.sql`` and ``integrity.sql`` beside their
modules. :func:`render_report` writes the self-contained HTML report.
"""

from __future__ import annotations

from analytics.checks import CHECKS_SCHEMA_VERSION, DEFAULT_LIMIT, check_schema, run_checks
from analytics.errors import (
    AnalyticsError,
    BadThreshold,
    NotARecording,
    RecordingChanged,
    UnreadableRecording,
)
from analytics.queries import NamedQuery
from analytics.recording import MeasureConfig, Recording, Selection, read_consistently
from analytics.thresholds import Breach, Threshold, breaches, metric_paths

__all__ = [
    "CHECKS_SCHEMA_VERSION",
    "DEFAULT_LIMIT",
    "AnalyticsError",
    "BadThreshold",
    "Breach",
    "MeasureConfig",
    "NamedQuery",
    "NotARecording",
    "Recording",
    "RecordingChanged",
    "Selection",
    "Threshold",
    "UnreadableRecording",
    "breaches",
    "check_schema",
    "metric_paths",
    "read_consistently",
    "run_checks",
]
