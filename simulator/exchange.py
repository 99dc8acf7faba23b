"""The exchange: one aiohttp server with REST, the WebSocket, the admin API and the emitter."""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from simulator.clock import Clock, ManualClock, RealClock
from simulator.config import ExchangeConfig
from simulator.connection import Connection, Route
from simulator.faults import Fault, Faults
from simulator.firehose import FirehoseHub
from simulator.markets import MarketSpec, build_spec, default_codes
from simulator.model import (
    DAY_MS,
    HOUR_MS,
    Block,
    Candle,
    MarketModel,
    Trade,
    candle_start,
    day_floor,
    last_trades,
    prepare,
    warm_feeds,
)
from simulator.wire import (
    ws_candle,
    ws_error,
    ws_list_subscriptions,
    ws_orderbook,
    ws_ticker,
    ws_trade,
)
from simulator.wsproto import RateWindow, Request, RequestError, parse_request, split_depth

log = logging.getLogger(__name__)

_STATUS_UP = b'{"status":"UP"}'
_HISTORY_WINDOW_DAYS = 7
_STEP_BUDGET_S = 0.01  # the emitter yields to the event loop after this much work
_WARM_AHEAD_MAX_MS = 6 * HOUR_MS  # what one off-loop warm-up covers at most
_REQUESTS_WAITING = 128  # WebSocket requests a connection may have waiting to be applied


@dataclass(frozen=True, slots=True)
class TruthTrade:
    """One trade as the market generated it (``ask_bid`` is ``"ASK"`` or ``"BID"``)."""

    market: str
    sequential_id: int
    trade_price: Decimal
    trade_volume: Decimal
    ask_bid: str
    trade_timestamp: int


class _Feed:
    """The emitter's cursor over one market: next trade to publish, next candle tick."""

    __slots__ = (
        "block",
        "candle_due",
        "code",
        "i",
        "model",
        "order",
        "tick_first",
        "tick_last",
        "version",
    )

    def __init__(self, code: str, model: MarketModel, order: int, after_ms: int) -> None:
        self.code = code
        self.model = model
        self.order = order
        te = after_ms - model.lag
        self.block: Block = model.block(model.block_start(te))
        self.i = bisect_right(self.block.ts, te)
        self.candle_due: int | None = None
        self.tick_first = 0
        self.tick_last = 0
        self.version = 0

    def next_trade_ms(self) -> int:
        model = self.model
        hops = 0
        while self.i >= len(self.block.ts):
            start = self.block.start + self.block.length
            hops += 1
            while model.plan(start).n == 0 and hops < 2000:
                start += model.block_length(start)
                hops += 1
            if hops >= 2000:
                return 1 << 62
            self.block = model.block(start)
            self.i = 0
        return self.block.ts[self.i] + model.lag

    def next_ms(self) -> int:
        t = self.next_trade_ms()
        if self.candle_due is not None and self.candle_due < t:
            return self.candle_due
        return t


