"""``ReplayBackbone``: a recording played back through the live backbone's interface.

**Streams and the clock.** The replay releases the selected records one at a time, in the
order of :func:`replay.order.replay_order`; the *replay clock* is the clock of the last record
released. A stream (``stream_ticker`` ... ``stream_all``) joins when it is first iterated and
from then on receives every released record it matches. Records pass to the consumers like a
baton: a record is handed to one stream, and the next is released only when that stream's
consumer comes back for more (calls ``__anext__`` again). A record that several streams match
goes to them one after another, in the order they joined. So:

- concurrent consumers of one replay see one deterministic interleaving (the replay order),
  and the clock advances only as fast as the slowest of them keeps up;
- only streams being iterated hold the clock. A stream created and never iterated holds
  nothing. A stream stops holding when it is closed (``aclose()``, ``async with``, a
  ``break`` that drops it, a cancelled ``__anext__``), when its task iterates another stream
  of this replay (reading streams one after another), or when its task ends. A stream that
  stopped holding misses what is released meanwhile; iterated again, it rejoins at the
  current clock. A consumer that keeps a stream referenced but stops reading it without
  closing it, while staying in the same task doing something else, holds the clock: close it.
- with ``speed=None`` the replay goes as fast as its consumers take records (nothing is
  released while no stream is iterated); with a ``speed``, a driver task releases records at
  ``speed`` times the recorded pace (by the replay clock), whether or not streams are
  iterated, and :meth:`ReplayBackbone.statistics` reports how far it lags behind schedule.

**Where a stream joins** (``speed=None``). A stream joins at the replay position reached when
its task first iterates it. Before the replay releases a record (or passes one over), it lets
the event loop run until no other task is ready to run (at most 64 passes), and waiting for the
file reader counts for nothing: no record is released meanwhile, and the same settling follows.
So the join point is set by the consumers' code and the records released so far, never by
I/O timing: a task that a consumer starts after its N-th record and that iterates a stream
when it runs (even after a few ``await asyncio.sleep(0)`` or other steps that wait on nothing
outside) joins right after that N-th record, on every run. What the replay cannot make
deterministic is a consumer's own dependence on wall time: a task that first awaits a timer
(``asyncio.sleep(0.01)``), the network or a thread joins wherever the replay has got to when
it comes back; start such tasks before iterating, or have them wait on the replay (an
``asyncio.Event`` set by a consumer) instead. A task that never stops being ready (a busy
``sleep(0)`` loop) gets 64 passes per record. On an event loop whose ready queue replay
cannot see (anything but asyncio's own), the replay lets the loop run once per record
instead (slower; steps that wait on nothing outside should then be single). A paced replay
releases records on the wall clock, so there a stream joins wherever that clock has got to.

**Requests** (``get_*``) answer from the records released so far, never from later ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Coroutine, Iterable, Sized
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Generic, Self, TypeVar, cast

import numpy as np

from backbone.models import (
    CANDLE_TIMEFRAMES,
    CandleData,
    ConnectionEvent,
    Market,
    OrderbookData,
    Record,
    TickerData,
    TradeData,
)
from replay.canonical import Digest
from replay.errors import (
    InvalidReplayArgument,
    NotYetReplayed,
    ReplayClosed,
    UnknownSymbol,
)
from replay.files import Chunk, recorded_symbols
from replay.order import Segment
from replay.plan import Plan, plan, segments
from replay.prefetch import DONE, Failed, Prefetch
from replay.rows import record as row_record
from replay.rows import records as row_records
from replay.selection import REPLAYED_DATASETS, TimeLike, make_selection, parse_symbols
from replay.state import CANDLES_KEPT, TRADES_KEPT, ClockState

__all__ = ["ReplayBackbone", "ReplayStatistics", "ReplayStream", "replay_digest"]

_log = logging.getLogger(__name__)

T = TypeVar("T")

_END: Final = object()
_NEED: Final = object()
_WAIT: Final = object()
_WAITING: Final = object()
_INF: Final = 2**63 - 1
_LAGS_KEPT: Final = 65536
_PREFETCH_DEPTH: Final = 4
_PACED_WINDOW: Final = 16
_LOG_RUNS: Final = 4096  # released runs kept before the get_* state takes them in
_LOG_ROWS: Final = 65536
_SETTLE_PASSES: Final = 64
_NOT_SEEN: Final = (None,)  # stands for a ready queue replay cannot see: never empty


def _ready_queue_of(loop: asyncio.AbstractEventLoop) -> Sized | None:
    """Return the loop's queue of callbacks ready to run, or ``None`` when it keeps none
    that replay can see. asyncio's own loops keep it in ``_ready`` (an implementation
    detail, checked here); with ``None`` the replay lets the loop run once per record."""
    ready = getattr(loop, "_ready", None)
    return ready if isinstance(ready, deque) else None


class _Sub:
    # One stream's subscription: what it matches and where it stands.
    __slots__ = (
        "closed",
        "datasets",
        "delivered",
        "joined",
        "name",
        "symbols",
        "timeframe",
        "waiter",
    )

    def __init__(
        self,
        name: str,
        datasets: frozenset[str],
        symbols: frozenset[str] | None,
        timeframe: str | None,
    ) -> None:
        self.name = name
        self.datasets = datasets
        self.symbols = symbols
        self.timeframe = timeframe
        self.joined = False
        self.closed = False
        self.waiter: asyncio.Future[Any] | None = None
        self.delivered = 0

    def wants(self, chunk: Chunk) -> bool:
        if chunk.dataset not in self.datasets:
            return False
        return self.symbols is None or chunk.symbol is None or chunk.symbol in self.symbols

    def accepts(self, record: Record) -> bool:
        return self.timeframe is None or getattr(record, "timeframe", None) == self.timeframe


class ReplayStream(Generic[T]):
    """An async iterator over one stream of a replay (what ``stream_*`` returns).

    Iterate it with ``async for``; close it with :meth:`aclose` (or ``async with``) when you
    stop reading it early and keep it referenced, so it releases the clock.
    """

    __slots__ = ("__weakref__", "_engine", "_sub")

    def __init__(self, engine: ReplayBackbone, sub: _Sub) -> None:
        self._engine = engine
        self._sub = sub

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        engine = self._engine
        if engine._fast_sub is self._sub and not engine._loop_ready:
            # The next record is this stream's alone, in a run already decoded: hand it over
            # without the general machinery (see ReplayBackbone._arm_fast_path).
            row = engine._row
            if row < engine._fast_stop:
                engine._row = row + 1
                position = engine._pos
                engine._pos = position + 1
                engine._clock = engine._seg_clock[position]
                engine._released += 1
                self._sub.delivered += 1
                return engine._fast_records[row - engine._fast_base]  # type: ignore[return-value]
            result = engine._continue(self._sub)
            if result is _WAITING:
                return await engine._wait(self._sub)  # type: ignore[no-any-return]
            if result is _END:
                self._sub.closed = True
                engine._raise_error()
                raise StopAsyncIteration
            if result is not _NEED:
                return result  # type: ignore[no-any-return]
        return await engine._next(self._sub)  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop the stream: it releases the clock and ends (idempotent)."""
        self._engine._close(self._sub)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if not self._sub.closed:
            self._engine._close_later(self._sub)

    @property
    def delivered(self) -> int:
        """Records this stream has yielded."""
        return self._sub.delivered

    def __repr__(self) -> str:
        return f"<ReplayStream {self._sub.name} delivered={self._sub.delivered}>"


