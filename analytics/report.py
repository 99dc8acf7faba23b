"""The HTML report: one self-contained file with the summary and the charts.

:func:`render_report` returns the page as a string (the caller writes it). Charts are SVG
drawn here in Python (:mod:`analytics.svg`); the page loads nothing from anywhere (its
Content-Security-Policy forbids it) and embeds the checks object as JSON. Series come from
``report.sql`` beside this module, in time buckets sized to the recording's span.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from importlib import resources
from string import Template
from typing import Any, Final

from analytics.checks import run_checks
from analytics.latency import CHANNELS
from analytics.recording import Recording
from analytics.summary import findings, summary_lines
from analytics.svg import PALETTE, Series, Span, bar_chart, line_chart
from analytics.timefmt import iso_ns

__all__ = ["bucket_ns_for", "render_report"]

_BUCKETS_S: Final = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)
_COLORS: Final = dict(zip(CHANNELS, PALETTE, strict=False))
_SILENCE: Final = "#c23b3b"
_OUTAGE: Final = "#d9a300"


def bucket_ns_for(span_ns: int, points: int = 120) -> int:
    """Return a round bucket size (ns) that cuts ``span_ns`` into at most ``points`` buckets."""
    for seconds in _BUCKETS_S:
        if seconds * 1_000_000_000 * points >= span_ns:
            return seconds * 1_000_000_000
    return -(-span_ns // points)


def _clock(first_ns: int) -> Any:
    def fmt(x: float) -> str:
        moment = datetime.fromtimestamp(x / 1e9, tz=UTC)
        same_day = moment.date() == datetime.fromtimestamp(first_ns / 1e9, tz=UTC).date()
        return moment.strftime("%H:%M:%S" if same_day else "%m-%d %H:%M")

    return fmt


def _by_channel(rows: Sequence[Mapping[str, Any]], value: str) -> dict[str, dict[int, Any]]:
    out: dict[str, dict[int, Any]] = defaultdict(dict)
    for row in rows:
        out[row["channel"]][row["bucket"]] = row[value]
    return out


def _series(
    data: Mapping[str, Mapping[int, Any]], buckets: Sequence[int], *, fill: float | None
) -> list[Series]:
    return [
        Series(channel, _COLORS[channel], [(b, data[channel].get(b, fill)) for b in buckets])
        for channel in CHANNELS
        if channel in data
    ]


def _histogram_label(bin_: int) -> str:
    if bin_ < 0:
        return "≤0"
    limit = 2**bin_
    return f"≤{limit / 1000:.0f}s" if limit >= 1000 else f"≤{limit}"


def _latency_charts(recording: Recording) -> list[str]:
    bins: dict[str, dict[int, int]] = defaultdict(dict)
    for row in recording.rows("latency_histogram"):
        bins[row["channel"]][row["bin"]] = row["rows"]
    charts = []
    for channel in CHANNELS:
        if channel not in bins:
            continue
        present = sorted(bins[channel])
        span = range(min(present[0], 0), max(present[-1], 3) + 1)
        charts.append(
            bar_chart(
                f"latency-{channel}",
                f"{channel}: records per latency bin (ms)",
                [(_histogram_label(b), bins[channel].get(b, 0)) for b in span],
                color=_COLORS[channel],
            )
        )
    return charts or [bar_chart("latency-none", "latency: no WebSocket record", [])]


def _gap_spans(recording: Recording) -> list[Span]:
    spans = [
        Span(row["start_ns"], row["end_ns"], _SILENCE, f"silence: {row['dataset']} {row['symbol']}")
        for row in recording.rows("silences", order="start_ns")
    ]
    for row in recording.rows("events_ledger", order="seq"):
        if row["kind"] in {"connected", "gap_repaired"}:
            continue
        start = row["start_ns"] if row["start_ns"] is not None else row["received_ns"]
        end = row["end_ns"] if row["end_ns"] is not None else start
        spans.append(Span(start, end, _OUTAGE, f"event: {row['kind']} {row['channel'] or ''}"))
    return spans


def render_report(
    recording: Recording, checks: Mapping[str, Any] | None = None, *, title: str | None = None
) -> str:
    """Return the HTML report of ``recording`` (``checks`` as :func:`run_checks` returns them;
    computed when not given)."""
    checks = checks if checks is not None else run_checks(recording)
    span = recording.one("stream_span")
    first_ns = span["first_ns"] or 0
    last_ns = span["last_ns"] or first_ns
    bucket = bucket_ns_for(max(last_ns - first_ns, 1))
    recording.set_bucket_ns(bucket)
    buckets = list(range(first_ns // bucket * bucket, last_ns + 1, bucket)) or [0]
    x_range = (float(buckets[0]), float(buckets[-1] + bucket))
    fmt = _clock(first_ns)
    per_s = 1e9 / bucket
    rate = _by_channel(recording.rows("message_rate"), "rows")
    rate_per_s = {ch: {b: n * per_s for b, n in values.items()} for ch, values in rate.items()}
    late = _by_channel(recording.rows("latency_over_time"), "max_ms")
    agreement: dict[str, dict[int, float]] = defaultdict(dict)
    for row in recording.rows("consistency_over_time"):
        if row["compared"]:
            agreement[row["channel"]][row["bucket"]] = 100.0 * row["agreed"] / row["compared"]
    spans = _gap_spans(recording)
    rate_charts = [
        line_chart(
            "message-rate",
            "stream records per second, with silences and connection events",
            _series(rate_per_s, buckets, fill=0.0),
            x_range=x_range,
            x_format=fmt,
            spans=spans,
        ),
        line_chart(
            "latency-over-time",
            "largest WebSocket latency per bucket (ms)",
            _series(late, buckets, fill=None),
            x_range=x_range,
            x_format=fmt,
            spans=spans,
        ),
    ]
    consistency_chart = line_chart(
        "consistency",
        "REST references agreeing with the streams (%)",
        _series(agreement, buckets, fill=None),
        x_range=x_range,
        x_format=fmt,
        y_format=lambda v: f"{v:.0f} %",
        y_range=(0.0, 100.0),
    )
    found = findings(checks)
    if found:
        items = "".join(f"<li>{escape(line)}</li>" for line in found)
        verdict = (
            f'<div class="verdict bad"><strong>{len(found)} problem'
            f"{'s' if len(found) != 1 else ''} found</strong><ul>{items}</ul></div>"
        )
    else:
        verdict = '<div class="verdict ok"><strong>No problem found.</strong></div>'
    summary = "".join(
        f"<h3>{escape(heading)}</h3><pre>{escape(chr(10).join(lines) or 'none')}</pre>"
        for heading, lines in summary_lines(checks)
    )
    latency_charts = _latency_charts(recording)
    charts = len(latency_charts) + len(rate_charts) + 1
    meta = (
        f"{escape(str(recording.root))} · {span['rows']:,} stream records · "
        f"{iso_ns(span['first_ns']) or '-'} .. {iso_ns(span['last_ns']) or '-'} · "
        f"symbols: {escape(', '.join(recording.selection.symbols) or 'all')}"
    )
    template = Template(resources.files("analytics").joinpath("report.html").read_text("utf-8"))
    return template.substitute(
        title=escape(title or f"tape report: {recording.root.name or recording.root}"),
        meta=meta,
        verdict=verdict,
        chart_count=charts,
        latency_charts="".join(latency_charts),
        rate_charts="".join(rate_charts),
        consistency_charts=consistency_chart,
        summary=summary,
        checks_json=json.dumps(checks).replace("</", "<\\/"),
    )