class Exchange:
    """A local, protocol-faithful Upbit on one port; use it as an async context manager.

    See the package docstring for the whole interface.
    """

    def __init__(
        self,
        seed: int = 0,
        markets: list[str] | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        clock: Clock | None = None,
        config: ExchangeConfig | None = None,
    ) -> None:
        self.seed = seed
        self.host = host
        self.port = port
        self.clock: Any = clock if clock is not None else RealClock()
        self.config = config if config is not None else ExchangeConfig()
        self.start_ms = self.clock.now_ms()
        self.recent_start_ms = day_floor(self.start_ms) - _HISTORY_WINDOW_DAYS * DAY_MS
        self.history_start_ms = self.recent_start_ms - self.config.history_days * DAY_MS
        self.faults = Faults(self.clock, seed)
        self.faults.on_disconnect = self._fault_disconnect
        self.faults.on_malformed = self._fault_malformed
        self.faults.open_connections = lambda: frozenset(
            c.id for c in self._conns.values() if not c.closed
        )
        self._specs: dict[str, MarketSpec] = {}
        self._models: dict[str, MarketModel] = {}
        self._order: dict[str, int] = {}
        self._delisted: set[str] = set()
        for code in markets if markets is not None else default_codes():
            self.list_market(code)
        self._conns: dict[int, Connection] = {}
        self._closed_conns: list[dict[str, Any]] = []
        self._next_conn = 1
        self._routes: dict[str, dict[str, list[tuple[Connection, Route]]]] = {}
        self._feeds: dict[str, _Feed] = {}
        self._heap: list[tuple[int, int, int, str]] = []
        self.emitted_until = self.start_ms
        self._kick = asyncio.Event()
        self._warm_until = self.start_ms
        self._warm_wanted = asyncio.Event()
        self._connects = RateWindow(self.config.ws_connect_limit_per_s)
        self.stats: dict[str, int] = {
            "ws_connections": 0, "ws_refused": 0, "ws_rate_limited": 0, "ws_idle_closed": 0,
            "ws_slow_closed": 0, "ws_pongs_unsent": 0, "rest_requests": 0, "rest_429": 0,
            "rest_418": 0,
        }  # fmt: skip
        self.firehose = (
            FirehoseHub(self.config.firehose, self.clock, self.model)
            if self.config.firehose is not None
            else None
        )
        self._runner: web.AppRunner | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self._state = "unopened"
        self.rest_url = ""
        self.ws_url = ""
        self.admin_url = ""

    # -- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Exchange:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Bind the port and start serving.

        Raises:
            RuntimeError: the exchange was already started or closed.
        """
        if self._state != "unopened":
            raise RuntimeError(f"this Exchange is {self._state}; create a new one")
        self._state = "open"
        from simulator.admin import add_admin_routes
        from simulator.rest import RestApi

        app = web.Application(client_max_size=1 << 20)
        self.rest = RestApi(self)
        app.router.add_get("/websocket/v1", self._ws_handler)
        app.router.add_route("*", "/v1/{tail:.*}", self.rest.handle)
        add_admin_routes(app, self)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        server: Any = site._server
        self.port = server.sockets[0].getsockname()[1]
        base = f"http://{self.host}:{self.port}"
        self.rest_url = base + "/v1"
        self.ws_url = f"ws://{self.host}:{self.port}/websocket/v1"
        self.admin_url = base + "/_sim"
        self._tasks = asyncio.TaskGroup()
        await self._tasks.__aenter__()
        self._emitter = self._tasks.create_task(self._run_emitter())
        self._warmer = self._tasks.create_task(self._run_warmer())

    async def close(self) -> None:
        """Close every socket and stop serving; safe to call twice."""
        if self._state != "open":
            self._state = "closed"
            return
        self._state = "closed"
        for conn in list(self._conns.values()):
            conn.close(1001, "exchange shutting down")
        self._emitter.cancel()
        self._warmer.cancel()
        if self._tasks is not None:
            await self._tasks.__aexit__(None, None, None)
        if self._runner is not None:
            await self._runner.cleanup()

    # -- markets --------------------------------------------------------------------------

    def list_market(
        self, code: str, *, korean_name: str | None = None, english_name: str | None = None
    ) -> None:
        """List ``code`` (again); its history is generated like any other market's.

        Raises:
            ValueError: ``code`` is not a valid market code.
        """
        spec = build_spec(code, korean_name=korean_name, english_name=english_name)
        self._specs[code] = spec
        self._order.setdefault(code, len(self._order))
        self._delisted.discard(code)
        if code not in self._models:
            self._models[code] = MarketModel(
                spec,
                seed=self.seed,
                recent_start_ms=self.recent_start_ms,
                history_start_ms=self.history_start_ms,
                activity_scale=self.config.activity_scale,
            )

    def delist_market(self, code: str) -> None:
        """Remove ``code`` from the market list: REST answers 404 and its streams stop.

        Raises:
            KeyError: ``code`` is not listed.
        """
        if code not in self._specs:
            raise KeyError(code)
        del self._specs[code]
        self._delisted.add(code)
        self._routes.pop(code, None)
        self._feeds.pop(code, None)

    @property
    def markets(self) -> list[str]:
        """The listed market codes, in market/all order."""
        return list(self._specs)

    def spec(self, code: str) -> MarketSpec:
        return self._specs[code]

    def model(self, code: str) -> MarketModel:
        return self._models[code]

    def is_listed(self, code: str) -> bool:
        return code in self._specs

    def knows(self, code: str) -> bool:
        """Return whether ``code`` was ever listed here (delisted markets keep their truth)."""
        return code in self._models

    # -- truth ----------------------------------------------------------------------------

    def truth_trades(
        self, market: str, from_ms: int | None = None, to_ms: int | None = None
    ) -> list[TruthTrade]:
        """Return every trade ``market`` published in [from_ms, to_ms), by (time, sequential_id).

        ``from_ms`` defaults to the exchange's start, ``to_ms`` to now; trades not yet
        published (exchange time) are never included.

        Raises:
            KeyError: the market was never listed on this exchange.
        """
        return [
            TruthTrade(
                market,
                t.sid,
                Decimal(t.price).scaleb(-8),
                Decimal(t.volume).scaleb(-8),
                "BID" if t.side else "ASK",
                t.ts,
            )
            for t in self.truth_raw(market, from_ms, to_ms)
        ]

    def truth_raw(self, market: str, from_ms: int | None, to_ms: int | None) -> list[Trade]:
        model = self._models[market]
        now = self.clock.now_ms()
        low = self.start_ms if from_ms is None else from_ms
        high = now - model.lag + 1 if to_ms is None else min(to_ms, now - model.lag + 1)
        return list(model.trades_asc(low, high))

    # -- admin views ----------------------------------------------------------------------

    def connections(self) -> list[dict[str, Any]]:
        """Return per-connection counters (open ones, then up to 1,000 closed ones)."""
        return [c.info() for c in self._conns.values()] + list(self._closed_conns)

    def frames_sent(self) -> dict[str, int]:
        """Return data frames written, by channel, over all connections (firehose included)."""
        total: dict[str, int] = {}
        for info in self.connections():
            for channel, n in info["frames_sent"].items():
                total[channel] = total.get(channel, 0) + n
        return total

    # -- settling -------------------------------------------------------------------------

    async def settle(self, timeout_s: float = 60.0) -> None:
        """Emit everything due at the clock's current time and wait until it is on the sockets.

        After sending a subscription, wait for its snapshot (or LIST_SUBSCRIPTIONS reply)
        before relying on settle: requests still in flight from a client are not known yet.
        The event loop stays responsive meanwhile: first-time work runs on a worker thread
        and publishing yields every few milliseconds.

        Raises:
            TimeoutError: the sockets did not take the frames within ``timeout_s``.
        """
        now = self.clock.now_ms()
        async with asyncio.timeout(timeout_s):
            await self._warm(now)
            for _ in iter(lambda: self._step(now), False):
                await asyncio.sleep(0)  # more is due: let the loop serve others meanwhile
            self._check_idle(now)
            for conn in list(self._conns.values()):
                await conn.flushed()

    # -- emitter --------------------------------------------------------------------------

    async def _run_emitter(self) -> None:
        try:
            await self._emit_forever()
        except Exception:
            log.exception("the exchange's emitter failed; WebSocket streams have stopped")
            raise

    async def _emit_forever(self) -> None:
        while True:
            now = self.clock.now_ms()
            if self._feeds and now + HOUR_MS > self._warm_until:
                self._warm_wanted.set()
            if self._step(now):
                await asyncio.sleep(0)  # more is due: let the loop serve others meanwhile
                continue
            # Only once everything due is out: a socket is idle when nothing is due for it.
            self._check_idle(now)
            wake_at = self._heap[0][0] if self._heap else now + 1000
            wake_at = min(wake_at, self._next_idle_deadline(), now + 1000)
            if isinstance(self.clock, ManualClock):
                wake_at = max(wake_at, now + 1)
            self._kick.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep_until(wake_at))
            kicker = asyncio.ensure_future(self._kick.wait())
            try:
                await asyncio.wait((sleeper, kicker), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                kicker.cancel()

    async def _run_warmer(self) -> None:
        # Keeps the streamed markets' next hour generated ahead of the emitter, off the loop.
        while True:
            await self._warm_wanted.wait()
            self._warm_wanted.clear()
            now = max(self.clock.now_ms(), self.emitted_until)
            await self._warm(now - now % HOUR_MS + 2 * HOUR_MS - 1)

    async def _warm(self, until: int) -> None:
        # Generate off the loop what publishing up to ``until`` needs (see model.warm_feeds).
        if until <= self._warm_until or not self._feeds:
            return
        start = max(self._warm_until, self.emitted_until)
        until = min(until, start + _WARM_AHEAD_MAX_MS)
        models = [feed.model for feed in self._feeds.values()]
        try:
            await asyncio.to_thread(warm_feeds, models, start, until)
        except Exception:  # only a cache warm-up: the emitter computes what it needs anyway
            log.exception("warming the streamed markets' next hours failed")
            return
        self._warm_until = max(self._warm_until, until)

    def _next_idle_deadline(self) -> int:
        timeout = int(self.config.idle_timeout_s * 1000)
        deadlines = [c.last_activity_ms + timeout for c in self._conns.values() if not c.closed]
        return min(deadlines, default=1 << 62)

    def _check_idle(self, now: int) -> None:
        timeout = int(self.config.idle_timeout_s * 1000)
        for conn in list(self._conns.values()):
            if not conn.closed and now - conn.last_activity_ms >= timeout:
                self.stats["ws_idle_closed"] += 1
                conn.close(1000, "idle timeout")

    def _push(self, feed: _Feed) -> None:
        feed.version += 1
        heapq.heappush(self._heap, (feed.next_ms(), feed.order, feed.version, feed.code))

    def _ensure_feed(self, code: str) -> None:
        if code not in self._feeds:
            feed = _Feed(code, self._models[code], self._order[code], self.emitted_until)
            self._feeds[code] = feed
            self._push(feed)
            self._warm_until = min(self._warm_until, self.emitted_until)

    def _step(self, until: int) -> bool:
        # Publish every event due at or before ``until`` in (time, market order) order; after
        # _STEP_BUDGET_S of work, stop and return True (more is due).
        heap = self._heap
        deadline = time.perf_counter() + _STEP_BUDGET_S
        done = 0
        while heap and heap[0][0] <= until:
            t, _, version, code = heapq.heappop(heap)
            feed = self._feeds.get(code)
            if feed is None or feed.version != version:
                continue
            if feed.candle_due is not None and feed.candle_due == t and feed.next_trade_ms() > t:
                self._emit_candles(feed, t)
            else:
                self._emit_trade(feed)
            self._push(feed)
            done += 1
            if not done % 16 and time.perf_counter() > deadline:
                self.emitted_until = max(self.emitted_until, min(until, t - 1))
                return True
        self.emitted_until = max(self.emitted_until, until)
        return False

    def _deliver(
        self,
        code: str,
        channel: str,
        routes: list[tuple[Connection, Route]],
        encode: Callable[[Route, bool, int], str],
        event_ms: int,
        message_key: int,
        variant: Callable[[Route], Any] = lambda r: None,
    ) -> None:
        faults = self.faults
        skew_fault = faults.skew(event_ms)
        skew = skew_fault.params["ms"] if skew_fault is not None else 0
        drop_fault = faults.dropping(channel, code, message_key, event_ms)
        delay_fault = faults.delay(channel, event_ms)
        not_before = event_ms + delay_fault.params["ms"] if delay_fault is not None else 0
        cache: dict[tuple[Any, ...], bytes | None] = {}
        delivered = 0
        for conn, route in routes:
            if conn.closed:
                continue
            stall = faults.stalling(conn.id, event_ms)
            if stall is not None:
                stall.count("frames_withheld", code, channel)
                conn.frames_withheld += 1
                continue
            if drop_fault is not None:
                drop_fault.count("frames_dropped", code, channel)
                delivered += 1
                continue
            key = (conn.simple, conn.listed, variant(route))
            payload = cache.get(key, b"")
            if payload == b"":
                text = encode(route, conn.simple, skew)
                payload = cache[key] = (
                    (("[" + text + "]") if conn.listed else text).encode() if text else None
                )
            if payload is None:
                continue
            conn.enqueue(payload, channel, not_before, event_ms)
            delivered += 1
            if delay_fault is not None:
                delay_fault.count("frames_delayed", code, channel)
            if skew_fault is not None:
                skew_fault.count("frames_skewed", code, channel)
        if not delivered:
            return
        if drop_fault is not None:
            drop_fault.count("messages_dropped", code, channel)
            if channel == "trade":
                drop_fault.effects.setdefault("dropped_trades", []).append([code, message_key])
        else:
            if delay_fault is not None:
                delay_fault.count("messages_delayed", code, channel)
            if skew_fault is not None:
                skew_fault.count("messages_skewed", code, channel)

    def _emit_trade(self, feed: _Feed) -> None:
        block, i, model, code = feed.block, feed.i, feed.model, feed.code
        feed.i += 1
        routes = self._routes.get(code)
        if not routes:
            return
        ts = block.ts[i]
        pub = ts + model.lag
        trade_routes = routes.get("trade")
        book_routes = routes.get("orderbook")
        book = model.book_for(block, i) if trade_routes or book_routes else None
        if trade_routes and book is not None:
            trade = model.trade(block, i)
            prev = model.prev_close(day_floor(ts))
            self._deliver(
                code, "trade", trade_routes,
                lambda r, simple, skew: ws_trade(code, trade, prev, book, "REALTIME", skew, simple),
                pub, trade.sid,
            )  # fmt: skip
        ticker_routes = routes.get("ticker")
        if ticker_routes:
            state = model.ticker_for(block, i)
            spec = model.spec
            self._deliver(
                code, "ticker", ticker_routes,
                lambda r, simple, skew: ws_ticker(spec, state, "REALTIME", skew, simple),
                pub, block.sid[i],
            )  # fmt: skip
        if book_routes and book is not None:
            levels = model.supported_levels(block.price[i])

            def encode_book(route: Route, simple: bool, skew: int) -> str:
                if route.level not in levels:
                    return ""
                b = book if not route.level else model.book_for(block, i, route.level)
                return ws_orderbook(code, b, route.depth, "REALTIME", skew, simple)

            self._deliver(
                code, "orderbook", book_routes, encode_book, pub, block.sid[i],
                variant=lambda r: (r.depth, r.level),
            )  # fmt: skip
        if any(k.startswith("candle.") for k in routes):
            if feed.candle_due is None:
                feed.candle_due = -(-pub // 1000) * 1000
                feed.tick_first = ts
            feed.tick_last = ts

    def _emit_candles(self, feed: _Feed, t: int) -> None:
        feed.candle_due = None
        routes = self._routes.get(feed.code)
        if not routes:
            return
        model, code = feed.model, feed.code
        for kind, kind_routes in routes.items():
            if not kind.startswith("candle."):
                continue
            unit = kind[7:]
            cs = candle_start(unit, feed.tick_first)
            last = candle_start(unit, feed.tick_last)
            while cs <= last:
                candle = model.candle_now(unit, cs, t)
                if candle is not None:
                    encode = _candle_encoder(kind, code, candle)
                    self._deliver(code, "candle", kind_routes, encode, t, cs * 1000 + len(unit))
                cs += model_unit_ms(unit)

    # -- faults hooks ---------------------------------------------------------------------

    def _fault_disconnect(self, fault: Fault) -> None:
        closed = []
        for conn in list(self._conns.values()):
            if not conn.closed:
                conn.abort("disconnect fault")
                closed.append(conn.id)
        fault.effects["connections_closed"] = len(closed)
        fault.effects["connection_ids"] = closed

    def _fault_malformed(self, fault: Fault) -> None:
        targets = [c for c in self._conns.values() if not c.closed and c.routes]
        for conn in targets:
            self._inject_malformed(conn, fault)

    def _inject_malformed(self, conn: Connection, fault: Fault) -> None:
        count = fault.params["count"]
        for k in range(count):
            broken = [b'{"type":"trade","code":"KRW-', b"\xff\xfe not json", b'[{"type":"ticker",'][
                k % 3
            ]
            conn.enqueue(broken, "malformed")
        fault.count("frames_malformed", by=count)
        fault.count("by_connection", str(conn.id), by=count)

    # -- WebSocket ------------------------------------------------------------------------

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        now = self.clock.now_ms()
        refuse = self.faults.refusing(now)
        if refuse is not None:
            refuse.count("connections_refused")
            self.stats["ws_refused"] += 1
            return web.Response(status=503, text="refused (refuse_ws fault)")
        if not self._connects.allow():
            self.stats["ws_rate_limited"] += 1
            return web.Response(status=429, text="Too Many Requests")
        ws = web.WebSocketResponse(autoping=False, compress=False, max_msg_size=1 << 20)
        await ws.prepare(request)
        conn = Connection(
            self._next_conn, ws, request, self.clock, self.config.ws_queue_frames, now, self.stats
        )
        self._next_conn += 1
        self._conns[conn.id] = conn
        self.stats["ws_connections"] += 1
        limits = RateWindow(
            self.config.ws_message_limit_per_s, self.config.ws_message_limit_per_min
        )
        requests: asyncio.Queue[str] = asyncio.Queue(_REQUESTS_WAITING)
        try:
            async with asyncio.TaskGroup() as tg:
                sender = tg.create_task(conn.run_sender())
                applier = tg.create_task(self._apply_loop(conn, requests))
                try:
                    await self._read_loop(conn, limits, requests)
                finally:
                    conn.closed = True
                    conn.wake()
                    sender.cancel()
                    applier.cancel()
        finally:
            self._drop_routes(conn)
            self._conns.pop(conn.id, None)
            self._closed_conns.append(conn.info())
            del self._closed_conns[:-1000]
        return ws

    async def _read_loop(
        self, conn: Connection, limits: RateWindow, requests: asyncio.Queue[str]
    ) -> None:
        # Answers pings at once and hands requests, in order, to the connection's applier:
        # a request that needs first-time work must not hold up the pongs behind it. The
        # queue is bounded (_REQUESTS_WAITING; the message rate limits keep it short): when
        # it is full, reading waits.
        ws = conn.ws
        while not conn.closed:
            msg = await ws.receive()
            now = self.clock.now_ms()
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return
            conn.last_activity_ms = max(conn.last_activity_ms, now)
            if msg.type == WSMsgType.PING:
                stall = self.faults.stalling(conn.id, now)
                if stall is not None:
                    stall.count("pongs_withheld")
                elif not await self._pong(conn, msg.data):
                    return
                continue
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            raw = (
                msg.data
                if isinstance(msg.data, str)
                else bytes(msg.data).decode("utf-8", "replace")
            )
            if raw.strip() == "PING":
                if self.faults.stalling(conn.id, now) is None:
                    conn.enqueue(_STATUS_UP, "status")
                continue
            conn.requests += 1
            if not limits.allow():
                conn.violations += 1
                if conn.violations >= self.config.ws_violations_before_close:
                    conn.enqueue(
                        ws_error("I'm a teapot", "too many requests; closing").encode(), "error"
                    )
                    await conn.flushed()
                    conn.close(1008, "message rate limit")
                    return
                conn.enqueue(
                    ws_error("Too Many Requests", "message rate limit exceeded").encode(), "error"
                )
                continue
            await requests.put(raw)

    async def _apply_loop(self, conn: Connection, requests: asyncio.Queue[str]) -> None:
        # Applies a connection's requests in order; their snapshots' first-time work runs on
        # a worker thread, then the subscription is applied at once on the loop.
        while True:
            raw = await requests.get()
            try:
                request = parse_request(raw)
            except RequestError as exc:
                conn.enqueue(ws_error(exc.name, exc.message).encode(), "error")
                continue
            await self._prepare_snapshots(request)
            if not conn.closed:
                await self._apply_request(conn, request)

    async def _prepare_snapshots(self, request: Request) -> None:
        # Generate what the request's snapshots and streams need on a worker thread (a cold
        # subscription to hundreds of markets takes a while); applying it on the loop is then
        # quick.
        if self.firehose is not None:
            return
        snapshots: dict[str, set[str]] = {}
        streams: set[str] = set()
        for sub in request.subs:
            for code in sub.codes:
                market = split_depth(code)[0]
                if market not in self._specs:
                    continue
                if not sub.only_realtime:
                    snapshots.setdefault(market, set()).add(sub.kind)
                if not sub.only_snapshot and market not in self._feeds:
                    streams.add(market)
        if snapshots or streams:
            await asyncio.to_thread(self._warm_for, snapshots, streams, self.emitted_until)

    def _warm_for(self, snapshots: dict[str, set[str]], streams: set[str], asof: int) -> None:
        models = [self._models[m] for m in sorted(snapshots)]
        tickers = [m for m in models if "ticker" in snapshots[m.spec.code]]
        prepare(tickers, asof)
        last_trades([m for m in models if m not in tickers], asof)
        for m in models:
            for kind in snapshots[m.spec.code]:
                if kind.startswith("candle."):
                    m.candles(kind[7:], asof - m.lag + 1, 1, asof)
        warm_feeds([self._models[m] for m in sorted(streams)], asof, asof + HOUR_MS)

    async def _pong(self, conn: Connection, data: bytes) -> bool:
        """Answer a ping frame; return False when the socket is already closing.

        A client that pings and goes away leaves a closing transport: that is counted
        (``stats["ws_pongs_unsent"]``), not an error.
        """
        try:
            await conn.ws.pong(data)
        except ConnectionError:
            self.stats["ws_pongs_unsent"] += 1
            return False
        return True

    def _drop_routes(self, conn: Connection) -> None:
        for route in conn.routes:
            by_kind = self._routes.get(route.market)
            if by_kind is None:
                continue
            entries = by_kind.get(route.kind)
            if entries is not None:
                by_kind[route.kind] = [e for e in entries if e[0] is not conn]
                if not by_kind[route.kind]:
                    del by_kind[route.kind]
            if not by_kind:
                self._routes.pop(route.market, None)
                self._feeds.pop(route.market, None)
        conn.routes = []

    async def _apply_request(self, conn: Connection, request: Request) -> None:
        # Each subscribed (type, code) gets its snapshot as of what has been published and
        # joins the streams at once; a long request yields to the loop between codes.
        if request.format is not None:
            conn.format = request.format
        if request.method == "LIST_SUBSCRIPTIONS" and not request.subs:
            text = ws_list_subscriptions(request.ticket, conn.list_items, conn.simple)
            conn.enqueue(("[" + text + "]" if conn.listed else text).encode(), "list")
            return
        self._drop_routes(conn)
        conn.ticket = request.ticket
        conn.list_items = []
        deadline = time.perf_counter() + _STEP_BUDGET_S
        for sub in request.subs:
            level = sub.level if sub.level is not None else 0
            conn.list_items.append(
                (sub.kind, list(sub.codes), level if sub.kind == "orderbook" else None)
            )
            for requested in sub.codes:
                market, depth = split_depth(requested)
                if sub.kind != "orderbook" and market != requested:
                    continue
                if market not in self._specs:
                    continue
                route = Route(
                    sub.kind, requested, market, min(depth, self.config.orderbook_depth), level
                )
                if self.firehose is not None:
                    conn.routes.append(route)
                    continue
                if not sub.only_realtime:
                    self._snapshot(conn, route, self.emitted_until)
                if not sub.only_snapshot:
                    conn.routes.append(route)
                    self._routes.setdefault(market, {}).setdefault(route.kind, []).append(
                        (conn, route)
                    )
                    self._ensure_feed(market)
                if time.perf_counter() > deadline:
                    self._kick.set()
                    await asyncio.sleep(0)
                    if conn.closed:
                        return
                    deadline = time.perf_counter() + _STEP_BUDGET_S
        if self.firehose is not None:
            if conn.firehose is None:
                conn.firehose = self.firehose.stream_for(conn)
            conn.wake()
            return
        for fault in self.faults.pending_malformed():
            if conn.routes:
                self._inject_malformed(conn, fault)
        self._kick.set()

    def _snapshot(self, conn: Connection, route: Route, asof: int) -> None:
        model = self._models[route.market]
        skew_fault = self.faults.skew(asof)
        skew = skew_fault.params["ms"] if skew_fault is not None else 0
        if self.faults.stalling(conn.id, asof) is not None:
            return
        found = model.last_trade_index(asof - model.lag)
        if found is None:
            return
        block, i = found
        simple = conn.simple
        text = ""
        channel = route.kind
        if route.kind == "trade":
            trade = model.trade(block, i)
            prev = model.prev_close(day_floor(trade.ts))
            text = ws_trade(
                route.market, trade, prev, model.book_for(block, i), "SNAPSHOT", skew, simple
            )
        elif route.kind == "ticker":
            text = ws_ticker(model.spec, model.ticker_for(block, i), "SNAPSHOT", skew, simple)
        elif route.kind == "orderbook":
            if route.level not in model.supported_levels(block.price[i]):
                return
            book = model.book_for(block, i, route.level)
            text = ws_orderbook(route.market, book, route.depth, "SNAPSHOT", skew, simple)
        else:
            channel = "candle"
            unit = route.kind[7:]
            candles = model.candles(unit, asof - model.lag + 1, 1, asof)
            if not candles:
                return
            text = ws_candle(route.kind, route.market, candles[0], "SNAPSHOT", skew, simple)
        conn.enqueue((("[" + text + "]") if conn.listed else text).encode(), channel)


def _candle_encoder(kind: str, code: str, candle: Candle) -> Callable[[Route, bool, int], str]:
    def encode(route: Route, simple: bool, skew: int) -> str:
        return ws_candle(kind, code, candle, "REALTIME", skew, simple)

    return encode


def model_unit_ms(unit: str) -> int:
    """Return the length of a WebSocket candle unit (``1s`` or ``<n>m``) in milliseconds."""
    return 1000 if unit == "1s" else int(unit[:-1]) * 60_000
