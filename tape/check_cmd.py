"""``tape check``: feed-quality checks over a recording, as a summary or one JSON object."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from analytics import (
    DEFAULT_LIMIT,
    AnalyticsError,
    BadThreshold,
    MeasureConfig,
    Recording,
    Selection,
    Threshold,
    breaches,
    read_consistently,
    run_checks,
)
from analytics.summary import summary_lines
from tape.timeparse import DURATION, TIME

BREACH_EXIT_CODE = 3
"""The exit status when a ``--fail-on`` threshold trips (1: error, 2: usage)."""


def parse_symbols(text: str | None) -> tuple[str, ...]:
    """Return the symbols of a ``--symbols`` value (comma-separated, upper-cased)."""
    if not text:
        return ()
    return tuple(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))


def build_selection(symbols: str | None, start: datetime | None, end: datetime | None) -> Selection:
    """Return the selection the ``--symbols/--from/--to`` flags describe.

    Raises:
        click.BadParameter: the window is empty or reversed.
    """
    try:
        return Selection(symbols=parse_symbols(symbols), start=start, end=end)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--from' / '--to'") from None


def measure_options(command: click.Command) -> click.Command:
    """Add ``--late-after`` and ``--silent-after`` (the floors of the late and silence
    thresholds) to ``command``."""
    defaults = MeasureConfig()
    for option in (
        click.Option(
            ["--silent-after"],
            type=DURATION,
            default=defaults.silence_floor_ms / 1000,
            show_default=f"{defaults.silence_floor_ms / 1000:g}s",
            help="A symbol is silent after at least this long without a record (and "
            f"{defaults.silence_factor:g} times its usual gap).",
        ),
        click.Option(
            ["--late-after"],
            type=DURATION,
            default=defaults.late_floor_ms / 1000,
            show_default=f"{defaults.late_floor_ms / 1000:g}s",
            help="A WebSocket record is late after at least this long (and "
            f"{defaults.late_factor:g} times its channel's median latency).",
        ),
    ):
        command.params.insert(len(command.params) - 1, option)
    return command


def build_config(late_after: float, silent_after: float) -> MeasureConfig:
    """Return the measure settings of ``--late-after`` / ``--silent-after`` (seconds)."""
    return MeasureConfig(late_floor_ms=late_after * 1000, silence_floor_ms=silent_after * 1000)


def _thresholds(texts: tuple[str, ...]) -> list[Threshold]:
    try:
        return [Threshold.parse(text) for text in texts]
    except BadThreshold as exc:
        raise click.BadParameter(str(exc), param_hint="'--fail-on'") from None


def print_summary(checks: dict[str, object], root: Path, selection: Selection) -> None:
    """Echo the readable summary of ``checks``."""
    if selection.start is None and selection.end is None:
        window = "all times"
    else:
        window = "received " + " .. ".join(
            moment.isoformat() if moment else "open" for moment in (selection.start, selection.end)
        )
    symbols = ", ".join(selection.symbols) or "all symbols"
    click.echo(f"tape check {root} ({symbols}; {window})")
    for title, lines in summary_lines(checks):
        click.echo("")
        click.secho(title, bold=True)
        for line in lines:
            click.echo(f"  {line}")


@measure_options
@click.command("check")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--symbols", help="Comma-separated symbols to check, e.g. KRW-BTC,KRW-ETH.")
@click.option("--from", "start", type=TIME, help="Start of the window (receive time, ISO-8601).")
@click.option("--to", "end", type=TIME, help="End of the window, exclusive (ISO-8601).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@click.option(
    "--fail-on",
    "fail_on",
    multiple=True,
    metavar="'METRIC>VALUE'",
    help="Exit with status 3 when the metric crosses the value (repeatable); OP is one of "
    "> >= < <= ==, METRIC a path of the --json object, e.g. 'gaps.trades_missing>0' or "
    "'latency.trade.p99_ms>500'.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="Most items listed per list (events, silences, excursions, missing trades).",
)
def check(
    directory: Path,
    symbols: str | None,
    start: datetime | None,
    end: datetime | None,
    as_json: bool,
    fail_on: tuple[str, ...],
    limit: int,
    late_after: float,
    silent_after: float,
) -> None:
    """Check the feed quality of the recording in DIRECTORY.

    Compares the WebSocket streams with the REST references, measures latency, finds gaps
    and integrity problems. Times without a zone are UTC. The JSON shape is documented in
    analytics/check_schema.json.
    """
    thresholds = _thresholds(fail_on)
    selection = build_selection(symbols, start, end)

    def checked() -> dict[str, Any]:
        with Recording(directory, selection, config) as recording:
            return run_checks(recording, limit=limit)

    try:
        config = build_config(late_after, silent_after)
        checks = read_consistently(checked)
    except AnalyticsError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(checks, indent=2))
    else:
        print_summary(checks, directory, selection)
    tripped = breaches(checks, thresholds)
    for breach in tripped:
        click.echo(
            f"tape check: threshold tripped: {breach.threshold.text} (value {breach.actual:g})",
            err=True,
        )
    if tripped:
        sys.exit(BREACH_EXIT_CODE)
