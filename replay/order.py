"""The replay order, defined once: :func:`replay_order`.

Everything that yields rows in order (the async streams, ``stream_all``, ``digest``,
``scan``) takes them from :func:`replay_order`; nothing else decides an order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from replay.files import I64, Chunk, Cursor, SessionCursors, Unopened

__all__ = ["Run", "Segment", "replay_order"]

Run = tuple[Chunk, int, int]
"""Rows ``start`` to ``stop`` (exclusive) of a chunk, consecutive in the replay order."""

_NONE: Final = -(2**63)


class Segment:
    """The next rows in replay order.

    The rows come from *pieces*: piece ``i`` is rows ``piece_start[i]`` to ``piece_stop[i]``
    of ``chunks[i]``. Laid end to end, the pieces give the *source rows*; ``index`` lists
    them in replay order (row ``k`` of the segment is source row ``index[k]``), or is
    ``None`` when the source rows already are in replay order (the pieces follow each
    other). Within one chunk, rows always come in ascending order. ``clock`` and ``seq`` hold
    each row's replay clock (integer nanoseconds, never decreasing) and ``seq``, in order.
    When the cursors were read for order only (one session, no ``received_ns``), ``clock``
    repeats ``seq``.

    Batch access gathers a segment's columns in one ``take`` (or none, when ``index`` is
    ``None``); the streams walk its :attr:`runs`, consecutive rows of one chunk.
    """

    __slots__ = ("_rows", "_runs", "chunks", "clock", "index", "piece_start", "piece_stop", "seq")

    def __init__(
        self,
        chunks: list[Chunk],
        piece_start: I64,
        piece_stop: I64,
        index: I64 | None,
        clock: I64,
        seq: I64,
    ) -> None:
        self.chunks = chunks
        self.piece_start = piece_start
        self.piece_stop = piece_stop
        self.index = index
        self.clock = clock
        self.seq = seq
        self._runs: list[Run] | None = None
        self._rows: tuple[I64, I64] | None = None

    @classmethod
    def single(cls, chunk: Chunk, start: int, stop: int, clock: I64, seq: I64) -> Segment:
        """Return the segment of one run."""
        return cls(
            [chunk],
            np.array([start], dtype=np.int64),
            np.array([stop], dtype=np.int64),
            None,
            clock,
            seq,
        )

    @classmethod
    def from_rows(cls, chunks: list[Chunk], source: I64, row: I64, clock: I64, seq: I64) -> Segment:
        """Return the segment whose row ``k`` is row ``row[k]`` of ``chunks[source[k]]``
        (rows of one chunk ascending); its pieces are the row ranges used of each chunk."""
        count = len(chunks)
        big = np.iinfo(np.int64).max
        low = np.full(count, big, dtype=np.int64)
        high = np.full(count, -1, dtype=np.int64)
        np.minimum.at(low, source, row)
        np.maximum.at(high, source, row)
        used = np.flatnonzero(high >= 0)
        if len(used) < count:
            renumber = np.zeros(count, dtype=np.int64)
            renumber[used] = np.arange(len(used), dtype=np.int64)
            source = renumber[source]
            chunks = [chunks[i] for i in used.tolist()]
            low, high = low[used], high[used]
        stop = high + 1
        lengths = stop - low
        offsets = np.cumsum(lengths) - lengths
        segment = cls(chunks, low, stop, offsets[source] + row - low[source], clock, seq)
        segment._rows = (source, row)
        return segment

    def _source_rows(self) -> tuple[I64, I64]:
        # Each source row's piece and row number, in source order.
        return _expand(
            np.arange(len(self.chunks), dtype=np.int64), self.piece_start, self.piece_stop
        )

    def rows(self) -> tuple[I64, I64]:
        """Return each row's chunk index (into :attr:`chunks`) and row number, in order."""
        if self._rows is None:
            source, row = self._source_rows()
            if self.index is not None:
                source, row = source[self.index], row[self.index]
            self._rows = (source, row)
        return self._rows

    @property
    def runs(self) -> list[Run]:
        """The rows as ``(chunk, start, stop)`` runs of consecutive rows, in order."""
        if self._runs is None:
            chunks = self.chunks
            if self.index is None:
                pieces = zip(
                    range(len(chunks)),
                    self.piece_start.tolist(),
                    self.piece_stop.tolist(),
                    strict=True,
                )
                self._runs = [(chunks[c], a, b) for c, a, b in pieces if b > a]
            else:
                source, row = self.rows()
                if len(source) == 0:
                    self._runs = []
                    return self._runs
                breaks = np.flatnonzero((source[1:] != source[:-1]) | (row[1:] != row[:-1] + 1))
                begins = np.concatenate(([0], breaks + 1))
                ends = np.concatenate((breaks + 1, [len(source)]))
                self._runs = [
                    (chunks[c], a, a + n)
                    for c, a, n in zip(
                        source[begins].tolist(),
                        row[begins].tolist(),
                        (ends - begins).tolist(),
                        strict=True,
                    )
                ]
        return self._runs

    def slice(self, start: int, stop: int) -> Segment:
        """Return the segment of rows ``start`` to ``stop``."""
        if self.index is not None:
            source, row = self.rows()
            return Segment.from_rows(
                self.chunks,
                source[start:stop],
                row[start:stop],
                self.clock[start:stop],
                self.seq[start:stop],
            )
        lengths = self.piece_stop - self.piece_start
        ends = np.cumsum(lengths)
        first = int(np.searchsorted(ends, start, side="right"))
        last = int(np.searchsorted(ends, stop, side="left")) + 1
        piece_start = self.piece_start[first:last].copy()
        piece_stop = self.piece_stop[first:last].copy()
        begins = ends[first:last] - lengths[first:last]
        piece_start[0] += start - begins[0]
        piece_stop[-1] -= ends[last - 1] - stop
        return Segment(
            self.chunks[first:last],
            piece_start,
            piece_stop,
            None,
            self.clock[start:stop],
            self.seq[start:stop],
        )

    def __len__(self) -> int:
        return len(self.clock)