@dataclass(frozen=True, slots=True)
class ReplayStatistics:
    """Where a replay stands.

    ``released``: records released (handed to streams or passed over). ``clock_ns``: the
    replay clock (``None`` before the first record). ``lag_s``, ``max_lag_s``,
    ``lag_p99_s``: for a paced replay, how late the records were handed out against the
    schedule (latest, worst, 99th percentile of the last 65,536); ``None`` when not paced.
    ``streams``: records delivered per open stream. ``finished``: the selection is exhausted.
    """

    released: int
    clock_ns: int | None
    lag_s: float | None
    max_lag_s: float | None
    lag_p99_s: float | None
    streams: dict[str, int]
    finished: bool


class ReplayBackbone:
    """A recording played back with the live backbone's interface.

    ``path`` is a recording root (a recorder's ``--out``). ``symbols`` (one, a list, or a
    comma-separated string), ``start`` and ``end`` (aware datetimes or integer nanoseconds on
    the receive clock, ``end`` exclusive) select what is replayed. ``speed``: ``None`` replays
    as fast as the consumers take records; ``1.0`` paces by the recorded receive times;
    ``10`` ten times faster.

    Use as an async context manager, in one task::

        async with ReplayBackbone("data/", symbols="KRW-BTC", speed=None) as replay:
            async for trade in replay.stream_trade("KRW-BTC"):
                ...

    Streams, the replay clock and ``get_*``: see :mod:`replay.engine`. Not reusable after
    closing.

    Raises (on entering):
        RecordingNotFound: ``path`` holds no recording.
        UnsupportedSchemaVersion, RecordingFormatError: a file replay cannot read.
        UnknownSymbol: a selected symbol the recording does not hold.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        symbols: str | Iterable[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        speed: float | None = None,
    ) -> None:
        self._selection = make_selection(path, symbols=symbols, start=start, end=end)
        if speed is not None and (
            isinstance(speed, bool)
            or not isinstance(speed, int | float)
            or not math.isfinite(speed)
            or speed <= 0
        ):
            raise InvalidReplayArgument(
                f"speed must be None (as fast as consumed) or a positive number, not {speed!r}"
            )
        self._speed = None if speed is None else float(speed)
        # A paced replay decodes a few rows at a time, ahead of their schedule.
        self._window: int | None = None if speed is None else _PACED_WINDOW
        self._phase = "new"
        self._plan: Plan | None = None
        self._known: tuple[str, ...] = ()
        self._stack: AsyncExitStack | None = None
        self._tg: asyncio.TaskGroup | None = None
        self._prefetch: Prefetch | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._prefetch_task: asyncio.Task[None] | None = None
        self._state = ClockState()
        # Position in the replay order.
        self._seg: Segment | None = None
        self._seg_clock: list[int] = []
        self._run_i = 0
        self._row = 0
        self._pos = 0
        self._state_row = 0
        self._source_done = False
        self._ended = False
        self._error: BaseException | None = None
        self._clock: int | None = None
        self._first_clock: int | None = None
        self._next_clock: int | None = None
        self._released = 0
        # Streams and the baton.
        self._joined: list[_Sub] = []
        self._version = 0
        self._run_targets: list[_Sub] = []
        self._targets_version = -1
        self._targets: dict[tuple[str, str | None], list[_Sub]] = {}
        self._fast_sub: _Sub | None = None
        self._fast_stop = 0
        self._fast_base = 0
        self._fast_records: list[Record] = []
        self._log: list[tuple[Chunk, int, int]] = []
        self._log_rows = 0
        self._pending: deque[_Sub] = deque()
        self._pending_record: Record | None = None
        self._holder: _Sub | None = None
        self._driving = False
        self._task_subs: dict[asyncio.Task[Any], _Sub] = {}
        self._baton = asyncio.Event()
        self._finished = asyncio.Event()
        # Pacing.
        self._lags: deque[float] = deque(maxlen=_LAGS_KEPT)
        self._max_lag: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_ready: Sized = _NOT_SEEN

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._phase != "new":
            raise ReplayClosed("a ReplayBackbone opens once: make a new one to replay again")
        self._phase = "opening"
        self._loop = asyncio.get_running_loop()
        ready = _ready_queue_of(self._loop)
        self._loop_ready = _NOT_SEEN if ready is None else ready
        try:
            self._plan = await asyncio.to_thread(plan, self._selection)
            recorded = await asyncio.to_thread(recorded_symbols, self._selection.root)
            wanted = self._selection.symbols
            for symbol in sorted(wanted or ()):
                if symbol not in recorded:
                    raise UnknownSymbol(symbol, recorded)
            self._known = tuple(s for s in recorded if wanted is None or s in wanted)
            self._stack = AsyncExitStack()
            self._tg = await self._stack.enter_async_context(asyncio.TaskGroup())
            the_plan = self._plan
            self._prefetch = Prefetch(
                lambda: segments(the_plan, REPLAYED_DATASETS), depth=_PREFETCH_DEPTH
            )
            self._prefetch_task = self._tg.create_task(self._prefetch.run())
            await self._fetch()
            if self._seg is not None:
                self._first_clock = self._seg_clock[0]
            if self._speed is not None:
                self._spawn(self._paced())
        except BaseException:
            self._phase = "closed"
            await self._shutdown()
            raise
        self._phase = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End every stream and stop reading. Safe to call twice. Call it from the task that
        opened the replay (``async with`` does)."""
        if self._phase == "closed":
            return
        self._phase = "closed"
        self._finish()
        await self._shutdown()

    async def _shutdown(self) -> None:
        if self._prefetch is not None:
            self._prefetch.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        # A driver task, owned by the replay's task group, cancelled on close.
        assert self._tg is not None
        task = self._tg.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _require_open(self) -> Plan:
        if self._phase != "open" or self._plan is None:
            raise ReplayClosed(
                "the replay is not open: use it inside 'async with ReplayBackbone(...)'"
            )
        return self._plan

    # -- streams ------------------------------------------------------------------------

    def _symbols(self, symbols: str | Iterable[str] | None) -> frozenset[str] | None:
        self._require_open()
        if symbols is None:
            return None
        chosen = parse_symbols(symbols)
        for symbol in chosen:
            if symbol not in self._known:
                raise UnknownSymbol(symbol, self._known)
        return frozenset(chosen)

    def _stream(
        self,
        name: str,
        datasets: Iterable[str],
        symbols: str | Iterable[str] | None,
        timeframe: str | None = None,
    ) -> ReplayStream[Any]:
        chosen = self._symbols(symbols)
        return ReplayStream(self, _Sub(name, frozenset(datasets), chosen, timeframe))

    def stream_ticker(self, symbols: str | Iterable[str]) -> ReplayStream[TickerData]:
        """Return a stream of the tickers of ``symbols`` (a symbol or a list); it ends when
        the selection does.

        Raises:
            UnknownSymbol: a symbol not recorded or not selected (a ``ValueError``).
            ReplayClosed: the replay is not open.
        """
        return self._stream(f"ticker({symbols!r})", ("ticker",), symbols)

    def stream_trade(self, symbols: str | Iterable[str]) -> ReplayStream[TradeData]:
        """Return a stream of the trades of ``symbols``, each once, in recorded order.

        Raises:
            UnknownSymbol: a symbol not recorded or not selected (a ``ValueError``).
            ReplayClosed: the replay is not open.
        """
        return self._stream(f"trade({symbols!r})", ("trade",), symbols)

    def stream_orderbook(self, symbols: str | Iterable[str]) -> ReplayStream[OrderbookData]:
        """Return a stream of the orderbook snapshots of ``symbols``.

        Raises:
            UnknownSymbol: a symbol not recorded or not selected (a ``ValueError``).
            ReplayClosed: the replay is not open.
        """
        return self._stream(f"orderbook({symbols!r})", ("orderbook",), symbols)

    def stream_candle(
        self, symbols: str | Iterable[str], timeframe: str = "1m"
    ) -> ReplayStream[CandleData]:
        """Return a stream of the ``timeframe`` candles of ``symbols`` (updates of a growing
        candle repeat its ``open_time``, the last one wins).

        Raises:
            UnknownSymbol: a symbol not recorded or not selected (a ``ValueError``).
            InvalidReplayArgument: an unknown timeframe.
            ReplayClosed: the replay is not open.
        """
        if timeframe not in CANDLE_TIMEFRAMES:
            raise InvalidReplayArgument(
                f"unknown timeframe {timeframe!r}: expected one of {', '.join(CANDLE_TIMEFRAMES)}"
            )
        return self._stream(f"candle({symbols!r}, {timeframe})", ("candle",), symbols, timeframe)

    def stream_events(self) -> ReplayStream[ConnectionEvent]:
        """Return a stream of the recorded connection, source-switch and gap events.

        Raises:
            ReplayClosed: the replay is not open.
        """
        return self._stream("events", ("events",), None)

    def stream_all(self, channels: Iterable[str] | None = None) -> ReplayStream[Record]:
        """Return one stream of every record of the selection in replay order, events and
        gaps included; ``channels`` (``ticker``, ``trade``, ``orderbook``, ``candle``,
        ``events``) keeps only some.

        Raises:
            InvalidReplayArgument: an unknown channel.
            ReplayClosed: the replay is not open.
        """
        chosen = _channels(channels)
        return self._stream(f"all({','.join(chosen)})", chosen, None)

    # -- the baton ------------------------------------------------------------------------

    async def _next(self, sub: _Sub) -> Any:
        if sub.closed or self._phase == "closed":
            sub.closed = True
            raise StopAsyncIteration
        if self._phase != "open":
            raise ReplayClosed("the replay is not open: iterate its streams inside 'async with'")
        if self._ended:
            self._close(sub)
            self._raise_error()
            raise StopAsyncIteration
        task = asyncio.current_task()
        assert task is not None
        previous = self._task_subs.get(task)
        if previous is not sub:
            if previous is None:
                task.add_done_callback(self._task_done)
            elif previous.joined:
                self._leave(previous)
            self._task_subs[task] = sub
        if not sub.joined:
            sub.joined = True
            self._joined.append(sub)
            self._changed()
        if self._holder is sub:
            self._holder = None
            self._baton.set()
        if self._speed is None and not self._driving and self._holder is None:
            self._driving = True
            try:
                await self._settle()
                result = self._drive(sub)
                while result is _NEED:
                    await self._fetch()
                    await self._settle()
                    result = self._drive(sub)
            except BaseException:
                self._close(sub)
                raise
            finally:
                self._driving = False
            if result is _END:
                sub.closed = True
                self._raise_error()
                raise StopAsyncIteration
            if result is not _WAITING:
                return result
        return await self._wait(sub)

    def _changed(self) -> None:
        # The set of iterated streams changed: recompute targets, leave the fast path.
        self._version += 1
        self._targets.clear()
        self._fast_sub = None

    async def _wait(self, sub: _Sub) -> Any:
        assert self._loop is not None
        waiter = self._loop.create_future()
        sub.waiter = waiter
        try:
            result = await waiter
        except BaseException:
            sub.waiter = None
            self._close(sub)
            raise
        sub.waiter = None
        if result is _END:
            sub.closed = True
            self._raise_error()
            raise StopAsyncIteration
        return result

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _drive(self, sub: _Sub | None) -> Any:
        # Release records until one goes to ``sub`` (returned), or to another stream
        # (_WAITING), or a segment must be fetched (_NEED), or the selection ends (_END).
        # The caller holds self._driving.
        self._fast_sub = None
        while True:
            if (sub is not None and sub.closed) or self._ended:
                return _END
            found = self._next_delivery(_INF)
            if found is _NEED:
                return _NEED
            if found is _END:
                self._finish()
                return _END
            target, record = cast(tuple[_Sub, Record], found)
            if target is sub:
                self._holder = sub
                sub.delivered += 1
                self._arm_fast_path(sub)
                return record
            if self._hand(target, record):
                return _WAITING

    async def _settle(self) -> None:
        # The join rule: before the replay moves on, every other task that is ready to run
        # runs (until none is, at most _SETTLE_PASSES passes of the event loop), so a stream
        # joins where its consumer's code puts it, whatever the reader's timing.
        ready = self._loop_ready
        if ready is _NOT_SEEN:
            await asyncio.sleep(0)
            return
        passes = 0
        while ready and passes < _SETTLE_PASSES:
            await asyncio.sleep(0)
            passes += 1

    def _continue(self, sub: _Sub) -> Any:
        # The fast path's run is over: ``sub``, the holder, comes back; release the next
        # record as _next would, without its bookkeeping (nothing changed since).
        self._holder = None
        self._driving = True
        try:
            return self._drive(sub)
        except BaseException:
            self._close(sub)
            raise
        finally:
            self._driving = False

    def _arm_fast_path(self, sub: _Sub) -> None:
        # When the rest of the current run goes to ``sub`` alone, its next records can be
        # handed over by ReplayStream.__anext__ directly, from the decoded window.
        if self._pending or sub.timeframe is not None or self._run_targets != [sub]:
            return
        seg = self._seg
        if seg is None or self._run_i >= len(seg.runs):
            return
        chunk, _, stop = seg.runs[self._run_i]
        cached = chunk.decoded
        if cached is None or not cached[0] <= self._row < cached[1]:
            return
        self._fast_sub = sub
        self._fast_base = cached[0]
        self._fast_stop = min(stop, cached[1])
        self._fast_records = cached[2]

    async def _helper_drive(self) -> None:
        # Drive for the waiting streams when no consumer is in __anext__ to do it.
        try:
            await self._settle()
            result = self._drive(None)
            while result is _NEED:
                await self._fetch()
                await self._settle()
                result = self._drive(None)
        finally:
            self._driving = False

    def _hand(self, target: _Sub, record: Record) -> bool:
        waiter = target.waiter
        if waiter is None or waiter.done():
            self._close(target)
            return False
        waiter.set_result(record)
        target.delivered += 1
        self._holder = target
        self._fast_sub = None
        return True

    def _leave(self, sub: _Sub) -> None:
        # The stream stops holding the clock (its task moved on, or it closed).
        if sub.joined:
            sub.joined = False
            self._joined.remove(sub)
            self._changed()
        if self._holder is sub:
            self._holder = None
            self._kick()

    def _close(self, sub: _Sub) -> None:
        sub.closed = True
        waiter = sub.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(_END)
        self._leave(sub)

    def _close_later(self, sub: _Sub) -> None:
        # From __del__: never touch the engine's state mid-operation; do it on the loop.
        loop = self._loop
        if loop is None or loop.is_closed():
            sub.closed = True
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._close, sub)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        sub = self._task_subs.pop(task, None)
        if sub is not None:
            self._leave(sub)

    def _kick(self) -> None:
        # The baton is free: keep the replay moving for the streams waiting for it.
        self._baton.set()
        if (
            self._speed is not None
            or self._driving
            or self._holder is not None
            or self._ended
            or self._phase != "open"
        ):
            return
        if any(s.waiter is not None and not s.waiter.done() for s in self._joined):
            self._driving = True
            self._spawn(self._helper())

    async def _helper(self) -> None:
        try:
            await self._helper_drive()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # deliver the failure to the consumers, never to the group
            self._fail(exc)

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._finish()

    def _finish(self) -> None:
        self._fast_sub = None
        self._sync_state()
        self._ended = True
        for sub in list(self._joined):
            waiter = sub.waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(_END)
        self._baton.set()
        self._finished.set()

    # -- the replay order, one record at a time ----------------------------------------------

    async def _fetch(self) -> None:
        assert self._prefetch is not None
        self._fast_sub = None
        item = await self._prefetch.get()
        if item is DONE:
            self._source_done = True
            self._seg = None
        elif isinstance(item, Failed):
            self._source_done = True
            self._seg = None
            self._error = item.error
        else:
            assert isinstance(item, Segment)
            self._seg = item
            self._seg_clock = item.clock.tolist()
            self._run_i = 0
            self._pos = 0
            self._row = self._state_row = item.runs[0][1] if item.runs else 0
            self._targets_version = -1

    def _next_delivery(self, limit: int) -> object:
        # The next (stream, record) to hand out, or _NEED (fetch a segment), _END, or _WAIT
        # (the next record's clock is beyond ``limit``; its clock is in self._next_clock).
        while True:
            pending = self._pending
            while pending:
                sub = pending.popleft()
                if sub.joined:
                    return sub, self._pending_record
            seg = self._seg
            if seg is None:
                if self._source_done:
                    if self._error is not None:
                        raise self._error
                    return _END
                return _NEED
            runs = seg.runs
            if self._run_i >= len(runs):
                self._seg = None
                continue
            chunk, _, stop = runs[self._run_i]
            row = self._row
            if row >= stop:
                if row > self._state_row:
                    self._log.append((chunk, self._state_row, row))
                    self._log_rows += row - self._state_row
                    if len(self._log) >= _LOG_RUNS or self._log_rows >= _LOG_ROWS:
                        self._flush_log()
                self._run_i += 1
                if self._run_i < len(runs):
                    self._row = self._state_row = runs[self._run_i][1]
                    self._targets_version = -1
                continue
            if self._targets_version != self._version:
                key = (chunk.dataset, chunk.symbol)
                targets = self._targets.get(key)
                if targets is None:
                    targets = self._targets[key] = [s for s in self._joined if s.wants(chunk)]
                self._run_targets = targets
                self._targets_version = self._version
            clock = self._seg_clock[self._pos]
            if clock > limit:
                self._next_clock = clock
                return _WAIT
            targets = self._run_targets
            if not targets:
                count = stop - row
                if limit != _INF:
                    clocks = seg.clock[self._pos : self._pos + count]
                    count = int(np.searchsorted(clocks, limit, side="right"))
                self._row += count
                self._pos += count
                self._released += count
                self._clock = self._seg_clock[self._pos - 1]
                continue
            self._row = row + 1
            self._pos += 1
            self._released += 1
            self._clock = clock
            record = row_record(chunk, row, self._window)
            if len(targets) == 1 and targets[0].timeframe is None:
                return targets[0], record
            takers = [s for s in targets if s.accepts(record)]
            if not takers:
                continue
            if len(takers) > 1:
                pending.extend(takers[1:])
                self._pending_record = record
            return takers[0], record

    def _flush_log(self) -> None:
        # Hand the runs released since the last flush to the get_* state.
        if self._log:
            self._state.apply_many(self._log)
            self._log = []
            self._log_rows = 0

    def _sync_state(self) -> None:
        # Bring the get_* state up to the rows released so far.
        self._flush_log()
        seg = self._seg
        if seg is None or self._run_i >= len(seg.runs):
            return
        chunk = seg.runs[self._run_i][0]
        if self._row > self._state_row:
            self._state.apply(chunk, self._state_row, self._row)
            self._state_row = self._row

    # -- pacing ---------------------------------------------------------------------------

    async def _paced(self) -> None:
        try:
            await self._paced_loop()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # deliver the failure to the consumers, never to the group
            self._fail(exc)

    async def _paced_loop(self) -> None:
        assert self._speed is not None and self._loop is not None
        loop = self._loop
        speed = self._speed
        self._driving = True
        await asyncio.sleep(0)  # let consumers started together join first
        first = self._first_clock
        if first is None:
            self._finish()
            return
        self._warm_up()
        start = loop.time()
        while True:
            if self._holder is not None:
                self._baton.clear()
                await self._baton.wait()
                continue
            limit = first + int((loop.time() - start) * speed * 1e9)
            found = self._next_delivery(limit)
            if found is _NEED:
                await self._fetch()
                continue
            if found is _END:
                self._finish()
                return
            if found is _WAIT:
                assert self._next_clock is not None
                due = start + (self._next_clock - first) / speed / 1e9
                self._decode_ahead()
                await asyncio.sleep(max(0.0, due - loop.time()))
                continue
            target, record = cast(tuple[_Sub, Record], found)
            assert self._clock is not None
            lag = loop.time() - (start + (self._clock - first) / speed / 1e9)
            self._lags.append(lag)
            self._max_lag = lag if self._max_lag is None else max(self._max_lag, lag)
            self._hand(target, record)

    def _warm_up(self) -> None:
        # Before the schedule starts, decode the first rows of each dataset of the first
        # segment: a dataset's first decode pays one-time costs (Arrow's kernels on first
        # use, 10-30 ms) that would otherwise make the first records late.
        seg = self._seg
        if seg is None:
            return
        seen: set[str] = set()
        for chunk, start, _ in seg.runs:
            if chunk.dataset not in seen:
                seen.add(chunk.dataset)
                row_record(chunk, start, self._window)
                if len(seen) == len(REPLAYED_DATASETS):
                    return

    def _decode_ahead(self) -> None:
        # While waiting for the next record's time, decode it, so that it leaves on time.
        seg = self._seg
        if seg is None or self._run_i >= len(seg.runs):
            return
        chunk, _, stop = seg.runs[self._run_i]
        if self._row < stop:
            row_record(chunk, self._row, self._window)

    # -- requests, as of the replay clock ------------------------------------------------------

    def _symbol(self, symbol: str) -> str:
        self._require_open()
        if not isinstance(symbol, str) or symbol not in self._known:
            raise UnknownSymbol(str(symbol), self._known)
        return symbol

    @property
    def clock_ns(self) -> int | None:
        """The replay clock: the clock of the last record released (``None`` before)."""
        return self._clock

    async def get_ticker(
        self, symbol: str, strategy: object = None, realtime: bool = False
    ) -> TickerData:
        """Return the latest ticker of ``symbol`` released as of the replay clock
        (``strategy`` and ``realtime`` are accepted for compatibility and ignored).

        Raises:
            UnknownSymbol: a symbol not recorded or not selected.
            NotYetReplayed: no ticker of ``symbol`` released yet; iterate a stream first.
        """
        self._sync_state()
        ticker = self._state.ticker(self._symbol(symbol))
        if ticker is None:
            raise NotYetReplayed(self._not_yet("ticker", symbol))
        return ticker

    async def get_orderbook(self, symbol: str) -> OrderbookData:
        """Return the latest orderbook of ``symbol`` released as of the replay clock.

        Raises:
            UnknownSymbol: a symbol not recorded or not selected.
            NotYetReplayed: no orderbook of ``symbol`` released yet; iterate a stream first.
        """
        self._sync_state()
        book = self._state.orderbook(self._symbol(symbol))
        if book is None:
            raise NotYetReplayed(self._not_yet("orderbook", symbol))
        return book

    async def get_trades(
        self,
        symbol: str,
        count: int = 100,
        *,
        to: datetime | None = None,
        days_ago: int | None = None,
    ) -> list[TradeData]:
        """Return up to ``count`` of the latest trades of ``symbol`` released as of the replay
        clock, newest first (as the live backbone), those before ``to`` when given.

        Raises:
            UnknownSymbol: a symbol not recorded or not selected.
            InvalidReplayArgument: ``count`` outside 1..1000 (replay keeps the latest 1000
                trades per market), a naive ``to``, or ``days_ago`` (a replay answers as of
                its clock only).
        """
        symbol = self._symbol(symbol)
        _check_count(count, TRADES_KEPT, "trades")
        if days_ago is not None:
            raise InvalidReplayArgument(
                "days_ago is not available in a replay: it answers as of its clock; "
                "use to= or scan() for older trades"
            )
        self._sync_state()
        if to is None:
            return self._state.trades(symbol, count)
        _check_aware(to)
        kept = [t for t in self._state.trades(symbol, TRADES_KEPT) if t.trade_timestamp < to]
        return kept[:count]

    async def get_candles(
        self, symbol: str, timeframe: str, count: int = 200, *, to: datetime | None = None
    ) -> list[CandleData]:
        """Return up to ``count`` candles of ``symbol`` and ``timeframe`` as of the replay
        clock (each ``open_time`` in its latest released state), newest first, those opened
        before ``to`` when given.

        Raises:
            UnknownSymbol: a symbol not recorded or not selected.
            InvalidReplayArgument: unknown timeframe, ``count`` outside 1..1000, naive ``to``.
        """
        symbol = self._symbol(symbol)
        if timeframe not in CANDLE_TIMEFRAMES:
            raise InvalidReplayArgument(
                f"unknown timeframe {timeframe!r}: expected one of {', '.join(CANDLE_TIMEFRAMES)}"
            )
        _check_count(count, CANDLES_KEPT, "candles")
        self._sync_state()
        candles = self._state.candles(symbol, timeframe)
        if to is not None:
            _check_aware(to)
            candles = [c for c in candles if c.open_time < to]
        return candles[:count]

    async def get_markets(self) -> list[Market]:
        """Return the markets recorded in the selection as of the replay clock: the selected
        symbols of the sessions started by then (by their manifests; sessions without one
        count from their data), sorted by symbol. Names come from a manifest's ``markets``
        entry when the recorder kept one, else they are empty strings.

        Raises:
            ReplayClosed: the replay is not open.
        """
        the_plan = self._require_open()
        self._sync_state()
        now = self._clock if self._clock is not None else self._first_clock
        known = set(self._known)
        found: set[str] = set(self._state.symbols)
        names: dict[str, dict[str, Any]] = {}
        manifests = {info.session_id for info in the_plan.sessions}
        for info in the_plan.sessions:
            if info.started_ns is None or (now is not None and info.started_ns <= now):
                found.update(info.symbols)
            for market in info.markets:
                if isinstance(market.get("symbol"), str):
                    names[market["symbol"]] = market
        sessions_in_data = set().union(*(parts.session_ids for parts in the_plan.parts.values()))
        if sessions_in_data - manifests:
            found |= known
        out = []
        for symbol in sorted(found & known):
            quote, _, base = symbol.partition("-")
            entry = names.get(symbol, {})
            out.append(
                Market(
                    symbol=symbol,
                    korean_name=str(entry.get("korean_name", "")),
                    english_name=str(entry.get("english_name", "")),
                    quote_currency=quote,
                    base_currency=base,
                    warning=bool(entry.get("warning", False)),
                    caution=tuple(str(c) for c in entry.get("caution", ())),
                )
            )
        return out

    def _not_yet(self, what: str, symbol: str) -> str:
        clock = self._clock
        when = "before the first record" if clock is None else f"at clock {clock}"
        return (
            f"no {what} of {symbol} has been replayed yet ({when}): iterate a stream to "
            "advance the replay, then ask again"
        )

    # -- the rest -------------------------------------------------------------------------

    async def digest(self) -> str:
        """Return the SHA-256 digest of the selection's records in replay order (every
        record ``stream_all()`` yields, from the start of the selection, whatever the replay
        clock); see :mod:`replay.canonical` for the canonical form. Reads off the loop.

        Raises:
            ReplayClosed: the replay is not open.
            RecordingFormatError: a file cannot be read.
        """
        the_plan = self._require_open()
        return await asyncio.to_thread(_digest_of_plan, the_plan, REPLAYED_DATASETS)

    async def wait_finished(self) -> None:
        """Wait until the selection is exhausted or the replay closed (a paced replay's clock
        runs by itself; an unpaced one advances only as its streams are read)."""
        await self._finished.wait()

    def statistics(self) -> ReplayStatistics:
        """Return where the replay stands (cheap)."""
        lags = sorted(self._lags)
        p99 = lags[min(len(lags) - 1, int(0.99 * len(lags)))] if lags else None
        paced = self._speed is not None
        return ReplayStatistics(
            released=self._released,
            clock_ns=self._clock,
            lag_s=(self._lags[-1] if self._lags else 0.0) if paced else None,
            max_lag_s=(self._max_lag or 0.0) if paced else None,
            lag_p99_s=(p99 or 0.0) if paced else None,
            streams={s.name: s.delivered for s in self._joined},
            finished=self._ended,
        )


