"""The checks in words: the findings (what is wrong) and a readable summary.

``tape check`` prints :func:`summary_lines`; the HTML report shows the same sections. A
finding is a problem a capture job should look at; figures that are only informative
(REST snapshots taken before the first WebSocket state, REST rows of a fallback) are not
findings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from analytics.latency import CHANNELS

__all__ = ["SECTION_TITLES", "findings", "summary_lines"]

_ROUTINE_EVENTS: Final = frozenset({"connected", "source_switched"})

SECTION_TITLES: Final = {
    "consistency": "Consistency: does the WebSocket agree with REST",
    "latency": "Latency: receive time minus exchange time (WebSocket records)",
    "gaps": "Gaps: what went missing, and what was repaired",
    "integrity": "Integrity: records that cannot be right",
}


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} ms" if abs(value) >= 10 else f"{value:.1f} ms"


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f} %"


def _nonzero(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items() if count)


def findings(checks: Mapping[str, Any]) -> list[str]:
    """Return one sentence per problem the checks found (empty: no problem found)."""
    found: list[str] = []
    consistency, latency = checks["consistency"], checks["latency"]
    gaps, integrity = checks["gaps"], checks["integrity"]
    ticker, book = consistency["ticker"], consistency["orderbook"]
    trade, candle = consistency["trade"], consistency["candle"]
    if ticker["mismatches"]:
        found.append(
            f"{ticker['mismatches']} REST tickers disagree with the WebSocket "
            f"({_nonzero(ticker['mismatches_by_field'])})"
        )
    for name, part in (("tickers", ticker), ("orderbooks", book)):
        if part["stale"]:
            found.append(
                f"{part['stale']} REST {name} were stale (up to "
                f"{_ms(part['max_stale_ms'])} behind the WebSocket)"
            )
    if book["mismatches"]:
        found.append(f"{book['mismatches']} REST orderbooks disagree with the WebSocket")
    if trade["missing_from_stream"]:
        found.append(
            f"{trade['missing_from_stream']} trades REST listed are missing from the stream"
        )
    if trade["missing_from_rest"]:
        found.append(f"{trade['missing_from_rest']} streamed trades were missing from REST answers")
    if trade["mismatched"]:
        found.append(f"{trade['mismatched']} trades differ between REST and the stream")
    if candle["mismatches"]:
        found.append(f"{candle['mismatches']} REST candles differ from the candles the trades make")
    for channel in CHANNELS:
        part = latency[channel]
        if part["late"]:
            found.append(f"{part['late']} {channel} records arrived late")
        if part["negative"]:
            found.append(
                f"{part['negative']} {channel} records have a negative latency: the exchange's "
                "clock ran ahead of ours (a clock problem)"
            )
    events = gaps["events"]
    for kind in ("disconnected", "gap_unrepaired", "records_dropped"):
        if events[kind]:
            found.append(f"{events[kind]} {kind.replace('_', ' ')} events in the ledger")
    if gaps["silences"]:
        found.append(
            f"{gaps['silences']} silent periods (longest {gaps['longest_silence_s']:.1f} s)"
        )
    if integrity["problems"]:
        named = {k: v for k, v in integrity.items() if k not in {"problems"}}
        found.append(f"{integrity['problems']} integrity problems ({_nonzero(named)})")
    return found


def _consistency(part: Mapping[str, Any]) -> list[str]:
    ticker, book, trade, candle = part["ticker"], part["orderbook"], part["trade"], part["candle"]
    lines = [
        f"tickers     {ticker['compared']} REST tickers compared, {ticker['agreed']} agree "
        f"({_pct(ticker['agreement_rate'])}); {ticker['stale']} stale; "
        f"{ticker['unmatched']} before any WebSocket ticker, {ticker['after_stream']} after "
        "its last",
    ]
    if ticker["mismatches"]:
        lines.append(f"            fields that differ: {_nonzero(ticker['mismatches_by_field'])}")
    lines.append(
        f"orderbooks  {book['compared']} REST orderbooks compared, {book['agreed']} agree on "
        f"every level (levels: {_pct(book['level_agreement_rate'])}); {book['stale']} stale; "
        f"{book['unmatched']} before any WebSocket orderbook, {book['after_stream']} after its last"
    )
    lines.append(
        f"trades      {trade['compared']} REST trades compared over {trade['compared_answers']} "
        f"answers: {trade['missing_from_stream']} missing from the stream, "
        f"{trade['missing_from_rest']} missing from REST, {trade['mismatched']} differ"
    )
    lines += [
        f"            missing {run['symbol']} {run['first_time']} .. {run['last_time']}: "
        f"{run['trades']} trades"
        for run in trade["missing_runs"][:5]
    ]
    lines.append(
        f"candles     {candle['compared']} REST candles compared with candles rebuilt from "
        f"trades, {candle['agreed']} agree ({_pct(candle['agreement_rate'])})"
    )
    return lines


def _latency(part: Mapping[str, Any]) -> list[str]:
    lines = [
        f"{'channel':<11}{'rows':>9}{'p50':>11}{'p90':>11}{'p99':>11}{'max':>11}"
        f"{'late':>7}{'negative':>9}"
    ]
    for channel in CHANNELS:
        row = part[channel]
        lines.append(
            f"{channel:<11}{row['rows']:>9,}{_ms(row['p50_ms']):>11}{_ms(row['p90_ms']):>11}"
            f"{_ms(row['p99_ms']):>11}{_ms(row['max_ms']):>11}{row['late']:>7}"
            f"{row['negative']:>9}"
        )
    trips = [
        f"{channel} p50 {_ms(row['p50_ms'])} (max {_ms(row['max_ms'])})"
        for channel, row in part["round_trip"].items()
        if row["requests"]
    ]
    lines.append("REST round trips: " + ("; ".join(trips) if trips else "no REST request"))
    fresh = [
        f"{channel} by {_ms(row['p50_ms'])} (p50), REST first {row['rest_first']} times"
        for channel, row in part["freshness"].items()
        if row["compared"]
    ]
    if fresh:
        lines.append("WebSocket ahead of REST: " + "; ".join(fresh))
    if part["clock_problem"]:
        lines.append(
            f"CLOCK PROBLEM: {part['negative']} records arrived before their exchange time"
        )
    lines += [
        f"{e['kind']:<9}{e['channel']} {e['symbol']} {e['start']} .. {e['end']}: "
        f"{e['rows']} records, worst {_ms(e['max_ms'] if e['kind'] == 'late' else e['min_ms'])}"
        for e in part["excursions"][:10]
    ]
    return lines


def _gaps(part: Mapping[str, Any]) -> list[str]:
    lines = [
        "events      "
        + (_nonzero(part["events"]) or "none")
        + f"; rows recovered {part['rows_recovered']}, known missing {part['rows_missing']}",
    ]
    # connections opening and sources switching are routine: list what went wrong
    notable = [e for e in part["ledger"] if e["kind"] not in _ROUTINE_EVENTS]
    lines += [
        f"            {e['at']} {e['kind']} {e['channel'] or ''} {' '.join(e['symbols'])} "
        f"{e['cause']}".rstrip()
        for e in notable[:10]
    ]
    lines.append(
        f"silences    {part['silences']}"
        + (f" (longest {part['longest_silence_s']:.1f} s)" if part["silences"] else "")
    )
    lines += [
        f"            {s['dataset']} {s['symbol']} {s['start']} .. {s['end']} "
        f"({s['silent_s']:.1f} s)"
        for s in part["silent_periods"][:10]
    ]
    fallback = _nonzero(part["fallback_rows"])
    lines.append(f"from REST   {fallback or 'no stream row came from REST'}")
    lines.append(f"trades missing (REST listed, stream lacks): {part['trades_missing']}")
    return lines


def _integrity(part: Mapping[str, Any]) -> list[str]:
    named = {k: v for k, v in part.items() if k != "problems"}
    return [_nonzero(named) or "no problem found"]


def summary_lines(checks: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """Return the readable summary as (section title, lines) pairs, the findings last."""
    found = findings(checks)
    return [
        (SECTION_TITLES["consistency"], _consistency(checks["consistency"])),
        (SECTION_TITLES["latency"], _latency(checks["latency"])),
        (SECTION_TITLES["gaps"], _gaps(checks["gaps"])),
        (SECTION_TITLES["integrity"], _integrity(checks["integrity"])),
        (
            f"Findings: {len(found)} problem{'s' if len(found) != 1 else ''}"
            if found
            else "Findings: no problem found",
            found,
        ),
    ]
