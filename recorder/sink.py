"""The sink: accepted records -> journal (every flush interval) -> Parquet (every rotation).

The event loop only appends records to per-dataset lists and numbers them (``seq``). A
flusher task hands the lists to a worker thread every ``flush_interval_ms``; the thread turns
them into Arrow batches, appends them to the current journal segment and fsyncs. At each
rotation the segment is closed and a publisher task has another thread write its parts and
delete it, then give the memory this took back to the operating system
(:mod:`recorder.memory`). Nothing blocking runs on the loop.

Back-pressure, stated: when ``max_pending_records`` are waiting for the journal,
:meth:`Sink.put` waits (and counts the wait); when ``max_unpublished_segments`` rotated
segments are waiting for Parquet, the flusher waits, so :meth:`Sink.put` soon does too.
Records are never dropped.

A :class:`~recorder.errors.StorageError` (full disk, unwritable directory) stops the sink:
it leaves the sink's context as that error, what was journaled stays for recovery, and no
partial Parquet file exists under a final name.

With ``compact_days`` (:class:`~recorder.config.StorageConfig`), a compactor task has a
third thread merge each finished UTC day's partitions into one part each. Its failures are
logged, never fatal: a partition it cannot merge is left as it was and the others go on; a
pass that cannot run at all (another compaction holds the root) is tried again after the
next midnight, with every day since the last pass that ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import pyarrow as pa

from recorder.compaction import CompactionBusy, PartitionCompaction, compact, recorded_days
from recorder.config import StorageConfig
from recorder.errors import RecorderError, StorageError
from recorder.journal import JournalSegment, PublishResult, publish_segment
from recorder.layout import date_of_ns
from recorder.manifest import SessionManifest, write_session
from recorder.memory import release_memory, warm_up
from recorder.rows import DATASET_OF, AnyRecord, dataset_of, to_batch

__all__ = ["OnRecord", "Sink", "SinkStatistics"]

_log = logging.getLogger(__name__)

_T = TypeVar("_T")

OnRecord = Callable[[AnyRecord, int], None]
"""A hook called with each record and its ``seq`` as the sink accepts it."""


@dataclass(frozen=True, slots=True)
class SinkStatistics:
    """Counters of one sink, as of the call to :meth:`Sink.statistics`."""

    accepted: dict[str, int]
    pending_records: int
    journaled_records: int
    journal_bytes: int
    parquet_bytes: int
    parts_written: int
    segments_published: int
    put_waits: int
    last_flush_ns: int | None
    last_flush_age_s: float | None
    partitions_compacted: int = 0
    """Partitions of finished days merged into one part by this sink (``compact_days``)."""
    compaction_passes: int = 0
    """Passes of the compactor that ran to their end (at start, then after each midnight)."""


@dataclass(slots=True)
class _Lane:
    # The records of one dataset accepted since the last flush, with their seq numbers.
    dataset: str
    records: list[AnyRecord] = field(default_factory=list)
    seqs: list[int] = field(default_factory=list)
    flushed: int = 0  # records handed to the journal so far

    def take(self) -> tuple[list[AnyRecord], list[int]]:
        records, seqs = self.records, self.seqs
        self.records, self.seqs = [], []
        self.flushed += len(records)
        return records, seqs


class _SegmentWriter:
    # The thread side: owned by whichever worker thread runs a flush; never concurrent.

    def __init__(self, root: Path, session_id: str) -> None:
        self._root = root
        self._session_id = session_id
        self._number = 0
        self.current: JournalSegment | None = None

    def open(self) -> None:
        self.current = JournalSegment.create(self._root, self._session_id, self._number)

    def flush(
        self, pending: list[tuple[str, list[AnyRecord], list[int]]], *, rotate: bool, reopen: bool
    ) -> tuple[int, int, Path | None]:
        segment = self.current
        if segment is None:
            raise RuntimeError("the journal segment is not open")
        batches: list[tuple[str, pa.RecordBatch]] = [
            (dataset, to_batch(dataset, records, session_id=self._session_id, seqs=seqs))
            for dataset, records, seqs in pending
        ]
        written = segment.append(batches) if batches else 0
        rows = sum(b.num_rows for _, b in batches)
        if not rotate:
            return rows, written, None
        segment.close()
        self.current = None
        if reopen:
            self._number += 1
            self.open()
        return rows, written, segment.path

    def size(self) -> tuple[int, int]:
        return (self.current.rows, self.current.size_bytes) if self.current else (0, 0)


class Sink:
    """Accept records of one session and store them; use as an async context manager.

    Call it while holding the root's :class:`~recorder.lock.DirectoryLock`, after
    :func:`~recorder.recording.recover`. Give every record to :meth:`put` (or
    :meth:`put_nowait` from synchronous callbacks); leaving the context flushes, publishes
    every segment and marks the session ``closed``.
    """

    def __init__(
        self,
        root: Path,
        manifest: SessionManifest,
        *,
        config: StorageConfig | None = None,
        on_record: OnRecord | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._root = root
        self._manifest = manifest
        self._config = config or StorageConfig()
        self._on_record = on_record
        self._clock_ns = clock_ns
        self._writer = _SegmentWriter(root, manifest.session_id)
        # One lane per dataset; the record classes with a dataset of their own are found by
        # type in one lookup (an empty table once closing: every put then takes the slow path).
        self._lanes: dict[str, _Lane] = {}
        self._fast: dict[type, _Lane] = {}
        self._next_seq = manifest.next_seq
        self._flush_base = manifest.next_seq  # the first seq not yet handed to the journal
        self._max_pending = self._config.max_pending_records
        self._state = "new"
        self._closing = False
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._segments: asyncio.Queue[Path | None] = asyncio.Queue(
            self._config.max_unpublished_segments
        )
        self._stack = contextlib.AsyncExitStack()
        self._tasks: asyncio.TaskGroup | None = None
        # Two long-lived threads, so journal flushes never wait behind Parquet writing, and
        # each thread's allocator reuses its own memory from one rotation to the next.
        self._journal_thread = ThreadPoolExecutor(1, thread_name_prefix="tape-journal")
        self._publish_thread = ThreadPoolExecutor(1, thread_name_prefix="tape-publish")
        self._compact_thread = (
            ThreadPoolExecutor(1, thread_name_prefix="tape-compact")
            if self._config.compact_days
            else None
        )
        self._compact_stop = threading.Event()
        self._compact_wake = asyncio.Event()
        self._compact_before: date | None = None  # every day before it is over
        self._compacted_through: date | None = None
        self._day_ends: list[tuple[date, int]] = []  # (new day, segments published then)
        self._rotations = 0
        self._partitions_compacted = 0
        self._compaction_passes = 0
        self._journaled = 0
        self._journal_bytes = 0
        self._parquet_bytes = 0
        self._parts = 0
        self._published = 0
        self._put_waits = 0
        self._last_flush_ns: int | None = None
        self._last_flush_at: float | None = None
        self._segment_started = time.monotonic()
        self._segment_day = date_of_ns(clock_ns())
        self._rows_published: dict[str, int] = dict(manifest.rows)
        self._last_received_ns = manifest.last_received_ns
        self._flushed = asyncio.Condition()
        self._journaled_seq = manifest.next_seq - 1

    @property
    def session_id(self) -> str:
        """The session this sink writes."""
        return self._manifest.session_id

    async def __aenter__(self) -> Sink:
        if self._state != "new":
            raise RuntimeError("a Sink is used once: create a new one")
        self._state = "open"
        await self._in(self._publish_thread, warm_up, self._config.compression)
        await self._in(self._journal_thread, self._writer.open)
        await self._in(self._journal_thread, write_session, self._root, self._manifest)
        self._tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._tasks.create_task(self._flusher(), name="recorder-flusher")
        self._tasks.create_task(self._publisher(), name="recorder-publisher")
        if self._compact_thread is not None:
            self._compact_before = date_of_ns(self._clock_ns())
            self._compact_wake.set()
            self._tasks.create_task(self._compactor(), name="recorder-compactor")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Flush, publish every segment and close the session (idempotent).

        Raises:
            StorageError: the final flush or publish failed (what was journaled stays for
                recovery on the next start).
        """
        if self._state != "open":
            return
        self._state = "closing"
        self._closing = True
        self._fast = {}
        self._wake.set()
        self._compact_stop.set()
        self._compact_wake.set()
        try:
            try:
                # Whatever ended the caller's block, flush and publish what was accepted: the
                # tasks are told to finish, not cancelled (a failed task still fails the group).
                await self._stack.__aexit__(None, None, None)
            except BaseExceptionGroup as group:
                raise _unwrap(group) from None
            await self._in(
                self._journal_thread,
                write_session,
                self._root,
                self._manifest_now(status="closed", ended_ns=self._clock_ns()),
            )
        finally:
            self._state = "closed"
            self._journal_thread.shutdown(wait=False)
            self._publish_thread.shutdown(wait=False)
            if self._compact_thread is not None:
                self._compact_thread.shutdown(wait=False)

    @staticmethod
    async def _in(
        thread: ThreadPoolExecutor, func: Callable[..., _T], /, *args: Any, **kwargs: Any
    ) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(thread, functools.partial(func, *args, **kwargs))

    def put_nowait(self, record: AnyRecord) -> int:
        """Accept ``record`` now and return its ``seq``, whatever the back-pressure.

        Raises:
            RuntimeError: the sink is not open.
            TypeError: the record is not one the recorder stores.
        """
        lane = self._fast.get(type(record))
        if lane is None:
            lane = self._lane_of(record)
        seq = self._next_seq
        self._next_seq = seq + 1
        lane.records.append(record)
        lane.seqs.append(seq)
        if self._on_record is not None:
            self._on_record(record, seq)
        if seq - self._flush_base >= self._max_pending - 1:
            self._room.clear()
            self._wake.set()
        return seq

    def _lane_of(self, record: AnyRecord) -> _Lane:
        if self._state != "open" or self._closing:
            raise RuntimeError("the sink is not open: records cannot be accepted")
        dataset = dataset_of(record)
        lane = self._lanes.get(dataset)
        if lane is None:
            lane = self._lanes[dataset] = _Lane(dataset)
            if type(record) in DATASET_OF:
                self._fast[type(record)] = lane
        return lane

    @property
    def room(self) -> asyncio.Event:
        """Set while :meth:`put_nowait` may be called without exceeding
        ``max_pending_records``; when it is clear, wait for it (or call :meth:`put`)."""
        return self._room

    async def put(self, record: AnyRecord) -> int:
        """Accept ``record`` and return its ``seq``; wait while too many records are pending.

        Raises:
            RuntimeError: the sink is not open.
        """
        if not self._room.is_set():
            self._put_waits += 1
            await self._room.wait()
        return self.put_nowait(record)

    async def flushed(self, seq: int) -> None:
        """Wait until the record numbered ``seq`` is in the journal (durably)."""
        async with self._flushed:
            await self._flushed.wait_for(lambda: self._journaled_seq >= seq)

    def statistics(self) -> SinkStatistics:
        """Return the sink's counters now."""
        accepted = {
            name: lane.flushed + len(lane.records)
            for name, lane in self._lanes.items()
            if lane.flushed or lane.records
        }
        return SinkStatistics(
            accepted=accepted,
            pending_records=self._next_seq - self._flush_base,
            journaled_records=self._journaled,
            journal_bytes=self._journal_bytes,
            parquet_bytes=self._parquet_bytes,
            parts_written=self._parts,
            segments_published=self._published,
            put_waits=self._put_waits,
            last_flush_ns=self._last_flush_ns,
            last_flush_age_s=(
                None if self._last_flush_at is None else time.monotonic() - self._last_flush_at
            ),
            partitions_compacted=self._partitions_compacted,
            compaction_passes=self._compaction_passes,
        )

    def _rotation_due(self) -> bool:
        rows, size = self._writer.size()
        if rows == 0:
            return False
        return (
            time.monotonic() - self._segment_started >= self._config.rotation_interval_s
            or size >= self._config.rotation_max_bytes
            or date_of_ns(self._clock_ns()) != self._segment_day
        )

    async def _flusher(self) -> None:
        interval_s = self._config.flush_interval_ms / 1000
        deadline = time.monotonic() + interval_s
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(_loop_time(deadline)):
                    await self._wake.wait()
            self._wake.clear()
            deadline = time.monotonic() + interval_s
            final = self._closing
            pending = [
                (lane.dataset, *lane.take()) for lane in self._lanes.values() if lane.records
            ]
            self._flush_base = self._next_seq
            last_seq = self._next_seq - 1
            self._room.set()
            rotate = final or self._rotation_due()
            rows, written, closed = await self._in(
                self._journal_thread, self._writer.flush, pending, rotate=rotate, reopen=not final
            )
            self._journaled += rows
            self._journal_bytes += written
            self._last_flush_ns = self._clock_ns()
            self._last_flush_at = time.monotonic()
            async with self._flushed:
                self._journaled_seq = last_seq
                self._flushed.notify_all()
            if closed is not None:
                self._segment_started = time.monotonic()
                day = date_of_ns(self._clock_ns())
                if day != self._segment_day:
                    # The days before ``day`` are over once the segment after this one is
                    # published: it holds what was received before midnight, accepted after.
                    self._day_ends.append((day, self._rotations + 2))
                self._segment_day = day
                self._rotations += 1
                await self._segments.put(closed)
            if final:
                await self._segments.put(None)
                return

    async def _publisher(self) -> None:
        while (path := await self._segments.get()) is not None:
            result = await self._in(self._publish_thread, self._publish, path)
            self._account(result)
            await self._in(self._publish_thread, write_session, self._root, self._manifest_now())
            while self._day_ends and self._day_ends[0][1] <= self._published:
                self._compact_before = self._day_ends.pop(0)[0]
                self._compact_wake.set()

    async def _compactor(self) -> None:
        # Merge the partitions of the days before ``_compact_before``: at start every such
        # day, then the day just over and the one before it (a late part of that one).
        assert self._compact_thread is not None
        while True:
            await self._compact_wake.wait()
            self._compact_wake.clear()
            before = self._compact_before
            if self._closing or before is None:
                return
            since = self._compacted_through
            first = None if since is None else (since - timedelta(days=1)).isoformat()
            try:
                done = await self._in(self._compact_thread, self._compact_days, before, first)
            except CompactionBusy:
                _log.info(
                    "another compaction of %s runs: the days before %s are left to it",
                    self._root,
                    before,
                )
                continue
            except Exception:  # maintenance beside the capture: never stops it
                _log.error(
                    "compacting the days before %s failed; recording goes on, the next "
                    "day tries again",
                    before,
                    exc_info=True,
                )
                continue
            merged = [c for c in done if c.output is not None]
            self._partitions_compacted += len(merged)
            if merged:
                _log.info(
                    "compacted %d partitions of the days before %s: %d parts into %d",
                    len(merged),
                    before,
                    sum(len(c.inputs) for c in merged),
                    len(merged),
                )
            if not self._compact_stop.is_set():
                self._compacted_through = before
                self._compaction_passes += 1

    def _compact_days(self, before: date, first: str | None) -> list[PartitionCompaction]:
        # On the compaction thread: the recorded days before ``before`` (from ``first`` on).
        days = tuple(
            day for day in recorded_days(self._root, before=before) if first is None or day >= first
        )
        if not days:
            return []  # (no dates would mean every partition)
        return compact(
            self._root,
            dates=days,
            compression=self._config.compression,
            should_stop=self._compact_stop.is_set,
            on_error=_compaction_failed,
        )

    def _publish(self, path: Path) -> PublishResult:
        # On the publish thread: the segment's parts, then the memory they took back to the OS.
        try:
            return publish_segment(self._root, path, compression=self._config.compression)
        finally:
            release_memory()

    def _account(self, result: PublishResult) -> None:
        self._published += 1
        self._parts += len(result.parts)
        for part in result.parts:
            with contextlib.suppress(OSError):
                self._parquet_bytes += part.stat().st_size
        for dataset, rows in result.rows.items():
            self._rows_published[dataset] = self._rows_published.get(dataset, 0) + rows
        if result.last_received_ns is not None:
            self._last_received_ns = max(self._last_received_ns or 0, result.last_received_ns)

    def describe(
        self,
        *,
        symbols: tuple[str, ...] | None = None,
        markets: tuple[Mapping[str, Any], ...] | None = None,
    ) -> None:
        """Change the symbols and market descriptions the session manifest gives (written
        with the next publish, and when the sink closes)."""
        changes: dict[str, Any] = {}
        if symbols is not None:
            changes["symbols"] = symbols
        if markets is not None:
            changes["markets"] = markets
        self._manifest = self._manifest.evolve(**changes)

    def _manifest_now(self, **changes: object) -> SessionManifest:
        return self._manifest.evolve(
            rows=dict(self._rows_published),
            last_received_ns=self._last_received_ns,
            next_seq=self._next_seq,
            **changes,
        )


def _compaction_failed(directory: Path, error: Exception) -> None:
    # One partition the compactor could not merge: left as it was, the others go on.
    _log.warning("%s left as it is: %s", directory, error)


def _loop_time(monotonic_deadline: float) -> float:
    loop = asyncio.get_running_loop()
    return loop.time() + (monotonic_deadline - time.monotonic())


def _unwrap(group: BaseExceptionGroup) -> BaseException:
    # Surface the one meaningful error of the sink's tasks (a StorageError first).
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    for kind in (StorageError, RecorderError):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0] if leaves else group
