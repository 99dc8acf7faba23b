"""Batch access for vectorized work: a selection's rows as Arrow batches or a polars LazyFrame.

Both read the same selection as :class:`~replay.engine.ReplayBackbone` and yield rows in the
same order (:func:`replay.order.replay_order`), as the columns of the on-disk schema
(``recorder.schema.schema_for(dataset)``: ``session_id``, ``seq``, ``received_ns`` and the
record's fields; decimals stay ``decimal128(38, 18)``). Only the partitions, files and row
groups that meet the selection are read, and only the columns asked for (plus the key
columns the order needs); memory stays at the read-ahead of the open files.

``dataset`` may be any dataset of the recording: the replayed ones (``ticker``, ``trade``,
``orderbook``, ``candle``, ``events``) come in exactly the order ``stream_all()`` yields them;
``rest_*`` and ``raw`` follow the same rule, their rows taking part in their session's clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa
from polars.io.plugins import register_io_source

from recorder.schema import DATASETS, schema_for
from replay.errors import InvalidReplayArgument
from replay.files import I64, bulk_rows
from replay.order import Segment
from replay.plan import Plan, plan, segments
from replay.prefetch import Prefetch
from replay.selection import REPLAYED_DATASETS, TimeLike, make_selection

__all__ = ["scan", "scan_batches"]

_READ_AHEAD: Final = 2  # segments read and ordered ahead, on the reader thread


def _plan_for(
    path: str | object,
    dataset: str,
    symbols: str | Iterable[str] | None,
    start: TimeLike | None,
    end: TimeLike | None,
) -> Plan:
    if dataset not in DATASETS:
        raise InvalidReplayArgument(
            f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}"
        )
    selection = make_selection(path, symbols=symbols, start=start, end=end)  # type: ignore[arg-type]
    datasets = REPLAYED_DATASETS if dataset in REPLAYED_DATASETS else (*REPLAYED_DATASETS, dataset)
    return plan(selection, datasets)


def _columns(dataset: str, columns: Sequence[str] | None) -> list[str]:
    names = schema_for(dataset).names
    if columns is None:
        return list(names)
    unknown = [c for c in columns if c not in names]
    if unknown:
        raise InvalidReplayArgument(
            f"dataset {dataset!r} has no column {unknown[0]!r}: choose from {', '.join(names)}"
        )
    return list(columns)


def _rows_of(segment: Segment, dataset: str, columns: list[str]) -> _Rows | None:
    # The segment's rows of ``dataset`` as a table of ``columns`` (its pieces laid end to
    # end: zero-copy slices) and the order to gather them in (``None``: already in order).
    chunks = segment.chunks
    wanted = np.array([chunk.dataset == dataset for chunk in chunks], dtype=bool)
    if not wanted.any():
        return None
    starts, stops = segment.piece_start.tolist(), segment.piece_stop.tolist()
    table = pa.Table.from_batches(
        [
            chunks[i].batch.select(columns).slice(starts[i], stops[i] - starts[i])
            for i in np.flatnonzero(wanted).tolist()
        ]
    )
    index = segment.index
    if wanted.all() or index is None:
        return _Rows(table, index)
    # Other datasets' rows (the key columns the clock needed) are left out.
    lengths = segment.piece_stop - segment.piece_start
    mine = np.repeat(wanted, lengths)
    index = index[mine[index]]
    return _Rows(table, (np.cumsum(mine) - 1)[index])


@dataclass(frozen=True, slots=True)
class _Rows:
    table: pa.Table
    index: I64 | None

    @property
    def rows(self) -> int:
        return self.table.num_rows if self.index is None else len(self.index)


def _batches(
    the_plan: Plan, dataset: str, columns: list[str], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    held: list[_Rows] = []
    count = 0
    size = bulk_rows(dataset, [*columns, "seq"])
    ordered = segments(the_plan, [dataset], columns, batch_size=size, clock=False)
    for segment in Prefetch(lambda: ordered, depth=_READ_AHEAD).items():
        rows = _rows_of(segment, dataset, columns)
        if rows is None:
            continue
        held.append(rows)
        count += rows.rows
        if count >= batch_rows or (len(held) == 1 and count * 2 >= batch_rows):
            yield from _gather(held)
            held, count = [], 0
    if held:
        yield from _gather(held)


def _gather(pieces: list[_Rows]) -> Iterator[pa.RecordBatch]:
    # The pieces' rows in order as one batch: at most one copy (a gather in one take when
    # some rows are out of order, else a concatenation), none for a single ordered batch.
    table = pa.concat_tables([piece.table for piece in pieces])
    if len(pieces) == 1 and pieces[0].index is None:
        yield from table.to_batches()  # as read: no copy
        return
    if all(piece.index is None for piece in pieces):
        table = table.combine_chunks()
    else:
        offsets = np.cumsum([0, *(piece.table.num_rows for piece in pieces)])
        index = np.concatenate(
            [
                offset + (np.arange(piece.table.num_rows) if piece.index is None else piece.index)
                for piece, offset in zip(pieces, offsets.tolist(), strict=False)
            ]
        )
        table = table.combine_chunks().take(index)  # a take from one chunk is one chunk
    yield from table.to_batches(max_chunksize=max(table.num_rows, 1))


def scan_batches(
    path: str | object,
    dataset: str,
    *,
    symbols: str | Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    columns: Sequence[str] | None = None,
    batch_rows: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """Return the selected rows of ``dataset`` in replay order as Arrow record batches of
    about ``batch_rows`` rows or more (default: about 2 MB of the columns asked for, e.g.
    6,700 trades of every column, 43,000 of three, 1,800 orderbooks), with ``columns``
    (default: every column of the schema). Each file is read about 2 MB at a time, so memory
    follows the number of markets selected, not the recording's length or its files' layout.

    The files are found now (errors are raised here); they are read as you iterate.

    Raises:
        RecordingNotFound: ``path`` holds no recording.
        RecordingFormatError, UnsupportedSchemaVersion: a file replay cannot read.
        InvalidReplayArgument: an unknown dataset or column, a malformed selection.
    """
    the_plan = _plan_for(path, dataset, symbols, start, end)
    chosen = _columns(dataset, columns)
    if batch_rows is None:
        batch_rows = bulk_rows(dataset, chosen)
    if batch_rows < 1:
        raise InvalidReplayArgument(f"batch_rows must be at least 1, not {batch_rows}")
    return _batches(the_plan, dataset, chosen, batch_rows)


def scan(
    path: str | object,
    dataset: str,
    *,
    symbols: str | Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
) -> pl.LazyFrame:
    """Return the selected rows of ``dataset`` in replay order as a polars LazyFrame.

    Projections are pushed down (only the columns a query uses are read, plus the keys);
    filters apply batch by batch as rows stream in order. Collect it as often as you like;
    each collection reads the files again.

    Raises:
        RecordingNotFound: ``path`` holds no recording.
        RecordingFormatError, UnsupportedSchemaVersion: a file replay cannot read.
        InvalidReplayArgument: an unknown dataset, a malformed selection.
    """
    the_plan = _plan_for(path, dataset, symbols, start, end)
    schema = schema_for(dataset)
    polars_schema = pl.from_arrow(schema.empty_table()).schema  # type: ignore[union-attr]

    def source(
        with_columns: list[str] | None,
        predicate: pl.Expr | None,
        n_rows: int | None,
        batch_size: int | None,
    ) -> Iterator[pl.DataFrame]:
        columns = _columns(dataset, with_columns)
        if not columns:  # a query that needs rows but no column (a count) reads one key
            columns = ["seq"]
        produced = 0
        size = batch_size or bulk_rows(dataset, columns)
        for batch in _batches(the_plan, dataset, columns, size):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            if predicate is not None:
                frame = frame.filter(predicate)
            if n_rows is not None:
                frame = frame.head(n_rows - produced)
            produced += frame.height
            yield frame
            if n_rows is not None and produced >= n_rows:
                return

    return register_io_source(
        source, schema=polars_schema, explain_name="tape-replay", is_pure=True
    )
