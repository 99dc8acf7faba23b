"""The session: every connection, poller and repair task of one backbone, and the rules
that move each stream between the WebSocket and REST.

How a stream is served (``AUTO``):

- Each wanted (stream key, symbol) is *live* once a WebSocket slot carrying it has been
  acknowledged by the server (a frame arrived after the subscription request). Live symbols
  are served by the socket.
- A wanted symbol that is not live is served by REST polling, marked ``source="rest"``:
  tickers and orderbooks are polled in batches, candles per symbol, trades from the trade
  ledger's horizon forward (``cursor`` paging), every ``poll_interval_s``.
- Trades are de-duplicated on ``(symbol, sequential_id)`` whatever their source. When a
  symbol's socket comes back, its trades are fetched from REST up to the present, again
  until REST has confirmed past the first trade the new socket delivered (a trade made
  between the first fetch and the subscription taking effect reaches neither otherwise), so
  the switch neither loses nor repeats a trade; every ``reconcile_interval_s`` each live
  trade symbol is compared with REST, and trades the socket never delivered are delivered
  late, marked ``source="rest"``. What REST cannot reach is reported, never skipped quietly.

Events (``ConnectionEvent``) describe all of it: ``connected``, ``disconnected``,
``reconnected`` (per slot, ``source="websocket"``, ``channel`` = the slot's data kind);
``source_switched`` (``source`` = the channel now serving, per stream key); for trades
``gap_detected`` when a symbol loses its socket, ``gap_repaired`` when REST has filled it
up to that first trade (``rows_recovered``: trades REST delivered meanwhile; a backbone
closed before then leaves the gap open) or when a reconciliation delivered
trades the socket missed, ``gap_unrepaired`` for an interval REST could not cover
(``exchange_start``..``exchange_end``); ``records_dropped`` for keep-newest buffers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

from backbone.config import BackboneConfig, ChannelStrategy
from backbone.errors import (
    BackboneError,
    ClosedError,
    ProtocolError,
    UnknownSymbolError,
    UpbitAPIError,
)
from backbone.ledger import TradeLedger
from backbone.memory import can_release, release_freed_memory
from backbone.models import (
    CandleData,
    ConnectionEvent,
    EventKind,
    Market,
    MarketRecord,
    OrderbookData,
    RawFrame,
    Source,
    TickerData,
    TradeData,
)
from backbone.policy import SlidingWindow
from backbone.router import ChannelMetrics, ChannelRouter
from backbone.streams import StreamHub, Subscriber
from backbone.upbit.protocol import MAX_TRADES, MAX_TRADES_DAYS_AGO, WS_TIMEFRAMES
from backbone.upbit.protocol._wire import datetime_to_ms, ms_to_datetime
from backbone.upbit.protocol.messages import convert_ws, decode_ws_message
from backbone.upbit.protocol.status import Status, SubscriptionList
from backbone.upbit.protocol.trade import WsTrade, WsTradeSimple, trade_from_ws
from backbone.upbit.rest import RestClient
from backbone.upbit.ws import SlotState, WebSocketManager

__all__ = ["HealthReport", "SessionManager", "TradePage"]

log = logging.getLogger(__name__)

_KINDS = ("ticker", "trade", "orderbook", "candle")
_BATCH = 50  # symbols per ticker/orderbook REST call (keeps URLs short)
_EVENT_BACKLOG = 10_000  # events waiting for the pump; beyond it the oldest are dropped
_SYNCING = float("inf")  # a trade symbol's due time while its sync runs


def _kind_of(key: str) -> str:
    return "candle" if key.startswith("candle.") else key


def _ws_served(key: str) -> bool:
    return not key.startswith("candle.") or key[7:] in WS_TIMEFRAMES


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What :meth:`SessionManager.health_check` found."""

    websocket_up: bool
    rest_up: bool
    live: dict[str, tuple[str, ...]]
    on_rest: dict[str, tuple[str, ...]]
    last_message_age_s: dict[str, float]


@dataclass(frozen=True, slots=True)
class TradePage:
    """Trades found paging back from now to ``stop_ms`` (newest first); ``reached`` is False
    when the page budget or Upbit's 7-day reach ran out first, ``oldest_ms`` is then the
    earliest exchange time covered."""

    trades: list[TradeData]
    reached: bool
    oldest_ms: int | None


@dataclass(slots=True)
class _Outage:
    start_ns: int
    exchange_start_ms: int | None
    recovered: int = 0
    cause: str = ""


@dataclass(slots=True)
class _CatchUp:
    # A trade symbol whose socket came back: REST syncs it (grace 0) until it has confirmed
    # past the first trade the new socket delivered (``first_ws_ms``). ``urgent``: the next
    # sync skips the reconciliation budget (the first one, and the first after that trade
    # came); the others wait their turn like any reconciliation.
    first_ws_ms: int | None = None
    urgent: bool = True