def _check_count(count: int, most: int, what: str) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= most:
        raise InvalidReplayArgument(
            f"count must be an integer from 1 to {most} (replay keeps the latest {most} "
            f"{what} per market), not {count!r}"
        )


def _check_aware(moment: datetime) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise InvalidReplayArgument(
            f"to must be an aware datetime (e.g. tzinfo=UTC), not {moment!r}"
        )


def _channels(channels: Iterable[str] | str | None) -> tuple[str, ...]:
    if channels is None:
        return REPLAYED_DATASETS
    items = channels.split(",") if isinstance(channels, str) else list(channels)
    chosen = []
    for item in items:
        name = item.strip()
        if name not in REPLAYED_DATASETS:
            raise InvalidReplayArgument(
                f"unknown channel {name!r}: expected some of {', '.join(REPLAYED_DATASETS)}"
            )
        if name not in chosen:
            chosen.append(name)
    if not chosen:
        raise InvalidReplayArgument("channels is empty: name at least one, e.g. 'trade'")
    return tuple(chosen)


def _digest_of_plan(the_plan: Plan, datasets: Iterable[str]) -> str:
    digest = Digest()
    wanted = set(datasets)
    for segment in segments(the_plan, REPLAYED_DATASETS):
        for chunk, start, stop in segment.runs:
            if chunk.dataset in wanted:
                for item in row_records(chunk, start, stop):
                    digest.update(item)
    return digest.hexdigest()


def replay_digest(
    path: Path | str,
    *,
    symbols: str | Iterable[str] | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    channels: Iterable[str] | str | None = None,
) -> str:
    """Return the digest of a selection without opening a replay (blocking; see
    :meth:`ReplayBackbone.digest`). ``channels`` keeps only some datasets (the digest of that
    subsequence).

    Raises:
        RecordingNotFound, RecordingFormatError: as :class:`ReplayBackbone`.
        InvalidReplayArgument: a malformed argument.
    """
    selection = make_selection(path, symbols=symbols, start=start, end=end)
    return _digest_of_plan(plan(selection), _channels(channels))
