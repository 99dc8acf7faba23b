"""``tape compact``: merge each partition's parts into one, atomically, rows unchanged."""

from __future__ import annotations

from pathlib import Path

import click

from recorder.compaction import compact as compact_root
from recorder.errors import RecorderError
from recorder.layout import MANIFEST_FILE
from recorder.parts import COMPRESSIONS
from recorder.schema import DATASETS


@click.command("compact")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--dataset",
    "datasets",
    multiple=True,
    type=click.Choice(DATASETS),
    help="Only this dataset (repeatable; default: all).",
)
@click.option(
    "--date",
    "dates",
    multiple=True,
    metavar="YYYY-MM-DD",
    help="Only this date (repeatable; default: all).",
)
@click.option("--symbol", "symbols", multiple=True, help="Only this symbol (repeatable).")
@click.option(
    "--compression",
    type=click.Choice(COMPRESSIONS),
    default="zstd",
    show_default=True,
    help="Parquet compression of the merged parts.",
)
def compact(
    directory: Path,
    datasets: tuple[str, ...],
    dates: tuple[str, ...],
    symbols: tuple[str, ...],
    compression: str,
) -> None:
    """Merge every partition's small parts into one (safe beside a running recorder)."""
    if not (directory / MANIFEST_FILE).is_file():
        raise click.ClickException(f"{directory} is not a tape recording (no {MANIFEST_FILE})")
    try:
        done = compact_root(
            directory,
            datasets=datasets or DATASETS,
            dates=dates,
            symbols=symbols,
            compression=compression,
        )
    except RecorderError as exc:
        raise click.ClickException(str(exc)) from exc
    merged = [d for d in done if d.output is not None]
    for item in merged:
        click.echo(
            f"{item.directory.relative_to(directory)}: {len(item.inputs)} parts -> 1 "
            f"({item.rows} rows)"
        )
    click.echo(
        f"compacted {len(merged)} of {len(done)} partitions "
        f"({sum(len(d.inputs) for d in merged)} parts merged)"
    )
