"""``MarketDataBackbone``: the one object callers use, live streams and one-off requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self, TypeVar

from backbone.config import UPBIT_REST_URL, UPBIT_WS_URL, BackboneConfig, ChannelStrategy
from backbone.errors import ClosedError, InvalidArgumentError, TransportError
from backbone.models import (
    CandleData,
    ConnectionEvent,
    Market,
    MarketRecord,
    OrderbookData,
    RawFrame,
    Source,
    TickerData,
    TradeData,
)
from backbone.router import ChannelHealth
from backbone.session import SessionManager
from backbone.streams import Overflow, Subscriber, SubscriberStats
from backbone.upbit.protocol import MAX_CANDLES, MAX_TRADES, check_timeframe
from backbone.upbit.protocol._wire import datetime_to_ms

__all__ = ["BackboneStatistics", "MarketDataBackbone", "get_ticker_simple"]

R = TypeVar("R", bound=MarketRecord)

_REALTIME_WAIT_S = 2.0


@dataclass(frozen=True, slots=True)
class BackboneStatistics:
    """A snapshot for status lines and metrics.

    ``streams``: one entry per open ``stream_*`` consumer (``delivered``, ``dropped`` by a
    keep-newest buffer, ``blocked``: times the producer waited on a full block buffer);
    ``events``: the same for ``stream_events`` consumers. ``records``: records published per
    stream key and source. ``last_message_age_s``: seconds since the WebSocket last delivered
    each stream key. ``live`` / ``on_rest``: symbols served by each channel now.
    ``memory_releases``: times freed memory was handed back to the system (see
    ``BackboneConfig.memory_release_s``).
    """

    streams: tuple[SubscriberStats, ...]
    events: tuple[SubscriberStats, ...]
    records: dict[str, dict[str, int]]
    connects: int
    reconnects: int
    failed_connects: int
    stalls: int
    rest_calls: int
    rest_errors: int
    rest_retries: int
    rest_rate_limited: int
    malformed_frames: int
    ws_error_frames: int
    trades_repaired: int
    gaps_unrepaired: int
    duplicates_dropped: int
    events_dropped: int
    last_message_age_s: dict[str, float]
    live: dict[str, tuple[str, ...]]
    on_rest: dict[str, tuple[str, ...]]
    health: dict[Source, ChannelHealth]
    memory_releases: int = 0


class MarketDataBackbone:
    """A hybrid Upbit client: WebSocket streams first, REST whenever the socket is down,
    slow, or not the right tool; one model whatever the source.

    Use as an async context manager::

        async with MarketDataBackbone() as backbone:
            async for trade in backbone.stream_trade(["KRW-BTC", "KRW-ETH"]):
                ...

    ``rest_url`` and ``ws_url`` end in ``/v1`` and ``/websocket/v1`` (api.upbit.com by
    default; the simulator's ``ex.rest_url`` / ``ex.ws_url`` otherwise). ``config`` holds
    every knob (:class:`BackboneConfig`). ``clock_ns`` stamps every ``received_ns`` and event
    time (pass the simulator's clock when it runs scaled, so latencies mean something);
    timeouts, pings and backoff always use the event loop's monotonic time. ``raw_sink``, when
    given, is called with every raw WebSocket frame and REST body as a :class:`RawFrame`
    (synchronously, on the event loop: keep it quick).

    Streams survive disconnects and switch sources by themselves; several consumers may
    stream at once (the backbone keeps the union of their subscriptions). Closing the
    backbone ends every stream. Not reusable after closing.
    """

    def __init__(
        self,
        rest_url: str = UPBIT_REST_URL,
        ws_url: str = UPBIT_WS_URL,
        *,
        config: BackboneConfig | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        raw_sink: Callable[[RawFrame], None] | None = None,
    ) -> None:
        self.config = config or BackboneConfig()
        self._session = SessionManager(
            rest_url=rest_url,
            ws_url=ws_url,
            config=self.config,
            clock_ns=clock_ns,
            raw_sink=raw_sink,
        )

    async def __aenter__(self) -> Self:
        await self._session.initialize_all_connections()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """End every stream and close every connection. Safe to call twice."""
        await self._session.cleanup_all_connections()

    @property
    def session(self) -> SessionManager:
        """The session that owns the tasks (for health checks and tests)."""
        return self._session

    def _require_open(self) -> None:
        if not self._session.is_open:
            raise ClosedError("the backbone is not open; use it inside 'async with'")

    # -- streams ------------------------------------------------------------------------

    async def _stream(
        self, key: str, symbols: str | Iterable[str], capacity: int, policy: Overflow
    ) -> AsyncGenerator[MarketRecord, None]:
        # One generator between the buffer and the caller; a burst already buffered is
        # yielded without waiting (one wake-up per burst, not per record).
        self._require_open()
        if key.startswith("candle."):
            check_timeframe(key[7:])
        checked = await self._session.catalog.check(symbols)
        sub: Subscriber[MarketRecord] = Subscriber(key, checked, capacity, policy)
        self._session.add_subscriber(sub)
        buffer, take = sub.buffer, sub.take
        try:
            while True:
                while buffer:
                    yield take()
                try:
                    await sub.wait()
                except ClosedError:
                    return
        finally:
            self._session.remove_subscriber(sub)

    def stream_ticker(self, symbols: str | Iterable[str]) -> AsyncGenerator[TickerData, None]:
        """Yield tickers of ``symbols`` as they change, from the WebSocket, or from REST
        polling (``source="rest"``) while the socket cannot serve them.

        Keep-newest buffer of ``config.ticker_buffer``: a slow consumer loses the oldest
        tickers (counted in :meth:`statistics`, reported by a ``records_dropped`` event).
        Close the generator (``break``, ``aclose()``) to unsubscribe.

        Raises:
            UnknownSymbolError: a symbol Upbit does not list (a ``ValueError``), when
                iteration starts.
        """
        stream = self._stream("ticker", symbols, self.config.ticker_buffer, Overflow.KEEP_NEWEST)
        return stream  # type: ignore[return-value]

    def stream_trade(self, symbols: str | Iterable[str]) -> AsyncGenerator[TradeData, None]:
        """Yield every trade of ``symbols`` from now on, each once.

        While the socket is down, trades come from REST (``source="rest"``); when it returns,
        the trades in between are fetched by ``cursor`` so none is missing or repeated
        (de-duplicated on ``(symbol, sequential_id)``). Trades the socket silently skipped
        are found by periodic REST reconciliation and yielded late, ``source="rest"``; an
        interval REST could not cover is reported as a ``gap_unrepaired`` event.

        Block-and-count buffer of ``config.trade_buffer``: nothing is dropped; a consumer
        slower than the market holds back the trade socket.

        Raises:
            UnknownSymbolError: a symbol Upbit does not list (a ``ValueError``), when
                iteration starts.
        """
        stream = self._stream("trade", symbols, self.config.trade_buffer, Overflow.BLOCK)
        return stream  # type: ignore[return-value]

    def stream_orderbook(self, symbols: str | Iterable[str]) -> AsyncGenerator[OrderbookData, None]:
        """Yield full orderbook snapshots of ``symbols`` as they change (REST polling while
        the socket cannot serve them). Keep-newest buffer of ``config.orderbook_buffer``.

        Raises:
            UnknownSymbolError: a symbol Upbit does not list (a ``ValueError``), when
                iteration starts.
        """
        stream = self._stream(
            "orderbook", symbols, self.config.orderbook_buffer, Overflow.KEEP_NEWEST
        )
        return stream  # type: ignore[return-value]

    def stream_candle(
        self, symbols: str | Iterable[str], timeframe: str = "1m"
    ) -> AsyncGenerator[CandleData, None]:
        """Yield candles of ``symbols`` as they change; the same ``open_time`` repeats while
        the candle grows (the last one wins). Timeframes up to ``240m`` stream over the
        WebSocket; ``1d`` and longer are always polled from REST. Block-and-count buffer.

        Raises:
            UnknownSymbolError: a symbol Upbit does not list (a ``ValueError``), when
                iteration starts.
            InvalidArgumentError: an unknown timeframe, when iteration starts.
        """
        stream = self._stream(
            f"candle.{timeframe}", symbols, self.config.candle_buffer, Overflow.BLOCK
        )
        return stream  # type: ignore[return-value]

    async def stream_events(self) -> AsyncGenerator[ConnectionEvent, None]:
        """Yield every :class:`ConnectionEvent` from now on: connections, source switches,
        gaps detected / repaired / unrepaired, records dropped.

        Block-and-count buffer of ``config.event_buffer``: store events promptly, a stuck
        events consumer eventually holds back the tasks that report them.
        """
        self._require_open()
        sub: Subscriber[ConnectionEvent] = Subscriber(
            "events", (), self.config.event_buffer, Overflow.BLOCK
        )
        self._session.hub.add_events(sub)
        buffer, take = sub.buffer, sub.take
        try:
            while True:
                while buffer:
                    yield take()
                try:
                    await sub.wait()
                except ClosedError:
                    return
        finally:
            self._session.hub.remove_events(sub)

    # -- one-off requests -----------------------------------------------------------------

    async def get_ticker(
        self,
        symbol: str,
        strategy: ChannelStrategy = ChannelStrategy.AUTO,
        realtime: bool = False,
    ) -> TickerData:
        """The current ticker of ``symbol``.

        REST by default; ``realtime=True`` prefers the WebSocket (the next ticker it
        delivers, within 2 s, else REST unless ``WEBSOCKET_ONLY``).

        Raises:
            UnknownSymbolError: a symbol Upbit does not list.
            TransportError: ``WEBSOCKET_ONLY`` and the socket delivered nothing in time.
        """
        self._require_open()
        (symbol,) = await self._session.catalog.check([symbol])
        channel = self._session.router.choose_optimal_channel("ticker", symbol, realtime, strategy)
        if channel == "websocket":
            ticker = await self._next_from_socket(symbol)
            if ticker is not None:
                return ticker
            if strategy is ChannelStrategy.WEBSOCKET_ONLY:
                raise TransportError(f"no ticker of {symbol} arrived over the WebSocket in time")
        (ticker,) = await self._session.rest.ticker([symbol])
        return ticker

    async def _next_from_socket(self, symbol: str) -> TickerData | None:
        sub: Subscriber[MarketRecord] = Subscriber("ticker", (symbol,), 8, Overflow.KEEP_NEWEST)
        self._session.add_subscriber(sub)
        try:
            async with asyncio.timeout(_REALTIME_WAIT_S):
                while True:
                    record = await sub.get()
                    if record.source == "websocket" and isinstance(record, TickerData):
                        return record
        except (TimeoutError, ClosedError):
            return None
        finally:
            self._session.remove_subscriber(sub)

    async def get_trades(
        self,
        symbol: str,
        count: int = 100,
        *,
        to: datetime | None = None,
        days_ago: int | None = None,
    ) -> list[TradeData]:
        """The ``count`` most recent trades of ``symbol`` (newest first, as Upbit orders
        them), before ``to`` (a time of day, UTC) on the day ``days_ago`` selects; more than
        500 are fetched page by page with ``cursor``.

        Raises:
            UnknownSymbolError: a symbol Upbit does not list.
            InvalidArgumentError: ``count`` < 1 or ``days_ago`` outside 1..7.
        """
        self._require_open()
        if count < 1:
            raise InvalidArgumentError(f"count must be at least 1, not {count}")
        (symbol,) = await self._session.catalog.check([symbol])
        trades: list[TradeData] = []
        cursor: int | None = None
        while len(trades) < count:
            want = min(MAX_TRADES, count - len(trades))
            page = await self._session.rest.trades(
                symbol,
                count=want,
                to=to if cursor is None else None,
                cursor=cursor,
                days_ago=days_ago,
            )
            trades.extend(page)
            if len(page) < want:
                break
            cursor = page[-1].sequential_id
        return trades

    async def get_orderbook(self, symbol: str) -> OrderbookData:
        """The current orderbook of ``symbol`` (REST).

        Raises:
            UnknownSymbolError: a symbol Upbit does not list.
        """
        self._require_open()
        (symbol,) = await self._session.catalog.check([symbol])
        (book,) = await self._session.rest.orderbook([symbol])
        return book

    async def get_candles(
        self, symbol: str, timeframe: str, count: int = 200, *, to: datetime | None = None
    ) -> list[CandleData]:
        """The ``count`` candles of ``symbol`` before ``to`` (now when ``None``), newest
        first; more than 200 are fetched page by page. Intervals without trades have no
        candle (Upbit sends none).

        Raises:
            UnknownSymbolError: a symbol Upbit does not list.
            InvalidArgumentError: unknown timeframe, ``count`` < 1, naive ``to``.
        """
        self._require_open()
        check_timeframe(timeframe)
        if count < 1:
            raise InvalidArgumentError(f"count must be at least 1, not {count}")
        (symbol,) = await self._session.catalog.check([symbol])
        candles: list[CandleData] = []
        end = to
        while len(candles) < count:
            want = min(MAX_CANDLES, count - len(candles))
            page = await self._session.rest.candles(symbol, timeframe, count=want, to=end)
            candles.extend(page)
            if len(page) < want:
                break
            end = page[-1].open_time
        return candles

    async def get_markets(self) -> list[Market]:
        """Every market Upbit lists (fresh from REST; also refreshes the symbol check)."""
        self._require_open()
        return await self._session.catalog.refresh()

    async def fetch_trades_since(
        self, symbol: str, since: datetime, *, after_sequential_id: int | None = None
    ) -> list[TradeData]:
        """Every trade of ``symbol`` at or after ``since``, ascending by (time, id), paging
        back with ``cursor`` and ``days_ago`` as far as Upbit's 7 days reach.

        For a backfill after downtime: pass the last recorded trade's time as ``since`` and
        its id as ``after_sequential_id`` (that trade is left out); de-duplicate on
        ``(symbol, sequential_id)`` when merging. If ``since`` lies beyond the 7 days, the
        result starts where Upbit's history does: compare its first trade with ``since`` and
        record the difference as a gap.

        Raises:
            UnknownSymbolError: a symbol Upbit does not list.
            InvalidArgumentError: a naive ``since``.
        """
        self._require_open()
        if since.tzinfo is None:
            raise InvalidArgumentError("since must be an aware datetime (e.g. tzinfo=UTC)")
        (symbol,) = await self._session.catalog.check([symbol])
        since_ms = datetime_to_ms(since.astimezone(UTC))
        page = await self._session.page_trades_back(symbol, since_ms, max_pages=1_000_000)
        found = {
            t.sequential_id: t
            for t in page.trades
            if datetime_to_ms(t.trade_timestamp) >= since_ms
            and t.sequential_id != after_sequential_id
        }
        return sorted(found.values(), key=lambda t: (t.trade_timestamp, t.sequential_id))

    # -- introspection --------------------------------------------------------------------

    def statistics(self) -> BackboneStatistics:
        """Counters and health now (cheap; call it for every status line)."""
        session = self._session
        counters = session.counters
        rest = session.rest.stats
        health = session.router.evaluate_channel_health()
        report = session.health_check()
        duplicates = sum(session.ledger.get(s).duplicates for s in session.ledger.symbols())
        return BackboneStatistics(
            streams=tuple(sub.stats() for sub in session.hub.subscribers()),
            events=tuple(sub.stats() for sub in session.hub.event_subscribers()),
            records={k: dict(v) for k, v in counters.published.items()},
            connects=session.ws.connects,
            reconnects=session.ws.reconnects,
            failed_connects=session.ws.failed_connects,
            stalls=session.ws.stalls,
            rest_calls=rest.calls,
            rest_errors=rest.errors,
            rest_retries=rest.retries,
            rest_rate_limited=rest.rate_limited,
            malformed_frames=counters.malformed_frames,
            ws_error_frames=counters.ws_error_frames,
            trades_repaired=counters.trades_repaired,
            gaps_unrepaired=counters.gaps_unrepaired,
            duplicates_dropped=duplicates,
            events_dropped=counters.events_dropped,
            last_message_age_s=report.last_message_age_s,
            live=report.live,
            on_rest=report.on_rest,
            health=dict(health),
            memory_releases=counters.memory_releases,
        )


async def get_ticker_simple(
    symbol: str,
    *,
    rest_url: str = UPBIT_REST_URL,
    ws_url: str = UPBIT_WS_URL,
) -> TickerData:
    """The current ticker of ``symbol`` in one call (opens and closes a backbone).

    Raises:
        UnknownSymbolError: a symbol Upbit does not list.
    """
    async with MarketDataBackbone(
        rest_url,
        ws_url,
        config=BackboneConfig(stream_strategy=ChannelStrategy.REST_ONLY),
    ) as backbone:
        return await backbone.get_ticker(symbol)
