"""Decoded records of a chunk, by row, with a bounded cache.

The engine asks for rows one after another; :func:`records` decodes a window of rows at a
time (vectorized) and keeps only the latest window on the chunk, so memory stays at one window
per open file whatever the recording's size. Windows are small for heavy records (orderbooks)
and larger for light ones (trades); a paced replay asks for small windows, so that no single
decode delays a record's schedule.
"""

from __future__ import annotations

from typing import Final

from backbone.models import Record
from replay.decode import decode
from replay.files import Chunk

__all__ = ["record", "records"]

_WINDOW: Final = {"trade": 2048, "ticker": 256, "candle": 256, "orderbook": 32, "events": 256}


def records(chunk: Chunk, start: int, stop: int, window: int | None = None) -> list[Record]:
    """Return the records of rows ``start`` to ``stop`` of ``chunk``; on a miss, decode at
    least ``window`` rows (default: per dataset)."""
    cached = chunk.decoded
    if cached is not None:
        low, high, decoded = cached
        if low <= start and stop <= high:
            return decoded[start - low : stop - low]
    window = max(stop - start, window or _WINDOW[chunk.dataset])
    high = min(len(chunk), start + window)
    decoded = decode(chunk.dataset, chunk.batch.slice(start, high - start))
    chunk.decoded = (start, high, decoded)
    return decoded[: stop - start]


def record(chunk: Chunk, row: int, window: int | None = None) -> Record:
    """Return the record of one row of ``chunk`` (see :func:`records` for ``window``)."""
    cached = chunk.decoded
    if cached is not None:
        low, high, decoded = cached
        if low <= row < high:
            return decoded[row - low]  # type: ignore[no-any-return]
    return records(chunk, row, row + 1, window)[0]
