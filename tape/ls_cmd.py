"""``tape ls``: what a recording holds (datasets, dates, symbols, rows) and its open gaps."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from recorder.inventory import open_gaps, partitions, summarize
from recorder.layout import MANIFEST_FILE
from recorder.manifest import read_sessions


def human_size(size_bytes: int) -> str:
    """Return ``size_bytes`` as a short human figure, e.g. ``1.2 MB``."""
    value = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError


def _time(ns: int | None) -> str:
    if ns is None:
        return "?"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def _symbols(symbols: tuple[str, ...], limit: int = 4) -> str:
    if not symbols:
        return "-"
    shown = ",".join(symbols[:limit])
    return f"{len(symbols)} ({shown}{',...' if len(symbols) > limit else ''})"


@click.command("ls")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("data"))
@click.option("-l", "--long", "long_", is_flag=True, help="One line per partition.")
def ls(directory: Path, long_: bool) -> None:
    """List a recording's datasets, dates, symbols, row counts and open gaps."""
    if not (directory / MANIFEST_FILE).is_file():
        raise click.ClickException(
            f"{directory} is not a tape recording (it has no {MANIFEST_FILE}): "
            "give the directory `tape record --out` wrote"
        )
    infos = partitions(directory)
    sessions = read_sessions(directory)
    last = sessions[-1] if sessions else None
    click.echo(
        f"{directory}: {len(sessions)} session(s)"
        + (f", last {last.session_id} ({last.status})" if last else "")
    )
    if long_:
        click.echo(f"{'dataset':<15} {'date':<10} {'symbol':<14} {'files':>6} {'rows':>12} size")
        for info in infos:
            click.echo(
                f"{info.dataset:<15} {info.day:<10} {info.symbol or '-':<14} {info.files:>6} "
                f"{info.rows:>12} {human_size(info.size_bytes)}"
            )
    else:
        click.echo(f"{'dataset':<15} {'dates':<24} {'files':>6} {'rows':>12} {'size':>9}  symbols")
        for summary in summarize(infos):
            days = (
                summary.days[0]
                if len(summary.days) == 1
                else (f"{summary.days[0]}..{summary.days[-1]}")
            )
            click.echo(
                f"{summary.dataset:<15} {days:<24} {summary.files:>6} {summary.rows:>12} "
                f"{human_size(summary.size_bytes):>9}  {_symbols(summary.symbols)}"
            )
    if not infos:
        click.echo("(no data yet)")
    gaps = open_gaps(directory)
    click.echo(f"open gaps: {len(gaps)}")
    for gap in gaps:
        missing = f", {gap.rows_missing} rows missing" if gap.rows_missing is not None else ""
        click.echo(
            f"  {gap.kind:<16} {gap.channel or '-':<9} {_time(gap.start_ns)} .. "
            f"{_time(gap.end_ns)}  {_symbols(gap.symbols)}  {gap.cause}{missing}"
        )
        if gap.kind == "gap_detected" and gap.channel == "trade" and gap.exchange_start:
            since = gap.exchange_start.astimezone(UTC).isoformat(timespec="milliseconds")
            click.echo(
                f"    trades since {since} not confirmed complete; the next `tape record` "
                "of this symbol here backfills them (within Upbit's 7 days)"
            )
