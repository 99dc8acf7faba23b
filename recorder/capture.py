"""The live recorder: a running backbone's streams, events and REST snapshots to a recording.

``async with Recorder(backbone, out, config=RecorderConfig(symbols=("KRW-BTC",))):`` opens a
:class:`~recorder.session.RecordingSession` on ``out`` (lock, recovery of a crashed session's
journal, manifests), then captures until the block ends:

- one consumer per channel for the recorded symbols, each record given to the session in the
  order it is taken from the backbone (that order is ``seq``); trades are checked once more
  against ``(symbol, sequential_id)``;
- the backbone's :class:`~backbone.models.ConnectionEvent` stream into ``events``;
- periodic REST snapshots into ``rest_*`` with their request times, paced within
  ``rest_requests_per_s`` per endpoint group;
- after the recorder's own downtime, the trades missed since the last recorded one, or since
  the start of a trade gap the previous run left open (as far as Upbit's history reaches),
  and ``events`` saying what was and was not covered; the trades recorded in the minute
  before each symbol's last one are remembered, so the new stream does not record them twice;
- with ``quote``, a periodic re-read of the market list: new listings join; delisted markets
  leave the recorded set (a consumer whose markets all left is closed; one still carrying
  live markets keeps its subscription until the recorder restarts);
- with ``raw``, every raw frame and REST body from the :class:`~recorder.raw.RawTap`.

Leaving the block stops capturing, then flushes and publishes everything and releases the
directory. An error of the storage (:class:`~recorder.errors.StorageError`) or of the
backbone ends the block and is raised from it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from backbone.client import MarketDataBackbone
from backbone.config import BackboneConfig
from backbone.errors import BackboneError, UpbitAPIError
from backbone.models import ConnectionEvent, EventKind, Market, MarketRecord, TradeData
from backbone.upbit.rest import RestClient
from recorder.backfill import (
    RecordedTail,
    earliest_reachable,
    open_trade_gap_starts,
    previous_session_end_ns,
    recorded_tail,
    recorded_trade_ids,
)
from recorder.config import REST_GROUP_LIMIT_PER_S, RecorderConfig
from recorder.dedupe import TradeDeduper
from recorder.errors import RecorderError
from recorder.raw import RawTap
from recorder.rows import RestSnapshot
from recorder.session import RecordingSession
from recorder.sink import OnRecord, SinkStatistics

__all__ = ["Recorder", "RecorderStatistics"]

_log = logging.getLogger(__name__)
_BACKFILL_CONCURRENCY = 4
# Trades recorded this long before a symbol's newest one are remembered at a restart, so the
# new stream's first trades (its snapshot, the first REST sync) are not recorded twice.
_RESTART_DEDUPE = timedelta(seconds=60)
_REST_TRADES = 20
_REST_CANDLES = 3
_REST_BATCH = 50  # symbols per ticker/orderbook snapshot request (keeps the URL short)


@dataclass(frozen=True, slots=True)
class RecorderStatistics:
    """A snapshot for status lines and metrics.

    ``accepted``: records accepted per dataset. ``last_record_age_s``: seconds since each
    channel last delivered. ``open_gaps``: gaps detected and not yet closed;
    ``unrepaired_gaps``: gaps reported as lost. ``bytes_written``: journal plus Parquet.
    """

    session_id: str
    symbols: int
    accepted: dict[str, int]
    last_record_age_s: dict[str, float | None]
    reconnects: int
    open_gaps: int
    unrepaired_gaps: int
    duplicates_dropped: int
    backfilled_trades: int
    rest_snapshots: int
    rest_errors: int
    bytes_written: int
    sink: SinkStatistics


class Recorder:
    """Record ``backbone`` into ``out``; use as an async context manager.

    ``on_record(record, seq)`` is called for each record as it is accepted (keep it quick:
    it runs on the event loop). With ``config.raw``, give the same ``raw_tap`` to the
    backbone as its ``raw_sink``. ``clock_ns`` should be the backbone's clock.

    Raises (on entry):
        RecordingLocked: another recorder writes ``out``.
        UnknownSymbolError: a configured symbol is not listed (from the backbone).
        ValueError: ``config.raw`` without a ``raw_tap``.
    """

    def __init__(
        self,
        backbone: MarketDataBackbone,
        out: Path | str,
        *,
        config: RecorderConfig,
        on_record: OnRecord | None = None,
        raw_tap: RawTap | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        if config.raw and raw_tap is None:
            raise ValueError(
                "config.raw needs a RawTap, given to the backbone as raw_sink and here as raw_tap"
            )
        self._backbone = backbone
        self._out = Path(out)
        self._config = config
        self._on_record = on_record
        self._raw_tap = raw_tap if config.raw else None
        self._clock_ns = clock_ns
        self._session: RecordingSession | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._stack = contextlib.AsyncExitStack()
        self._state = "new"
        self._symbols: set[str] = set()
        self._recorded: set[str] = set()  # every symbol recorded in this session
        self._markets: dict[str, Market] = {}
        self._groups: list[tuple[frozenset[str], list[asyncio.Task[None]]]] = []
        self._dedupe = TradeDeduper(config.dedupe_window_s)
        self._last_record: dict[str, float] = {}
        self._open_gaps = 0
        self._unrepaired = 0
        self._backfilled = 0
        self._rest_snapshots = 0
        self._rest_errors = 0
        self._background: set[asyncio.Task[None]] = set()
        self._rest: RestClient | None = None
        self.backfill_done = asyncio.Event()
        """Set once the start-up backfill has finished (or was not needed)."""

    @property
    def session_id(self) -> str:
        """The id of the recording session."""
        return self._require().session_id

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols recorded now."""
        return tuple(sorted(self._symbols))

    def _require(self) -> RecordingSession:
        if self._session is None:
            raise RuntimeError("the recorder is not open: use it in `async with`")
        return self._session

    async def __aenter__(self) -> Recorder:
        if self._state != "new":
            raise RuntimeError("a Recorder is used once: create a new one")
        self._state = "open"
        config = self._config
        if config.symbols:
            symbols = list(config.symbols)
            self._learn(await self._described_markets(), symbols)
        else:
            listed = await self._listed()
            symbols = [m.symbol for m in listed]
            self._learn(listed, symbols)
        self._symbols = set(symbols)
        session = RecordingSession(
            self._out,
            storage=config.storage,
            on_record=self._on_record,
            symbols=tuple(sorted(symbols)),
            channels=config.channels,
            settings=config.as_settings(),
            markets=self._market_entries(),
            clock_ns=self._clock_ns,
        )
        await session.__aenter__()
        self._session = session
        try:
            if config.rest_snapshot_interval_s > 0:
                self._rest = await self._stack.enter_async_context(self._reference_client())
            self._tasks = await self._stack.enter_async_context(asyncio.TaskGroup())
            if self._raw_tap is not None:
                self._raw_tap.attach(session.put_nowait)
            previous_end_ns = await asyncio.to_thread(
                previous_session_end_ns, self._out, session.session_id
            )
            tails: dict[str, RecordedTail] = {}
            if previous_end_ns is not None and "trade" in config.channels:
                tails = await asyncio.to_thread(
                    recorded_tail, self._out, sorted(symbols), _RESTART_DEDUPE
                )
                for symbol, tail in tails.items():
                    self._dedupe.remember(symbol, tail.ids)
            self._start_group(frozenset(symbols))
            self._spawn(self._events(), "recorder-events")
            if config.rest_snapshot_interval_s > 0:
                for channel in config.channels:
                    self._spawn(self._shadow(channel), f"recorder-rest-{channel}")
            if config.quote:
                self._spawn(self._refresh_markets(), "recorder-markets")
            if previous_end_ns is None:
                self.backfill_done.set()
            else:
                self._spawn(
                    self._after_downtime(sorted(symbols), previous_end_ns, tails), "backfill"
                )
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop capturing, flush and publish everything, release the directory (idempotent).

        Raises:
            StorageError: the final writes failed (the journal keeps the rest).
            BackboneError: a stream failed (raised once everything accepted is stored).
        """
        if self._state != "open":
            return
        self._state = "closed"
        if self._raw_tap is not None:
            self._raw_tap.detach()
        failure: BaseException | None = None
        for task in list(self._background):
            task.cancel()
        try:
            await self._stack.__aexit__(None, None, None)
        except BaseExceptionGroup as group:
            failure = _first_leaf(group)
        try:
            if self._session is not None:
                await self._session.aclose()
        except BaseException as exc:
            failure = failure or exc
        if failure is not None:
            raise failure

    def _reference_client(self) -> RestClient:
        # The snapshots' own client and budget: their share of each group, whatever the
        # backbone's REST traffic (the backbone's budget must leave it free).
        backbone = self._backbone.config
        share = self._config.rest_share_per_s
        if backbone.rest_requests_per_s + share > REST_GROUP_LIMIT_PER_S:
            _log.warning(
                "the backbone may send %d REST requests per second per group and the reference "
                "snapshots %d: more than Upbit's %d; build the backbone with "
                "RecorderConfig.backbone_config() (rest_requests_per_s=%d)",
                backbone.rest_requests_per_s,
                share,
                REST_GROUP_LIMIT_PER_S,
                self._config.backbone_rest_requests_per_s,
            )
        return RestClient(
            self._backbone.session.rest.base_url,
            config=BackboneConfig(
                rest_requests_per_s=share,
                rest_timeout_s=backbone.rest_timeout_s,
                rest_retries=backbone.rest_retries,
            ),
            clock_ns=self._clock_ns,
            raw_sink=self._raw_tap,
        )

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        if self._tasks is None:
            raise RuntimeError("the recorder's task group is not running")
        task = self._tasks.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def accepted(self) -> dict[str, int]:
        """Records accepted so far per dataset (cheaper than :meth:`statistics`: for polling)."""
        return self._require().statistics().accepted

    def statistics(self) -> RecorderStatistics:
        """Counters now (cheap; call it for every status line)."""
        sink = self._require().statistics()
        now = time.monotonic()
        try:
            reconnects = self._backbone.statistics().reconnects
        except BackboneError:
            reconnects = 0
        return RecorderStatistics(
            session_id=self.session_id,
            symbols=len(self._symbols),
            accepted=sink.accepted,
            last_record_age_s={
                channel: now - last if (last := self._last_record.get(channel)) else None
                for channel in self._config.channels
            },
            reconnects=reconnects,
            open_gaps=self._open_gaps,
            unrepaired_gaps=self._unrepaired,
            duplicates_dropped=self._dedupe.duplicates,
            backfilled_trades=self._backfilled,
            rest_snapshots=self._rest_snapshots,
            rest_errors=self._rest_errors,
            bytes_written=sink.journal_bytes + sink.parquet_bytes,
            sink=sink,
        )

    # -- capture -------------------------------------------------------------------------

    async def _listed(self) -> list[Market]:
        quote = (self._config.quote or "").upper()
        markets = await self._backbone.get_markets()
        chosen = [m for m in markets if m.quote_currency.upper() == quote]
        if not chosen:
            raise RecorderError(f"no market is listed with quote currency {quote!r}")
        return chosen

    async def _described_markets(self) -> list[Market]:
        # The names of explicitly chosen symbols are a courtesy: recording goes on without.
        try:
            return await self._backbone.get_markets()
        except BackboneError as exc:
            _log.warning("could not fetch the market list (no names in the manifest): %s", exc)
            return []

    def _learn(self, markets: Iterable[Market], symbols: Iterable[str]) -> None:
        # Remember how the exchange describes the recorded symbols, for the session manifest.
        wanted = set(symbols)
        self._markets.update((m.symbol, m) for m in markets if m.symbol in wanted)
        self._recorded |= wanted

    def _market_entries(self) -> tuple[dict[str, Any], ...]:
        return tuple(
            {**asdict(self._markets[s]), "caution": list(self._markets[s].caution)}
            for s in sorted(self._recorded)
            if s in self._markets
        )

    def _start_group(self, symbols: frozenset[str]) -> None:
        tasks = [
            self._spawn(self._consume(channel, symbols), f"recorder-{channel}")
            for channel in self._config.channels
        ]
        self._groups.append((symbols, tasks))

    def _stream(self, channel: str, symbols: Iterable[str]) -> AsyncGenerator[MarketRecord, None]:
        backbone = self._backbone
        chosen = sorted(symbols)
        if channel == "ticker":
            return backbone.stream_ticker(chosen)
        if channel == "trade":
            return backbone.stream_trade(chosen)
        if channel == "orderbook":
            return backbone.stream_orderbook(chosen)
        return backbone.stream_candle(chosen, self._config.candle_timeframe)

    async def _consume(self, channel: str, symbols: frozenset[str]) -> None:
        # The hot path: a few operations per record, no coroutine unless the sink is full.
        sink = self._require().sink
        put_nowait, room = sink.put_nowait, sink.room
        first_time = self._dedupe.first_time
        last = self._last_record
        monotonic = time.monotonic
        stream = self._stream(channel, symbols)
        async with contextlib.aclosing(stream):
            async for record in stream:
                if type(record) is TradeData and not first_time(
                    record.symbol, record.sequential_id
                ):
                    continue
                last[channel] = monotonic()
                if room.is_set():
                    put_nowait(record)
                else:
                    await sink.put(record)

    async def _events(self) -> None:
        put = self._require().put
        stream = self._backbone.stream_events()
        async with contextlib.aclosing(stream):
            async for event in stream:
                self._count_gap(event)
                await put(event)

    def _count_gap(self, event: ConnectionEvent) -> None:
        if event.kind is EventKind.GAP_DETECTED:
            self._open_gaps += 1
        elif event.kind is EventKind.GAP_REPAIRED:
            self._open_gaps = max(0, self._open_gaps - 1)
        elif event.kind is EventKind.GAP_UNREPAIRED:
            self._open_gaps = max(0, self._open_gaps - 1)
            self._unrepaired += 1

    async def _shadow(self, channel: str) -> None:
        # One channel's reference snapshots: every interval, the whole symbol list in
        # batches (ticker, orderbook) or the next symbols in turn (trade, candle), paced at
        # the configured share of the channel's rate-limit group.
        config = self._config
        interval_s = config.rest_snapshot_interval_s
        pace_s = 1.0 / config.rest_requests_per_s
        batched = channel in ("ticker", "orderbook")
        turn = 0
        while True:
            round_started = time.monotonic()
            symbols = sorted(self._symbols)
            if batched:
                requests = [
                    symbols[i : i + _REST_BATCH] for i in range(0, len(symbols), _REST_BATCH)
                ]
            else:
                count = min(len(symbols), max(1, int(interval_s * config.rest_requests_per_s)))
                requests = [[symbols[(turn + k) % len(symbols)]] for k in range(count)]
                turn += count
            for batch in requests:
                sent = time.monotonic()
                await self._snapshot(channel, batch)
                await asyncio.sleep(max(0.0, pace_s - (time.monotonic() - sent)))
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - round_started)))

    async def _snapshot(self, channel: str, symbols: list[str]) -> None:
        rest = self._rest
        if rest is None:
            raise RuntimeError("the recorder's REST client is not open")
        start_ns = self._clock_ns()
        try:
            if channel == "ticker":
                records: list[MarketRecord] = list(await rest.ticker(symbols))
            elif channel == "orderbook":
                records = list(await rest.orderbook(symbols))
            elif channel == "trade":
                records = list(await rest.trades(symbols[0], count=_REST_TRADES))
            else:
                records = list(
                    await rest.candles(
                        symbols[0], self._config.candle_timeframe, count=_REST_CANDLES
                    )
                )
        except UpbitAPIError as exc:
            self._rest_errors += 1
            if len(symbols) > 1 and not exc.retryable:
                # One symbol of the batch (a market delisted meanwhile) fails the whole request:
                # halve the batch until the others get through again.
                half = len(symbols) // 2
                await self._snapshot(channel, symbols[:half])
                await self._snapshot(channel, symbols[half:])
                return
            _log.info("REST snapshot of %s %s failed: %s", channel, ",".join(symbols), exc)
            return
        except BackboneError as exc:
            self._rest_errors += 1
            _log.info("REST snapshot of %s %s failed: %s", channel, ",".join(symbols), exc)
            return
        end_ns = self._clock_ns()
        put = self._require().put
        for record in records:
            self._rest_snapshots += 1
            await put(RestSnapshot(record=record, request_start_ns=start_ns, request_end_ns=end_ns))

    async def _refresh_markets(self) -> None:
        while True:
            await asyncio.sleep(self._config.market_refresh_interval_s)
            try:
                markets = await self._listed()
            except (BackboneError, RecorderError) as exc:
                _log.warning("could not refresh the market list: %s", exc)
                continue
            listed = {m.symbol for m in markets}
            added = listed - self._symbols
            removed = self._symbols - listed
            if removed:
                _log.warning("markets delisted, no longer recorded: %s", ", ".join(sorted(removed)))
                self._symbols -= removed
                for symbols, tasks in list(self._groups):
                    if not symbols & self._symbols:
                        for task in tasks:
                            task.cancel()
                        self._groups.remove((symbols, tasks))
            if added:
                _log.warning("markets listed, now recorded: %s", ", ".join(sorted(added)))
                self._symbols |= added
                self._start_group(frozenset(added))
            self._learn(markets, listed)
            self._require().describe(
                symbols=tuple(sorted(self._recorded)), markets=self._market_entries()
            )

    async def _after_downtime(
        self, symbols: list[str], previous_end_ns: int, tails: dict[str, RecordedTail]
    ) -> None:
        try:
            await self._downtime_events(symbols, previous_end_ns, tails)
        finally:
            self.backfill_done.set()

    async def _downtime_events(
        self, symbols: list[str], previous_end_ns: int, tails: dict[str, RecordedTail]
    ) -> None:
        put = self._require().put
        config = self._config
        start_ns = self._clock_ns()
        for channel in config.channels:
            if channel == "trade" and config.backfill:
                continue
            await put(
                ConnectionEvent(
                    kind=EventKind.GAP_UNREPAIRED,
                    source="websocket",
                    received_ns=start_ns,
                    channel=channel,
                    symbols=tuple(symbols),
                    start_ns=previous_end_ns,
                    end_ns=start_ns,
                    cause="recorder_downtime",
                    detail="the recorder was not running; past states cannot be fetched",
                )
            )
        if "trade" in config.channels and config.backfill:
            await self._backfill(symbols, previous_end_ns, start_ns, tails)

    async def _backfill(
        self,
        symbols: list[str],
        previous_end_ns: int,
        start_ns: int,
        tails: dict[str, RecordedTail],
    ) -> None:
        put = self._require().put
        # A trade gap a stopped session left open starts before its newest recorded trade.
        opened = await asyncio.to_thread(open_trade_gap_starts, self._out, symbols)
        reach = earliest_reachable(
            datetime.fromtimestamp(start_ns / 1e9, tz=UTC), self._config.backfill_max_days
        )
        gate = asyncio.Semaphore(_BACKFILL_CONCURRENCY)
        recovered: dict[str, int] = {}
        lost: list[ConnectionEvent] = []

        async def one(symbol: str) -> None:
            tail = tails[symbol]
            last = tail.last
            start = min(last.trade_timestamp, opened.get(symbol, last.trade_timestamp))
            since = max(start, reach)
            async with gate:
                try:
                    trades = await self._backbone.fetch_trades_since(
                        symbol,
                        since,
                        after_sequential_id=last.sequential_id,
                    )
                except BackboneError as exc:
                    _log.warning("backfill of %s failed: %s", symbol, exc)
                    trades = None
            # the ids read at start-up cover the usual case; an open gap reaching further back
            # needs the older parts
            known = (
                tail.ids
                if since >= tail.since
                else await asyncio.to_thread(recorded_trade_ids, self._out, symbol, since)
            )
            count = 0
            for trade in trades or ():
                if trade.sequential_id in known:
                    continue
                if self._dedupe.first_time(symbol, trade.sequential_id):
                    await put(trade)
                    count += 1
            if trades is not None:
                recovered[symbol] = count
            self._backfilled += count
            if trades is None or start < reach:
                first = trades[0].trade_timestamp if trades else None
                lost.append(
                    ConnectionEvent(
                        kind=EventKind.GAP_UNREPAIRED,
                        source="rest",
                        received_ns=self._clock_ns(),
                        channel="trade",
                        symbols=(symbol,),
                        start_ns=previous_end_ns,
                        end_ns=start_ns,
                        exchange_start=start,
                        exchange_end=first or reach,
                        cause="recorder_downtime",
                        detail=(
                            "the backfill failed"
                            if trades is None
                            else "older than Upbit's trade history reaches"
                        ),
                    )
                )

        async with asyncio.TaskGroup() as group:
            for symbol in tails:
                group.create_task(one(symbol))
        if recovered:
            await put(
                ConnectionEvent(
                    kind=EventKind.GAP_REPAIRED,
                    source="rest",
                    received_ns=self._clock_ns(),
                    channel="trade",
                    # every symbol REST covered, whether it lacked trades or not: this closes
                    # the trade gaps a stopped session left open for them
                    symbols=tuple(sorted(recovered)),
                    start_ns=previous_end_ns,
                    end_ns=start_ns,
                    cause="recorder_downtime",
                    rows_recovered=sum(recovered.values()),
                    detail=f"backfilled {len(recovered)} symbols since their last recorded trade",
                )
            )
        for event in lost:
            self._unrepaired += 1
            await put(event)


def _first_leaf(group: BaseExceptionGroup) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_leaf(exc)
        return exc
    return group
