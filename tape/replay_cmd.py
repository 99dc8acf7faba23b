"""``tape replay``: a recording back as JSON lines, in replay order, optionally paced."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn

from replay import ReplayBackbone, json_line, replay_digest
from replay.errors import InvalidReplayArgument, ReplayError
from replay.selection import ns_to_datetime
from tape.timeparse import TIME

_REFRESH_S = 0.1


def _symbols(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [s.strip().upper() for s in text.split(",") if s.strip()] or [""]


def _status(
    progress: Progress, task: TaskID, count: int, began: float, replay: ReplayBackbone
) -> None:
    stats = replay.statistics()
    elapsed = max(time.monotonic() - began, 1e-9)
    clock = "-" if stats.clock_ns is None else ns_to_datetime(stats.clock_ns).isoformat()
    lag = "" if stats.lag_s is None else f"  lag {max(stats.lag_s, 0.0) * 1000:.1f} ms"
    progress.update(
        task, description=f"{count:,} records  {count / elapsed:,.0f}/s  clock {clock}{lag}"
    )


async def _play(
    replay: ReplayBackbone,
    channels: list[str] | None,
    out: TextIO,
    progress: Progress | None,
    paced: bool,
) -> int:
    # Paced output goes out record by record; unpaced output in blocks of 256 lines.
    block = 1 if paced else 256
    count = 0
    began = time.monotonic()
    next_refresh = began + _REFRESH_S
    task = progress.add_task("starting", total=None) if progress is not None else TaskID(0)
    lines: list[str] = []
    async for record in replay.stream_all(channels):
        lines.append(json_line(record))
        count += 1
        if count % block == 0:
            out.write("\n".join(lines) + "\n")
            lines.clear()
            if paced:
                out.flush()
            if progress is not None and time.monotonic() >= next_refresh:
                _status(progress, task, count, began, replay)
                next_refresh = time.monotonic() + _REFRESH_S
    if lines:
        out.write("\n".join(lines) + "\n")
    if progress is not None:
        _status(progress, task, count, began, replay)
    return count


async def _run(
    directory: Path,
    symbols: list[str] | None,
    start: datetime | None,
    end: datetime | None,
    speed: float | None,
    channels: list[str] | None,
    show_progress: bool,
) -> int:
    async with ReplayBackbone(directory, symbols=symbols, start=start, end=end, speed=speed) as rp:
        if not show_progress:
            return await _play(rp, channels, sys.stdout, None, speed is not None)
        console = Console(stderr=True)
        with Progress(
            SpinnerColumn(), TextColumn("{task.description}"), console=console, transient=False
        ) as progress:
            return await _play(rp, channels, sys.stdout, progress, speed is not None)


@click.command("replay")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--symbols", help="Comma-separated symbols to replay, e.g. KRW-BTC,KRW-ETH.")
@click.option("--from", "start", type=TIME, help="Start (receive time, ISO-8601; UTC if no zone).")
@click.option("--to", "end", type=TIME, help="End, exclusive (receive time, ISO-8601).")
@click.option(
    "--speed",
    type=float,
    default=None,
    help="Pace: 1 = as recorded, 10 = ten times faster. Default: as fast as possible.",
)
@click.option(
    "--channels",
    help="Comma-separated channels: ticker, trade, orderbook, candle, events (default: all).",
)
@click.option("--digest", "digest_only", is_flag=True, help="Print only the selection's digest.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress on stderr (default: when stderr is a terminal).",
)
def replay(
    directory: Path,
    symbols: str | None,
    start: datetime | None,
    end: datetime | None,
    speed: float | None,
    channels: str | None,
    digest_only: bool,
    progress: bool | None,
) -> None:
    """Print the records of the recording in DIRECTORY as JSON lines, in replay order.

    Each line is one record: its "type" (ticker, trade, orderbook, candle, event) and its
    fields; decimals are strings, times ISO-8601 UTC. A progress line on stderr shows the
    records per second and the replay clock (and the lag behind schedule with --speed).
    With --digest, print only the SHA-256 digest of the selection (the same on every run
    and machine).
    """
    chosen = _symbols(symbols)
    wanted = [c.strip() for c in channels.split(",")] if channels is not None else None
    try:
        if digest_only:
            click.echo(
                replay_digest(directory, symbols=chosen, start=start, end=end, channels=wanted)
            )
            return
        show = sys.stderr.isatty() if progress is None else progress
        asyncio.run(_run(directory, chosen, start, end, speed, wanted, show))
    except InvalidReplayArgument as exc:
        raise click.UsageError(str(exc)) from None
    except ReplayError as exc:
        raise click.ClickException(str(exc)) from None
    except BrokenPipeError:
        # The reader went away (e.g. `| head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(0)
