"""``tape report``: write the self-contained HTML report of a recording."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import click

from analytics import AnalyticsError, Recording, read_consistently, run_checks
from analytics.report import render_report
from analytics.summary import findings
from tape.check_cmd import build_config, build_selection, measure_options
from tape.timeparse import TIME


@measure_options
@click.command("report")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=Path("report.html"),
    show_default=True,
    help="Where to write the HTML file.",
)
@click.option("--symbols", help="Comma-separated symbols to report on, e.g. KRW-BTC,KRW-ETH.")
@click.option("--from", "start", type=TIME, help="Start of the window (receive time, ISO-8601).")
@click.option("--to", "end", type=TIME, help="End of the window, exclusive (ISO-8601).")
def report(
    directory: Path,
    output: Path,
    symbols: str | None,
    start: datetime | None,
    end: datetime | None,
    late_after: float,
    silent_after: float,
) -> None:
    """Write the feed-quality report of the recording in DIRECTORY to one HTML file.

    The file holds everything inline (charts are SVG): open it in any browser, offline.
    """
    selection = build_selection(symbols, start, end)

    def reported() -> tuple[dict[str, Any], str]:
        with Recording(directory, selection, build_config(late_after, silent_after)) as recording:
            checks = run_checks(recording)
            return checks, render_report(recording, checks)

    try:
        checks, page = read_consistently(reported)
    except AnalyticsError as exc:
        raise click.ClickException(str(exc)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(page, encoding="utf-8")
    partial.replace(output)
    found = findings(checks)
    verdict = f"{len(found)} problems found" if found else "no problem found"
    click.echo(f"tape report: wrote {output} ({len(page) // 1024} KiB; {verdict})")
