"""Decoded records of a chunk, by row, with a bounded cache.

The engine asks for rows one after another; :func:`records` decodes a window of rows at a
time (vectorized) and keeps only the latest window on the chunk, so memory stays at one window
per open file whatever the recording's size. Windows are small for heavy records (orderbooks)
and whole batches for light ones (trades).
"""

from __future__ import annotations

from typing import Final

from backbone.models import Record
from replay.decode import decode
from replay.files import Chunk

__all__ = ["record", "records"]

_WINDOW: Final = {"trade": 8192, "ticker": 256, "candle": 256, "orderbook": 32, "events": 256}


def records(chunk: Chunk, start: int, stop: int) -> list[Record]:
    """Return the records of rows ``start`` to ``stop`` of ``chunk``."""
    cached = chunk.decoded
    if cached is not None:
        low, high, decoded = cached
        if low <= start and stop <= high:
            return decoded[start - low : stop - low]
    window = max(stop - start, _WINDOW[chunk.dataset])
    high = min(len(chunk), start + window)
    decoded = decode(chunk.dataset, chunk.batch.slice(start, high - start))
    chunk.decoded = (start, high, decoded)
    return decoded[: stop - start]


def record(chunk: Chunk, row: int) -> Record:
    """Return the record of one row of ``chunk``."""
    cached = chunk.decoded
    if cached is not None:
        low, high, decoded = cached
        if low <= row < high:
            return decoded[row - low]  # type: ignore[no-any-return]
    return records(chunk, row, row + 1)[0]
