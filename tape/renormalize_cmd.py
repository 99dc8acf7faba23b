"""``tape renormalize``: rebuild a recording's record datasets from its raw capture."""

from __future__ import annotations

from pathlib import Path

import click

from recorder.errors import RecorderError
from recorder.parts import COMPRESSIONS
from recorder.renormalization import renormalize as renormalize_recording


@click.command("renormalize")
@click.argument("source", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="New directory for the rebuilt recording (must be empty or absent).",
)
@click.option("--compression", type=click.Choice(COMPRESSIONS), default="zstd", show_default=True)
def renormalize(source: Path, out: Path, compression: str) -> None:
    """Decode SOURCE's raw frames again (recorded with --raw) into a new recording.

    Every ticker, trade, orderbook, candle and REST reference row is rebuilt with today's
    decoder from the frame it came from; seq, sessions and partitions stay as they were.
    """
    try:
        result = renormalize_recording(source, out, compression=compression)
    except (RecorderError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    for dataset in sorted(set(result.rebuilt) | set(result.kept)):
        click.echo(
            f"{dataset:<15} {result.rebuilt.get(dataset, 0):>10} rebuilt "
            f"{result.kept.get(dataset, 0):>8} kept as recorded"
        )
    if result.undecodable_frames:
        click.echo(f"{result.undecodable_frames} raw frames could not be decoded (skipped)")
    click.echo(f"renormalized recording written to {out.resolve()}")