def _expand(piece: I64, start: I64, stop: I64) -> tuple[I64, I64]:
    # Per-row piece and row number of row ranges laid end to end.
    lengths = stop - start
    offsets = np.cumsum(lengths) - lengths
    source = np.repeat(piece, lengths)
    row = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(start - offsets, lengths)
    return source, row


def replay_order(cursors: Unopened) -> Iterator[Segment]:
    """Yield the selected rows of ``cursors`` in the replay order, as :class:`Segment` pieces.

    **The rule.** Every row ``r`` belongs to a recording session ``s(r)`` (``session_id``) and
    has its place ``seq(r)`` in that session's delivery order and its receive time
    ``received_ns(r)``. Its *replay clock* is the running maximum of the receive time along
    its session's delivery order, over the selected rows::

        clock(r) = max(received_ns(q) for selected q if s(q) == s(r) and seq(q) <= seq(r))

    and the replay order sorts the rows by the key ``(clock(r), s(r), seq(r))``.

    What follows from it:

    - within one session the order is ``seq``, the order the backbone delivered the records
      (the clock never decreases along ``seq``, and ``seq`` breaks its ties), so a recording
      of one session replays exactly as it was delivered live, whatever small disorder its
      receive stamps have (REST responses and several sockets stamp independently);
    - sessions that overlap in time (two recorder processes writing one root, or any
      sessions whose rows are selected together) interleave by their receive clocks; a tie
      goes to the smaller session id; sessions that do not overlap follow each other;
    - the order depends on nothing but the selected rows (not on file names, file sizes,
      reading order, threads or the machine), so every run gives the same order and the
      same digest; a row stored twice (the same ``(session_id, seq)``) is yielded once;
    - the clock of the row just replayed is the replay clock that ``get_*`` answers as of
      and that paced replay follows.

    **How.** A streaming k-way merge: per session, the files' cursors are merged on ``seq``
    (a cursor is opened only when its first ``seq`` can come next, so only the files around
    the current position are open and each holds one batch); the sessions are then merged on
    the key above. Work is vectorized per batch (numpy), so long runs of one file cost
    nothing per row. Memory is bounded by the batches of the open cursors, independent of
    the recording's length.

    Raises:
        RecordingFormatError: a file cannot be read, or breaks the ``seq`` order it promised.
    """
    sessions = cursors.sessions()
    if len(sessions) == 1:
        yield from _session_order(cursors.of_session(sessions[0]))
        return
    yield from _merge_sessions(
        [_SessionSource(rank, sid, cursors.of_session(sid)) for rank, sid in enumerate(sessions)]
    )


