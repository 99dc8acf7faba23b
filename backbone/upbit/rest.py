"""The REST shell (aiohttp): sends built requests, paces them by Upbit's quota, retries what
may be retried, translates failures into :mod:`backbone.errors`, and hands bodies to the
protocol layer. It never indexes a JSON dict itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Self

import aiohttp

from backbone.config import BackboneConfig
from backbone.errors import (
    ClosedError,
    ProtocolError,
    RateLimited,
    TransportError,
    UpbitAPIError,
)
from backbone.models import CandleData, Market, OrderbookData, RawFrame, TickerData, TradeData
from backbone.policy import QuotaTracker
from backbone.upbit import protocol
from backbone.upbit.protocol import RestRequest

__all__ = ["RestClient", "RestResponse", "RestStatistics"]

log = logging.getLogger(__name__)

_BLOCK_DEFAULT_S = 30.0  # a 418 without Retry-After: Upbit documents no duration


@dataclass(frozen=True, slots=True)
class RestResponse:
    """A successful answer: the body as received and the local times around it."""

    request: RestRequest
    body: bytes
    request_start_ns: int
    received_ns: int


@dataclass(slots=True)
class RestStatistics:
    """Counters of one client (read them, do not write them)."""

    calls: int = 0
    errors: int = 0
    retries: int = 0
    rate_limited: int = 0
    last_latency_s: float = 0.0
    last_ok_monotonic: float | None = None
    last_error_monotonic: float | None = None


def _retry_after(value: str | None, default_s: float) -> float:
    try:
        return max(0.0, float(value)) if value is not None else default_s
    except ValueError:
        return default_s


class RestClient:
    """Upbit's quotation REST API over one aiohttp session.

    Use as an async context manager (``async with RestClient(url) as rest:``); it cannot be
    reopened after closing. Requests of one rate-limit group are paced to stay within
    ``config.rest_requests_per_s``, corrected by every ``Remaining-Req`` header; a 429 pauses
    the group and retries, a 418 pauses it and raises :class:`RateLimited`; 5xx and transport
    failures are retried ``config.rest_retries`` times with a short backoff.

    ``clock_ns`` stamps ``received_ns``; ``raw_sink`` sees every successful body.
    """

    def __init__(
        self,
        base_url: str,
        *,
        config: BackboneConfig | None = None,
        clock_ns: Callable[[], int] = time.time_ns,
        raw_sink: Callable[[RawFrame], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.config = config or BackboneConfig()
        self._clock_ns = clock_ns
        self._raw_sink = raw_sink
        self._quota = QuotaTracker(self.config.rest_requests_per_s)
        self._session: aiohttp.ClientSession | None = None
        self._state = "unopened"
        self.stats = RestStatistics()

    async def __aenter__(self) -> Self:
        if self._state != "unopened":
            raise ClosedError(f"RestClient is {self._state}; create a new one")
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.config.rest_timeout_s),
            headers={"Accept": "application/json", "Accept-Encoding": "gzip"},
        )
        self._state = "open"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session. Safe to call twice."""
        self._state = "closed"
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def quota(self) -> QuotaTracker:
        """The pacing state (shared by every caller of this client)."""
        return self._quota

    async def wait_budget(self, group: str) -> None:
        """Wait until one more request of ``group`` fits, then book it at that moment.

        Call :meth:`QuotaTracker.settle` when the answer arrives (``request`` does).
        """
        loop = asyncio.get_running_loop()
        while True:
            wait = self._quota.delay(group, loop.time())
            if wait <= 0:
                self._quota.book(group, loop.time())
                return
            await asyncio.sleep(wait)

    async def request(self, req: RestRequest) -> RestResponse:
        """Send ``req`` (paced, retried) and return the successful answer.

        Raises:
            UpbitAPIError: a 4xx (fix the request), or a 5xx that outlived the retries.
            RateLimited: a 418 block, or 429s that outlived the retries.
            TransportError: the network failed on every attempt.
            ClosedError: the client is not open.
        """
        if self._session is None:
            raise ClosedError(f"RestClient is {self._state}; use it inside 'async with'")
        loop = asyncio.get_running_loop()
        group = req.group
        attempt = 0
        while True:
            await self.wait_budget(group)
            try:
                return await self._once(req, group, loop)
            except (TransportError, RateLimited, UpbitAPIError) as exc:
                self.stats.errors += 1
                self.stats.last_error_monotonic = loop.time()
                retryable = (
                    isinstance(exc, TransportError)
                    or (isinstance(exc, RateLimited) and exc.status == 429)
                    or (isinstance(exc, UpbitAPIError) and exc.retryable)
                )
                if not retryable or attempt >= self.config.rest_retries:
                    raise
                attempt += 1
                self.stats.retries += 1
                log.info("retrying %s after %s (attempt %d)", req.target, exc, attempt)
                if not isinstance(exc, RateLimited):
                    await asyncio.sleep(min(1.0, 0.05 * 2**attempt))

    async def _once(
        self, req: RestRequest, group: str, loop: asyncio.AbstractEventLoop
    ) -> RestResponse:
        assert self._session is not None
        start_ns = self._clock_ns()
        started = loop.time()
        self.stats.calls += 1
        try:
            async with self._session.get(self.base_url + req.path, params=list(req.params)) as resp:
                body = await resp.read()
                status = resp.status
                headers = resp.headers
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"GET {req.target} failed: {exc!r}") from exc
        finally:
            self._quota.settle(group, loop.time())
        received_ns = self._clock_ns()
        now = loop.time()
        self.stats.last_latency_s = now - started
        header = headers.get("Remaining-Req")
        if header is not None:
            try:
                self._quota.observe(protocol.parse_remaining_req(header), now)
            except ProtocolError:
                log.warning("ignoring malformed Remaining-Req header %r", header)
        if status == 200:
            self.stats.last_ok_monotonic = now
            if self._raw_sink is not None:
                self._raw_sink(
                    RawFrame(
                        source="rest", endpoint=req.target, payload=body, received_ns=received_ns
                    )
                )
            return RestResponse(req, body, start_ns, received_ns)
        if status in (429, 418):
            self.stats.rate_limited += 1
            message = protocol.error_from_body(status, body).message
            if status == 429:
                retry_after = _retry_after(headers.get("Retry-After"), 1.0)
                self._quota.pause(group, retry_after, now)
            else:
                # A block covers the whole IP, every group: stop everything for its duration.
                stated = protocol.block_seconds(message)
                default = _BLOCK_DEFAULT_S if stated is None else stated
                retry_after = _retry_after(headers.get("Retry-After"), default)
                self._quota.pause("*", retry_after, now)
            raise RateLimited(status, group, retry_after, message)
        raise protocol.error_from_body(status, body, path=req.target)

    async def ticker(self, symbols: list[str]) -> list[TickerData]:
        """Tickers of ``symbols`` (one call)."""
        resp = await self.request(protocol.ticker_request(symbols))
        return protocol.ticker.parse_rest_tickers(resp.body, received_ns=resp.received_ns)

    async def trades(
        self,
        symbol: str,
        *,
        count: int = protocol.MAX_TRADES,
        to: datetime | None = None,
        cursor: int | None = None,
        days_ago: int | None = None,
    ) -> list[TradeData]:
        """One page of ``symbol``'s trades, newest first (see ``protocol.trades_request``)."""
        req = protocol.trades_request(symbol, count=count, to=to, cursor=cursor, days_ago=days_ago)
        resp = await self.request(req)
        return protocol.trade.parse_rest_trades(resp.body, received_ns=resp.received_ns)

    async def orderbook(self, symbols: list[str]) -> list[OrderbookData]:
        """Orderbooks of ``symbols`` (one call)."""
        resp = await self.request(protocol.orderbook_request(symbols))
        return protocol.orderbook.parse_rest_orderbooks(resp.body, received_ns=resp.received_ns)

    async def candles(
        self,
        symbol: str,
        timeframe: str,
        *,
        count: int = protocol.MAX_CANDLES,
        to: datetime | None = None,
    ) -> list[CandleData]:
        """One page of candles strictly before ``to`` (now when ``None``), newest first."""
        resp = await self.request(protocol.candles_request(symbol, timeframe, count=count, to=to))
        return protocol.candle.parse_rest_candles(
            resp.body, timeframe, received_ns=resp.received_ns
        )

    async def markets(self) -> list[Market]:
        """Upbit's market list, with warning and caution details."""
        resp = await self.request(protocol.markets_request())
        return protocol.parse_rest_markets(resp.body)