@dataclass(slots=True)
class _Counters:
    websocket: dict[str, int] = field(default_factory=dict)
    rest: dict[str, int] = field(default_factory=dict)
    malformed_frames: int = 0
    ws_error_frames: int = 0
    trades_repaired: int = 0
    gaps_unrepaired: int = 0
    events_dropped: int = 0
    task_failures: int = 0
    memory_releases: int = 0

    def count_rest(self, key: str, n: int = 1) -> None:
        self.rest[key] = self.rest.get(key, 0) + n

    @property
    def published(self) -> dict[str, dict[str, int]]:
        """Records published per stream key and source."""
        return {
            key: {"websocket": self.websocket.get(key, 0), "rest": self.rest.get(key, 0)}
            for key in {**self.websocket, **self.rest}
        }


def _offer(
    targets: tuple[Subscriber[MarketRecord], ...], record: MarketRecord
) -> Awaitable[None] | None:
    # Hand ``record`` to each buffer that takes it now; the rest are awaited in order.
    blocked: list[Subscriber[MarketRecord]] | None = None
    for sub in targets:
        if not sub.put_nowait(record):
            if blocked is None:
                blocked = [sub]
            else:
                blocked.append(sub)
    return None if blocked is None else _put_all(blocked, record)


async def _put_all(subs: list[Subscriber[MarketRecord]], record: MarketRecord) -> None:
    for sub in subs:
        await sub.put(record)


class MarketCatalog:
    """The market list, cached and refreshed, used to reject unknown symbols before Upbit's
    WebSocket silently ignores them."""

    def __init__(self, rest: RestClient, refresh_s: float) -> None:
        self._rest = rest
        self._refresh_s = refresh_s
        self._markets: dict[str, Market] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> list[Market]:
        """Fetch the list now."""
        async with self._lock:
            return await self._fetch()

    async def _fetch(self) -> list[Market]:
        markets = await self._rest.markets()
        self._markets = {m.symbol: m for m in markets}
        self._fetched_at = time.monotonic()
        return markets

    def _stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at > self._refresh_s

    async def markets(self) -> list[Market]:
        """The cached list, fetched when missing or older than the refresh interval (one
        fetch however many callers ask at once)."""
        if self._stale():
            async with self._lock:
                if self._stale():
                    return await self._fetch()
        return list(self._markets.values())

    async def check(self, symbols: str | Iterable[str]) -> tuple[str, ...]:
        """Return the symbols, de-duplicated in order, after checking each is listed.

        Raises:
            UnknownSymbolError: a symbol Upbit does not list (checked again against a fresh
                list first, so a new listing is found).
            InvalidArgumentError: no symbol at all.
        """
        from backbone.errors import InvalidArgumentError

        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        if not wanted:
            raise InvalidArgumentError("give at least one symbol, e.g. 'KRW-BTC'")
        for symbol in wanted:
            if not isinstance(symbol, str):
                raise InvalidArgumentError(f"symbols are strings like 'KRW-BTC', not {symbol!r}")
        await self.markets()
        unknown = [s for s in wanted if s not in self._markets]
        if unknown and self._fetched_at is not None and time.monotonic() - self._fetched_at > 5:
            await self.refresh()
            unknown = [s for s in wanted if s not in self._markets]
        if unknown:
            raise UnknownSymbolError(unknown[0], len(self._markets))
        return tuple(dict.fromkeys(wanted))

    async def refresh_forever(self) -> None:
        """Refresh the list every ``refresh_s`` (run as a task)."""
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except BackboneError as exc:
                log.warning("market list refresh failed: %s", exc)