@dataclass(slots=True)
class _Open:
    cursor: Cursor
    chunk: Chunk
    pos: int = 0


def _session_order(pending: SessionCursors) -> Iterator[Segment]:
    # Merge one session's cursors on seq, filling each row's clock (running max of received).
    active: list[_Open] = []
    carry = _NONE
    last_seq = -1
    try:
        while True:
            horizon = _open_due(active, pending)
            if horizon is None:
                return
            pieces: list[tuple[_Open, int, int]] = []
            for item in active:
                seq = item.chunk.seq
                stop = (
                    len(seq)
                    if seq[-1] <= horizon
                    else int(np.searchsorted(seq, horizon, side="right"))
                )
                if stop > item.pos:
                    pieces.append((item, item.pos, stop))
            segment, last_seq, carry = _merge_pieces(pieces, last_seq, carry)
            for item, _, stop in pieces:
                item.pos = stop
            _advance(active)
            if len(segment):
                yield segment
    finally:
        for item in active:
            item.cursor.close()


def _open_due(active: list[_Open], pending: SessionCursors) -> int | None:
    # Open every pending cursor whose rows can come before the end of an open chunk; return
    # the horizon: the smallest last seq of the open chunks (every row up to it is known).
    while True:
        horizon = min((int(item.chunk.seq[-1]) for item in active), default=None)
        bound = pending.next_bound()
        if bound is None or (horizon is not None and bound > horizon):
            return horizon
        cursor = pending.pop()
        chunk = cursor.next_chunk()
        if chunk is None:
            cursor.close()
        else:
            active.append(_Open(cursor, chunk))


def _advance(active: list[_Open]) -> None:
    for item in list(active):
        if item.pos < len(item.chunk):
            continue
        chunk = item.cursor.next_chunk()
        if chunk is None:
            item.cursor.close()
            active.remove(item)
        else:
            item.chunk, item.pos = chunk, 0


def _merge_pieces(
    pieces: list[tuple[_Open, int, int]], last_seq: int, carry: int
) -> tuple[Segment, int, int]:
    if len(pieces) == 1:
        item, start, stop = pieces[0]
        chunk = item.chunk
        seq = chunk.seq[start:stop]
        if seq[0] > last_seq:
            if chunk.received is None:  # order only: no clock asked for
                return Segment.single(chunk, start, stop, seq, seq), int(seq[-1]), carry
            clock = np.maximum.accumulate(chunk.received[start:stop])
            if carry > clock[0]:
                np.maximum(clock, carry, out=clock)
            return Segment.single(chunk, start, stop, clock, seq), int(seq[-1]), int(clock[-1])
    chunks = [item.chunk for item, _, _ in pieces]
    starts = np.array([start for _, start, _ in pieces], dtype=np.int64)
    stops = np.array([stop for _, _, stop in pieces], dtype=np.int64)
    seq = np.concatenate([item.chunk.seq[a:b] for item, a, b in pieces])
    ordered_only = any(item.chunk.received is None for item, _, _ in pieces)
    order = np.argsort(seq, kind="stable")
    seq = seq[order]
    keep = np.ones(len(seq), dtype=bool)
    keep[1:] = seq[1:] != seq[:-1]  # a row stored twice is yielded once
    keep &= seq > last_seq
    if not keep.all():
        order, seq = order[keep], seq[keep]
    index: I64 | None = order
    if len(order) == len(keep) and (len(order) < 2 or bool(np.all(order[1:] > order[:-1]))):
        index = None  # the pieces follow each other: no gather needed
    if len(seq) == 0:
        return Segment(chunks, starts, stops, index, seq, seq), last_seq, carry
    if ordered_only:  # no clock asked for: seq stands in
        return Segment(chunks, starts, stops, index, seq, seq), int(seq[-1]), carry
    received = np.concatenate(
        [item.chunk.received[a:b] for item, a, b in pieces]  # type: ignore[index]
    )
    clock = np.maximum.accumulate(received[order])
    if carry > clock[0]:
        np.maximum(clock, carry, out=clock)
    return Segment(chunks, starts, stops, index, clock, seq), int(seq[-1]), int(clock[-1])


@dataclass(slots=True)
class _SessionSource:
    rank: int
    session: str
    cursors: SessionCursors
    segments: Iterator[Segment] | None = None
    buffer: Segment | None = None
    start: int = 0

    @property
    def bound_ns(self) -> int:
        return self.cursors.bound_ns

    def fill(self) -> bool:
        # Make sure the buffer holds at least one row; False when the session is done.
        if self.segments is None:
            self.segments = _session_order(self.cursors)
        while self.buffer is None or self.start >= len(self.buffer):
            nxt = next(self.segments, None)
            if nxt is None:
                self.buffer = None
                return False
            self.buffer, self.start = nxt, 0
        return True

    def frontier(self) -> tuple[int, int, int]:
        assert self.buffer is not None
        return int(self.buffer.clock[-1]), self.rank, int(self.buffer.seq[-1])

    def close(self) -> None:
        if self.segments is not None and hasattr(self.segments, "close"):
            self.segments.close()


@dataclass(order=True, slots=True)
class _Pending:
    bound: tuple[int, int]
    source: _SessionSource = field(compare=False)


def _merge_sessions(sources: list[_SessionSource]) -> Iterator[Segment]:
    # Merge sessions on (clock, session rank, seq); ranks follow session ids.
    pending = [_Pending((s.bound_ns, s.rank), s) for s in sources]
    heapq.heapify(pending)
    active: list[_SessionSource] = []
    try:
        while True:
            horizon = _open_sessions(active, pending)
            if horizon is None:
                return
            takes = []
            for src in active:
                assert src.buffer is not None
                clock = src.buffer.clock
                h_clock, h_rank, _ = horizon
                if src.rank == h_rank:
                    stop = len(clock)
                else:
                    tail = clock[src.start :]
                    if src.rank < h_rank:
                        stop = int(np.searchsorted(tail, h_clock, side="right"))
                    else:
                        stop = int(np.searchsorted(tail, h_clock, side="left"))
                    stop += src.start
                if stop > src.start:
                    takes.append((src, src.start, stop))
            yield _interleave(takes)
            for src, _, stop in takes:
                src.start = stop
            for src in list(active):
                if not src.fill():
                    src.close()
                    active.remove(src)
    finally:
        for src in active:
            src.close()
        for item in pending:
            item.source.close()


def _open_sessions(
    active: list[_SessionSource], pending: list[_Pending]
) -> tuple[int, int, int] | None:
    while True:
        horizon = min((src.frontier() for src in active), default=None)
        if not pending or (horizon is not None and pending[0].bound > horizon[:2]):
            return horizon
        src = heapq.heappop(pending).source
        if src.fill():
            active.append(src)
        else:
            src.close()


def _interleave(takes: list[tuple[_SessionSource, int, int]]) -> Segment:
    if len(takes) == 1:
        src, start, stop = takes[0]
        assert src.buffer is not None
        return src.buffer.slice(start, stop)
    chunks: list[Chunk] = []
    sources, rows, clocks, ranks, seqs = [], [], [], [], []
    for src, start, stop in takes:
        assert src.buffer is not None
        piece = src.buffer.slice(start, stop)
        source, row = piece.rows()
        sources.append(source + len(chunks))
        rows.append(row)
        chunks.extend(piece.chunks)
        clocks.append(piece.clock)
        seqs.append(piece.seq)
        ranks.append(np.full(stop - start, src.rank, dtype=np.int64))
    clock = np.concatenate(clocks)
    seq = np.concatenate(seqs)
    rank = np.concatenate(ranks)
    order = np.lexsort((seq, rank, clock))
    source = np.concatenate(sources)[order]
    row = np.concatenate(rows)[order]
    return Segment.from_rows(chunks, source, row, clock[order], seq[order])