class SessionManager:
    """Owns every task of one backbone (one ``asyncio.TaskGroup``) and the state that decides
    which channel serves each stream. Use as an async context manager; not reusable."""

    def __init__(
        self,
        *,
        rest_url: str,
        ws_url: str,
        config: BackboneConfig,
        clock_ns: Callable[[], int] = time.time_ns,
        raw_sink: Callable[[RawFrame], None] | None = None,
    ) -> None:
        self.config = config
        self._clock_ns = clock_ns
        self._raw_sink = raw_sink
        self.rest = RestClient(rest_url, config=config, clock_ns=clock_ns, raw_sink=raw_sink)
        self.ws = WebSocketManager(
            ws_url,
            on_frame=self._on_frame,
            on_state=self._on_slot_state,
            config=config,
            clock_ns=clock_ns,
        )
        self.hub = StreamHub()
        self.ledger = TradeLedger(config.dedup_window_ms)
        self.router = ChannelRouter(config=config, rest=ChannelMetrics(up=True))
        self.catalog = MarketCatalog(self.rest, config.market_refresh_s)
        self.counters = _Counters()
        self._ws_published = self.counters.websocket
        self._ws_message_at = self.router.websocket.last_message_monotonic
        self._strategy = config.stream_strategy
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._state = "unopened"
        self._slot_live: dict[str, dict[str, tuple[str, ...]]] = {}
        self._slot_down_ns: dict[str, int] = {}
        self._slot_ever_live: set[str] = set()
        self._live: dict[str, set[str]] = {}
        self._on_rest: dict[str, set[str]] = {}
        self._outages: dict[str, _Outage] = {}
        self._catch_up: dict[str, _CatchUp] = {}
        self._trade_due: dict[str, float] = {}
        self._pending: dict[str, dict[str, float]] = {}
        self._last_state: dict[str, dict[str, Any]] = {}
        self._changed = asyncio.Event()
        self._verified = asyncio.Condition()
        self._events: deque[ConnectionEvent] = deque()
        self._events_ready = asyncio.Event()
        self._reconcile_window = SlidingWindow(
            max(1, int(config.rest_requests_per_s * config.reconcile_share)), 1.0
        )

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.initialize_all_connections()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.cleanup_all_connections()

    async def initialize_all_connections(self) -> None:
        """Open the REST session, start the task group, the WebSocket slots, the pollers,
        the trade repair loop, the market refresh and the event pump.

        Raises:
            ClosedError: the session was already started.
        """
        if self._state != "unopened":
            raise ClosedError(f"session is {self._state}; create a new backbone")
        self._state = "open"
        await self.rest.__aenter__()
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        if self._strategy is not ChannelStrategy.REST_ONLY:
            self.ws.connect_and_subscribe(self._group)
        self._spawn("events", self._pump_events)
        self._spawn("drops", self._report_drops)
        self._spawn("markets", self.catalog.refresh_forever)
        if self.config.memory_release_s is not None and can_release():
            self._spawn("memory", self._release_memory)
        if self._strategy is not ChannelStrategy.WEBSOCKET_ONLY:
            self._spawn("trades", self._trade_loop)
            for kind in ("ticker", "orderbook", "candle"):
                self._spawn(f"poll:{kind}", lambda k=kind: self._poll_loop(k))  # type: ignore[misc]

    async def _release_memory(self) -> None:
        # Freed memory back to the system now and then, off the event loop.
        interval = self.config.memory_release_s
        assert interval is not None
        while True:
            await asyncio.sleep(interval)
            await asyncio.to_thread(release_freed_memory)
            self.counters.memory_releases += 1

    def _spawn(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        assert self._group is not None
        self._tasks.append(self._group.create_task(self._supervised(name, run), name=name))

    async def _supervised(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        # A bug in one loop must not end a months-long capture: log it, count it, restart.
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.counters.task_failures += 1
                log.exception("backbone task %s failed; restarting in 1 s", name)
                await asyncio.sleep(1.0)

    async def cleanup_all_connections(self) -> None:
        """Stop every task, close every socket and the REST session, end every stream.
        Safe to call twice."""
        if self._state != "open":
            self._state = "closed"
            return
        self._state = "closed"
        self.hub.close()
        for task in self._tasks:
            task.cancel()
        await self.ws.aclose()
        group, self._group = self._group, None
        if group is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await group.__aexit__(None, None, None)
        await self.rest.aclose()

    @property
    def is_open(self) -> bool:
        """True between start and cleanup."""
        return self._state == "open"

    def health_check(self) -> HealthReport:
        """Which streams are on which channel, and how fresh each WebSocket kind is."""
        health = self.router.evaluate_channel_health()
        return HealthReport(
            websocket_up=health["websocket"].up,
            rest_up=health["rest"].healthy,
            live={k: tuple(sorted(v)) for k, v in self._live.items() if v},
            on_rest={k: tuple(sorted(v)) for k, v in self._on_rest.items() if v},
            last_message_age_s=health["websocket"].last_message_age_s,
        )

    # -- subscriptions ------------------------------------------------------------------

    def add_subscriber(self, sub: Subscriber[MarketRecord]) -> None:
        """Route ``sub.key`` records of ``sub.symbols`` to ``sub`` and make sure something
        serves them."""
        if not self.is_open:
            raise ClosedError("the backbone is not open; use it inside 'async with'")
        if self._strategy is ChannelStrategy.AUTO and _ws_served(sub.key):
            live = self._live.get(sub.key, set())
            pending = self._pending.setdefault(sub.key, {})
            deadline = time.monotonic() + self.config.ws_startup_grace_s
            for symbol in sub.symbols - self.hub.wanted(sub.key) - live:
                pending[symbol] = deadline
                if sub.key == "trade":
                    self._trade_due[symbol] = deadline
        self.hub.add(sub)
        self._resubscribe(_kind_of(sub.key))

    def remove_subscriber(self, sub: Subscriber[MarketRecord]) -> None:
        """Stop routing to ``sub``; unsubscribe symbols nobody wants any more."""
        self.hub.remove(sub)
        if self.is_open:
            self._resubscribe(_kind_of(sub.key))
        if sub.key == "trade":
            for symbol in self.ledger.symbols():
                if symbol not in self.hub.wanted("trade"):
                    self.ledger.forget(symbol)
                    self._trade_due.pop(symbol, None)
                    self._outages.pop(symbol, None)
                    self._catch_up.pop(symbol, None)

    def _resubscribe(self, kind: str) -> None:
        keys = [k for k in self.hub.stream_keys() if _kind_of(k) == kind and _ws_served(k)]
        wanted = {k: self.hub.wanted(k) for k in keys}
        if self._strategy is not ChannelStrategy.REST_ONLY:
            self.ws.set_subscriptions(kind, wanted)
        self._update_sources()
        self._changed.set()

    def _rest_targets(self, key: str) -> set[str]:
        wanted = self.hub.wanted(key)
        if self._strategy is ChannelStrategy.WEBSOCKET_ONLY and _ws_served(key):
            return set()
        if self._strategy is ChannelStrategy.REST_ONLY or not _ws_served(key):
            return wanted
        return wanted - self._live.get(key, set()) - self._pending.get(key, {}).keys()

    def _expire_pending(self) -> None:
        # Symbols whose socket did not deliver within the startup grace go to REST.
        now = time.monotonic()
        expired = False
        for key, pending in self._pending.items():
            live = self._live.get(key, set())
            for symbol, deadline in list(pending.items()):
                if deadline <= now or symbol in live:
                    del pending[symbol]
                    expired = True
        if expired:
            self._update_sources()

    def _update_sources(self) -> None:
        # Emit source_switched for every (key, symbols) that changed channel.
        now_ns = self._clock_ns()
        for key in set(self.hub.stream_keys()) | set(self._on_rest):
            before = self._on_rest.get(key, set())
            after = self._rest_targets(key)
            wanted = self.hub.wanted(key)
            to_rest = (after - before) & wanted
            to_ws = (before - after) & wanted
            self._on_rest[key] = after
            channel = _kind_of(key)
            if to_rest and (before or key in self._live or self._ever_served(key)):
                self._emit(
                    EventKind.SOURCE_SWITCHED,
                    "rest",
                    channel,
                    to_rest,
                    now_ns,
                    cause="websocket not serving",
                    detail=key,
                )
            if to_ws:
                self._emit(
                    EventKind.SOURCE_SWITCHED,
                    "websocket",
                    channel,
                    to_ws,
                    now_ns,
                    cause="websocket serving",
                    detail=key,
                )

    def _ever_served(self, key: str) -> bool:
        return key in self.counters.websocket or key in self.counters.rest

    # -- WebSocket side -------------------------------------------------------------------

    def _on_slot_state(self, state: SlotState) -> None:
        if state.phase == "live":
            self._handle_live(state)
        elif state.phase in ("down", "stopped"):
            self.handle_connection_failure(state)

    def _handle_live(self, state: SlotState) -> None:
        # A slot's subscription was acknowledged: its symbols are served by the socket again.
        now_ns = self._clock_ns()
        label = state.label
        symbols = {c for codes in state.codes.values() for c in codes}
        first = label not in self._slot_ever_live
        self._slot_ever_live.add(label)
        was_down = label in self._slot_down_ns
        self._slot_live[label] = dict(state.codes)
        for ws_type, codes in state.codes.items():
            for symbol in codes:
                self._pending.get(ws_type, {}).pop(symbol, None)
        self.router.websocket.up = True
        self.router.websocket.success()
        if first:
            self._emit(
                EventKind.CONNECTED,
                "websocket",
                state.kind,
                symbols,
                now_ns,
                cause="subscribed",
                detail=label,
            )
        elif was_down:
            down_ns = self._slot_down_ns.pop(label)
            self._emit(
                EventKind.RECONNECTED,
                "websocket",
                state.kind,
                symbols,
                now_ns,
                start_ns=down_ns,
                end_ns=now_ns,
                cause="resubscribed",
                detail=label,
            )
        if "trade" in state.codes:
            for symbol in state.codes["trade"]:
                if symbol in self._outages or self.ledger.known(symbol):
                    self._catch_up[symbol] = _CatchUp()
                    self._trade_due[symbol] = 0.0
        self._recompute_live(now_ns, state.cause)

    def handle_connection_failure(self, state: SlotState) -> None:
        """A WebSocket slot went down (or was stopped): record the outage, move its symbols
        to REST polling, open a trade gap for each of its trade symbols, and let the
        connection task reconnect with backoff."""
        now_ns = self._clock_ns()
        label = state.label
        symbols = {c for codes in state.codes.values() for c in codes}
        had = self._slot_live.pop(label, None)
        if state.phase == "down" and label not in self._slot_down_ns:
            if had is not None or label in self._slot_ever_live:
                self._slot_down_ns[label] = now_ns
                self._emit(
                    EventKind.DISCONNECTED,
                    "websocket",
                    state.kind,
                    symbols,
                    now_ns,
                    start_ns=now_ns,
                    cause=state.cause,
                    detail=label,
                )
            self.router.websocket.failure(state.cause)
        if state.phase == "stopped":
            self._slot_down_ns.pop(label, None)
        self.router.websocket.up = bool(self._slot_live)
        self._recompute_live(now_ns, state.cause)

    def _recompute_live(self, now_ns: int, cause: str) -> None:
        live: dict[str, set[str]] = {}
        for codes in self._slot_live.values():
            for ws_type, symbols in codes.items():
                live.setdefault(ws_type, set()).update(symbols)
        lost_trades = self._live.get("trade", set()) - live.get("trade", set())
        self._live = live
        for symbol in sorted(lost_trades & self.hub.wanted("trade")):
            if symbol not in self._outages:
                newest = self.ledger.get(symbol).newest_ms
                self._outages[symbol] = _Outage(now_ns, newest, cause=cause)
                self._emit(
                    EventKind.GAP_DETECTED,
                    "websocket",
                    "trade",
                    {symbol},
                    now_ns,
                    start_ns=now_ns,
                    exchange_start=_dt(newest),
                    cause=f"websocket lost: {cause}",
                )
            self._trade_due[symbol] = 0.0
        self._update_sources()
        self._changed.set()

    def _on_frame(
        self, label: str, payload: bytes | str, received_ns: int
    ) -> Awaitable[None] | None:
        # The hot path of every frame, synchronous: decode, de-duplicate, hand the record to
        # each consumer's buffer. Returns an awaitable only when a block buffer is full (the
        # reader awaits it before reading on), else None.
        if self._raw_sink is not None:
            data = payload.encode() if isinstance(payload, str) else payload
            self._raw_sink(
                RawFrame(source="websocket", endpoint=label, payload=data, received_ns=received_ns)
            )
        try:
            msg = decode_ws_message(payload)
            cls = type(msg)
            if cls is WsTrade or cls is WsTradeSimple:
                trade = trade_from_ws(msg, received_ns, payload)
                return self._ws_trade(trade, msg.trade_timestamp)
            if cls is list:
                records = [convert_ws(m, received_ns, payload) for m in msg]
                return self._ws_records(records)
            if cls is Status or cls is SubscriptionList:
                return None
            return self._ws_state(convert_ws(msg, received_ns, payload))
        except ProtocolError as exc:
            self.counters.malformed_frames += 1
            if self.counters.malformed_frames <= 10 or self.counters.malformed_frames % 1000 == 0:
                raw = exc.raw if isinstance(exc.raw, str | bytes) else ""
                count = self.counters.malformed_frames
                log.warning("malformed frame on %s (%d so far): %s; raw=%r", label, count, exc, raw)
        except UpbitAPIError as exc:
            self.counters.ws_error_frames += 1
            log.warning("error frame on %s: %s", label, exc)
        return None

    def _ws_records(self, records: list[MarketRecord]) -> Awaitable[None] | None:
        # A LIST-format frame: its records in order; once one must wait, the rest wait too.
        for i, record in enumerate(records):
            if type(record) is TradeData:
                pending = self._ws_trade(record, datetime_to_ms(record.trade_timestamp))
            else:
                pending = self._ws_state(record)
            if pending is not None:
                return self._ws_records_after(pending, records[i + 1 :])
        return None

    async def _ws_records_after(self, pending: Awaitable[None], rest: list[MarketRecord]) -> None:
        await pending
        for record in rest:
            more = self._ws_records([record])
            if more is not None:
                await more

    def _ws_trade(self, trade: TradeData, ts_ms: int) -> Awaitable[None] | None:
        if self._catch_up:
            self._note_first_ws_trade(trade.symbol, ts_ms)
        routes = self.hub.routes.get("trade")
        targets = None if routes is None else routes.get(trade.symbol)
        if not targets or not self.ledger.admit_id(trade.symbol, trade.sequential_id, ts_ms):
            return None  # unsubscribed meanwhile, or already delivered
        self._ws_message_at["trade"] = time.monotonic()
        self._ws_published["trade"] = self._ws_published.get("trade", 0) + 1
        return _offer(targets, trade)

    def _note_first_ws_trade(self, symbol: str, ts_ms: int) -> None:
        # The first trade a resubscribed socket delivers for a catching-up symbol (its
        # snapshot, or the first trade made since): the socket serves every trade from it on,
        # so the catch-up is done once REST has confirmed everything before it.
        state = self._catch_up.get(symbol)
        if state is not None and state.first_ws_ms is None:
            state.first_ws_ms = ts_ms
            state.urgent = True
            self._trade_due[symbol] = 0.0
            self._changed.set()

    def _ws_state(self, record: MarketRecord) -> Awaitable[None] | None:
        cls = type(record)
        if cls is TickerData:
            key = "ticker"
        elif cls is OrderbookData:
            key = "orderbook"
        else:
            key = "candle." + record.timeframe  # type: ignore[union-attr]
        self._ws_message_at[key] = time.monotonic()
        self._ws_published[key] = self._ws_published.get(key, 0) + 1
        last = self._last_state.get(key)
        if last is None:
            last = self._last_state[key] = {}
        last[record.symbol] = record
        routes = self.hub.routes.get(key)
        targets = None if routes is None else routes.get(record.symbol)
        if not targets:
            return None
        return _offer(targets, record)

    def _remember(self, key: str, record: MarketRecord) -> bool:
        # Keep the newest record per symbol so a REST poll publishes only what changed.
        by_symbol = self._last_state.setdefault(key, {})
        previous = by_symbol.get(record.symbol)
        if previous is not None and _state_key(previous) == _state_key(record):
            return False
        by_symbol[record.symbol] = record
        return True

    def latest(self, key: str, symbol: str) -> MarketRecord | None:
        """The record last published for ``symbol`` on ``key`` (internal use)."""
        return self._last_state.get(key, {}).get(symbol)

    # -- REST side ------------------------------------------------------------------------

    async def _wait_changed(self, delay_s: float) -> None:
        self._changed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay_s):
                await self._changed.wait()

    async def _poll_loop(self, kind: str) -> None:
        while True:
            self._expire_pending()
            keys = [k for k in self.hub.stream_keys() if _kind_of(k) == kind]
            targets = {k: sorted(self._rest_targets(k)) for k in keys}
            targets = {k: v for k, v in targets.items() if v}
            if not targets:
                await self._wait_changed(self.config.poll_interval_s)
                continue
            started = time.monotonic()
            try:
                for key, symbols in targets.items():
                    await self._poll(key, symbols)
                self.router.rest.success()
            except BackboneError as exc:
                self.router.rest.failure(str(exc))
                log.info("REST poll of %s failed: %s", kind, exc)
                await asyncio.sleep(min(1.0, self.config.poll_interval_s * 4))
            elapsed = time.monotonic() - started
            await self._wait_changed(max(0.0, self.config.poll_interval_s - elapsed))

    async def _poll(self, key: str, symbols: list[str]) -> None:
        records: list[MarketRecord] = []
        if key == "ticker":
            for i in range(0, len(symbols), _BATCH):
                records.extend(await self.rest.ticker(symbols[i : i + _BATCH]))
        elif key == "orderbook":
            for i in range(0, len(symbols), _BATCH):
                records.extend(await self.rest.orderbook(symbols[i : i + _BATCH]))
        else:
            timeframe = key[7:]
            for symbol in symbols:
                # Two candles: the previous one in its final form, and the current one.
                records.extend(reversed(await self.rest.candles(symbol, timeframe, count=2)))
        self.router.rest.latency(self.rest.stats.last_latency_s)
        for record in records:
            if record.symbol in self._rest_targets(key) and self._remember(key, record):
                self.counters.count_rest(key)
                await self.hub.publish(key, record)

    async def _trade_loop(self) -> None:
        while True:
            self._expire_pending()
            wanted = self.hub.wanted("trade")
            if not wanted:
                await self._wait_changed(5.0)
                continue
            now = time.monotonic()
            for symbol in wanted:
                self._trade_due.setdefault(symbol, 0.0)
            symbol = min(wanted, key=lambda s: self._trade_due[s])
            due = self._trade_due[symbol]
            if due > now:
                await self._wait_changed(due - now)
                continue
            # While this sync runs, an outage, a reconnect or a first trade may reset the
            # symbol's due time (to 0): that reset wins over the delay set after it.
            self._trade_due[symbol] = _SYNCING
            delay_s = 1.0  # after a failure (a REST error, or a bug the supervisor restarts)
            try:
                delay_s = await self._sync_one(symbol)
            except BackboneError as exc:
                self.router.rest.failure(str(exc))
                log.info("trade sync of %s failed: %s", symbol, exc)
            finally:
                self._sync_due(symbol, delay_s)

    async def _sync_one(self, symbol: str) -> float:
        # One trade sync of ``symbol`` (a poll, a reconciliation or a catch-up); returns the
        # delay before the next.
        on_ws = self._on_ws_trade(symbol)
        catch_up = self._catch_up.get(symbol)
        if on_ws and (catch_up is None or not catch_up.urgent):
            wait = self._reconcile_window.reserve(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
        await self.sync_trades(symbol, grace_ms=0 if not on_ws or catch_up is not None else None)
        self.router.rest.success()
        on_ws = self._on_ws_trade(symbol)  # the socket may have gone or come meanwhile
        if catch_up is not None and catch_up is self._catch_up.get(symbol) and on_ws:
            return self._catch_up_next_s(symbol, catch_up)
        return self.config.reconcile_interval_s if on_ws else self.config.poll_interval_s

    def _on_ws_trade(self, symbol: str) -> bool:
        live = self._live.get("trade", set())
        return self._strategy is not ChannelStrategy.REST_ONLY and symbol in live

    def _sync_due(self, symbol: str, delay_s: float) -> None:
        # The next sync of ``symbol`` after the one that just ran, unless something reset its
        # due time meanwhile (or no stream wants it any more).
        if self._trade_due.get(symbol) == _SYNCING:
            self._trade_due[symbol] = time.monotonic() + delay_s

    def _catch_up_next_s(self, symbol: str, state: _CatchUp) -> float:
        # A catch-up sync after a reconnect ran. A trade made after it but before the new
        # socket's subscription took effect reaches neither, so the catch-up ends only when
        # REST has confirmed past the first trade the new socket delivered, and so does the
        # outage (its gap stays open until then: a recording stopped meanwhile shows it).
        # Until that trade comes, sync again at the reconciliation pace (its arrival wakes
        # the loop at once); if REST was behind it, again after a poll interval, within the
        # reconciliation budget.
        state.urgent = False
        if state.first_ws_ms is None:
            return self.config.reconcile_interval_s
        verified_ms = self.ledger.get(symbol).verified_ms
        if verified_ms is None or verified_ms < state.first_ws_ms:
            return self.config.poll_interval_s
        self._catch_up.pop(symbol, None)
        self._close_outage(symbol)
        return self.config.reconcile_interval_s

    def _close_outage(self, symbol: str) -> None:
        outage = self._outages.pop(symbol, None)
        if outage is None:
            return
        now_ns = self._clock_ns()
        newest = self.ledger.get(symbol).newest_ms
        self._emit(
            EventKind.GAP_REPAIRED,
            "rest",
            "trade",
            {symbol},
            now_ns,
            start_ns=outage.start_ns,
            end_ns=now_ns,
            exchange_start=_dt(outage.exchange_start_ms),
            exchange_end=_dt(newest),
            rows_recovered=outage.recovered,
            cause=f"websocket back; REST filled the outage ({outage.cause})",
        )

    async def page_trades_back(self, symbol: str, stop_ms: int, max_pages: int) -> TradePage:
        """Page ``symbol``'s trades from now back to ``stop_ms`` (exchange time), crossing
        UTC days with ``days_ago`` as far as Upbit's 7 days reach, at most ``max_pages``
        requests."""
        trades: list[TradeData] = []
        cursor: int | None = None
        days_ago: int | None = None
        for _ in range(max_pages):
            page = await self.rest.trades(
                symbol, count=MAX_TRADES, cursor=cursor, days_ago=days_ago
            )
            trades.extend(page)
            if page and datetime_to_ms(page[-1].trade_timestamp) < stop_ms:
                return TradePage(trades, True, None)
            if len(page) < MAX_TRADES:
                # This UTC day is exhausted: the next older trades are on the previous day.
                if not trades and days_ago is None:
                    # No trade at all today yet: today starts at 00:00 UTC of the clock.
                    now_ms = self._clock_ns() // 1_000_000
                    day_start_ms: int | None = now_ms - now_ms % 86_400_000
                else:
                    day_start_ms = _day_start_ms(page[-1] if page else None, trades)
                if day_start_ms is not None and day_start_ms <= stop_ms:
                    return TradePage(trades, True, None)
                if (days_ago or 0) >= MAX_TRADES_DAYS_AGO:
                    return TradePage(trades, False, _oldest_ms(trades))
                days_ago = (days_ago or 0) + 1
                cursor = None
                continue
            cursor = page[-1].sequential_id
        return TradePage(trades, False, _oldest_ms(trades))

    async def sync_trades(self, symbol: str, *, grace_ms: int | None = None) -> int:
        """Deliver every trade of ``symbol`` REST has and the stream has not, from the
        ledger's verified horizon up to ``grace_ms`` (exchange time) before the newest trade
        REST returned (``None``: the configured reconcile grace). Return how many.

        Raises:
            BackboneError: REST failed; nothing was confirmed, retry later.
        """
        grace = self.config.reconcile_grace_ms if grace_ms is None else grace_ms
        ledger = self.ledger.get(symbol)
        if ledger.verified_ms is None:
            # First sight of the symbol: start from its latest trade, as a snapshot would.
            page = await self.rest.trades(symbol, count=MAX_TRADES)
            if not page:
                return 0
            newest_ms = max(datetime_to_ms(t.trade_timestamp) for t in page)
            first = sorted(
                (t for t in page if datetime_to_ms(t.trade_timestamp) == newest_ms),
                key=_trade_order,
            )
            return await self._deliver_rest_trades(symbol, first, newest_ms)
        horizon = ledger.verified_ms
        found = await self.page_trades_back(symbol, horizon, self.config.reconcile_max_pages)
        if not found.trades:
            return 0
        newest_ms = max(datetime_to_ms(t.trade_timestamp) for t in found.trades)
        cutoff_ms = newest_ms - grace
        floor_ms = horizon
        if not found.reached and found.oldest_ms is not None:
            self.counters.gaps_unrepaired += 1
            now_ns = self._clock_ns()
            self._emit(
                EventKind.GAP_UNREPAIRED,
                "rest",
                "trade",
                {symbol},
                now_ns,
                exchange_start=_dt(horizon),
                exchange_end=_dt(found.oldest_ms),
                cause="REST budget or Upbit's 7-day reach could not cover the interval",
                detail=f"{self.config.reconcile_max_pages} pages of {MAX_TRADES}",
            )
            floor_ms = found.oldest_ms
        missing = sorted(
            (
                t
                for t in found.trades
                if floor_ms <= datetime_to_ms(t.trade_timestamp) <= cutoff_ms
                and not self.ledger.is_duplicate(t)
            ),
            key=_trade_order,
        )
        delivered = await self._deliver_rest_trades(symbol, missing, cutoff_ms)
        in_outage = symbol in self._outages
        if delivered and not in_outage and symbol in self._live.get("trade", set()):
            now_ns = self._clock_ns()
            self._emit(
                EventKind.GAP_REPAIRED,
                "rest",
                "trade",
                {symbol},
                now_ns,
                exchange_start=missing[0].trade_timestamp,
                exchange_end=missing[-1].trade_timestamp,
                rows_recovered=delivered,
                cause="reconciliation: the websocket did not deliver these trades",
            )
        return delivered

    async def _deliver_rest_trades(
        self, symbol: str, trades: list[TradeData], verified_ms: int
    ) -> int:
        delivered = 0
        for trade in trades:
            if self.ledger.admit(trade):
                delivered += 1
                self.counters.count_rest("trade")
                await self.hub.publish("trade", trade)
        self.ledger.confirm(symbol, verified_ms)
        async with self._verified:
            self._verified.notify_all()
        if delivered:
            self.counters.trades_repaired += delivered
            outage = self._outages.get(symbol)
            if outage is not None:
                outage.recovered += delivered
        return delivered

    async def wait_verified(self, symbols: Iterable[str], until_ms: int) -> None:
        """Wait until REST has confirmed that every trade of ``symbols`` before ``until_ms``
        (exchange time) was delivered. Bound it with ``asyncio.timeout``."""
        wanted = tuple(symbols)

        def done() -> bool:
            return all((self.ledger.get(s).verified_ms or 0) >= until_ms for s in wanted)

        async with self._verified:
            await self._verified.wait_for(done)

    # -- events ---------------------------------------------------------------------------

    def _emit(
        self,
        kind: EventKind,
        source: Source,
        channel: str | None,
        symbols: Iterable[str],
        received_ns: int,
        **fields: Any,
    ) -> None:
        event = ConnectionEvent(
            kind=kind,
            source=source,
            received_ns=received_ns,
            channel=channel,
            symbols=tuple(sorted(symbols)),
            **fields,
        )
        log.info("event %s %s %s %s %s", kind, source, channel, event.symbols, event.cause)
        if not self.hub.event_subscribers():
            return
        if len(self._events) >= _EVENT_BACKLOG:
            self._events.popleft()
            self.counters.events_dropped += 1
        self._events.append(event)
        self._events_ready.set()

    async def _pump_events(self) -> None:
        while True:
            while not self._events:
                self._events_ready.clear()
                await self._events_ready.wait()
            await self.hub.publish_event(self._events.popleft())

    async def _report_drops(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            for sub in self.hub.subscribers():
                fresh = sub.dropped - sub.reported_drops
                if fresh:
                    sub.reported_drops = sub.dropped
                    self._emit(
                        EventKind.RECORDS_DROPPED,
                        "websocket",
                        _kind_of(sub.key),
                        sub.symbols,
                        self._clock_ns(),
                        rows_missing=fresh,
                        cause="slow consumer: keep-newest buffer full",
                        detail=sub.key,
                    )

    def live_symbols(self, key: str) -> set[str]:
        """Symbols of ``key`` the WebSocket serves now."""
        return set(self._live.get(key, set()))


def _trade_order(trade: TradeData) -> tuple[datetime, int]:
    return (trade.trade_timestamp, trade.sequential_id)


def _oldest_ms(trades: list[TradeData]) -> int | None:
    return min((datetime_to_ms(t.trade_timestamp) for t in trades), default=None)


def _dt(ms: int | None) -> datetime | None:
    return None if ms is None else ms_to_datetime(ms)


def _day_start_ms(last: TradeData | None, trades: list[TradeData]) -> int | None:
    # The start (00:00 UTC) of the day a short page exhausted, from its trades' dates.
    ref = last if last is not None else (trades[-1] if trades else None)
    if ref is None:
        return None
    day = ref.trade_timestamp.replace(hour=0, minute=0, second=0, microsecond=0)
    return datetime_to_ms(day)


def _state_key(record: MarketRecord) -> Any:
    if type(record) is TickerData:
        return (
            record.trade_timestamp,
            record.acc_trade_volume,
            record.current_price,
            record.volume_24h,
        )
    if type(record) is OrderbookData:
        return (record.bid_prices, record.bid_volumes, record.ask_prices, record.ask_volumes)
    if type(record) is CandleData:
        return (record.open_time, record.close_price, record.volume, record.timestamp)
    return record
