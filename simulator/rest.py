"""Upbit's quotation REST API under ``/v1``, with its errors, rate limits and faults."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING

from aiohttp import web
from multidict import MultiMapping

from simulator.config import ExchangeConfig
from simulator.markets import SCALE, build_spec, tick_at
from simulator.model import CANDLE_UNITS_MIN, DAY_MS, MarketModel, day_floor, last_trades, prepare
from simulator.wire import (
    rest_candle,
    rest_error,
    rest_instrument,
    rest_market,
    rest_orderbook,
    rest_ticker,
    rest_trade,
)
from simulator.wsproto import RateWindow

if TYPE_CHECKING:
    from simulator.exchange import Exchange

log = logging.getLogger(__name__)

MISSING = "Missing request parameter error. Check the required parameters!"
INVALID = "Invalid parameter. Check the given value!"
MISMATCH = "Type mismatch error. Check the parameters type!"
_TO_TIME = re.compile(r"^(\d{2}):?(\d{2}):?(\d{2})$")
_QUOTE = re.compile(r"^[A-Z]{2,6}$")


class RestError(Exception):
    """An Upbit error answer: ``status`` and the ``message`` of its JSON error body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Params = MultiMapping[str]


def _get(params: Params, *names: str) -> str | None:
    for name in names:
        if name in params:
            return params[name]
    return None


def _required(params: Params, name: str) -> str:
    value = params.get(name, "").strip()
    if not value:
        raise RestError(400, MISSING)
    return value


def _int(params: Params, *names: str, default: int) -> int:
    value = _get(params, *names)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise RestError(400, MISMATCH) from None


class RestLimiter:
    """Per-IP, per-group request windows; 429 beyond the limit, 418 blocks after repeated 429s."""

    def __init__(self, config: ExchangeConfig) -> None:
        self._config = config
        self._windows: dict[tuple[str, str], RateWindow] = {}
        self._strikes: dict[str, deque[float]] = {}
        self._blocked_until: dict[str, float] = {}
        self._blocks: dict[str, int] = {}

    def check(self, ip: str, group: str) -> tuple[int, int, float]:
        """Return (status, remaining this second, block seconds left) for one request now."""
        limit = self._config.rest_limit_per_s
        if limit is None:
            return 200, 999, 0.0
        now = time.monotonic()
        until = self._blocked_until.get(ip, 0.0)
        if now < until:
            return 418, 0, until - now
        window = self._windows.setdefault((ip, group), RateWindow(limit))
        if window.allow():
            return 200, window.remaining(), 0.0
        strikes = self._strikes.setdefault(ip, deque())
        strikes.append(now)
        while strikes and strikes[0] <= now - 10.0:
            strikes.popleft()
        if len(strikes) >= self._config.rest_429s_before_block:
            blocks = self._blocks.get(ip, 0)
            seconds = min(self._config.rest_block_s * 2**blocks, self._config.rest_block_max_s)
            self._blocks[ip] = blocks + 1
            self._blocked_until[ip] = now + seconds
            strikes.clear()
            return 418, 0, seconds
        return 429, 0, 0.0


def _parse_to(text: str) -> int:
    try:
        when = datetime.fromisoformat(text.strip().replace(" ", "T"))
    except ValueError:
        raise RestError(400, INVALID) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


class RestApi:
    """The ``/v1`` handlers of one exchange."""

    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange
        self.limiter = RestLimiter(exchange.config)
        self._routes: dict[str, tuple[str, Callable[[Params, int, int], list[str]]]] = {
            "market/all": ("market", self.market_all),
            "ticker": ("ticker", self.ticker),
            "ticker/all": ("ticker", self.ticker_all),
            "trades/ticks": ("crix-trades", self.trades),
            "orderbook": ("orderbook", self.orderbook),
            "orderbook/instruments": ("orderbook", self.instruments),
        }

    async def handle(self, request: web.Request) -> web.Response:
        tail = request.match_info["tail"].strip("/")
        if tail in self._routes:
            group, handler = self._routes[tail]
        elif tail.startswith("candles/"):
            group, handler = "candles", self._candles_handler(tail[8:])
        else:
            return self._respond(404, rest_error(404, "Not found"), "default", 999)
        ex = self.ex
        ex.stats["rest_requests"] += 1
        if request.method != "GET":
            return self._respond(405, rest_error(405, "Method not allowed"), group, 999)
        status, remaining, block_s = self.limiter.check(request.remote or "?", group)
        if status == 429:
            ex.stats["rest_429"] += 1
            return self._respond(429, rest_error(429, "Too many API requests."), group, 0)
        if status == 418:
            ex.stats["rest_418"] += 1
            message = f"Too many API requests. Blocked for {block_s:.1f} seconds."
            return self._respond(418, rest_error(418, message), group, 0)
        now = ex.clock.now_ms()
        params = request.query
        markets = [m for m in (params.get("markets") or params.get("market") or "").split(",") if m]
        failing = ex.faults.rest_failing(now)
        if failing is not None:
            failing.count("requests_failed", "/v1/" + tail)
            for market in markets:
                failing.count("requests_failed_by_market", market)
            code = failing.params["status"]
            return self._respond(
                code, rest_error(code, "Internal server error (rest_error fault)"), group, remaining
            )
        asof = now
        frozen = ex.faults.rest_frozen(now)
        if frozen is not None:
            asof = frozen.start_ms
            frozen.count("requests_stale", "/v1/" + tail)
            for market in markets:
                frozen.count("requests_stale_by_market", market)
        skew_fault = ex.faults.skew(now)
        skew = skew_fault.params["ms"] if skew_fault is not None else 0
        try:
            # First-time work (a cold ticker/all generates a day of every market) runs on a
            # worker thread, so the event loop keeps serving sockets and pings meanwhile.
            items = await asyncio.to_thread(handler, params, asof, skew)
        except RestError as exc:
            return self._respond(exc.status, rest_error(exc.status, exc.message), group, remaining)
        except Exception:
            log.exception("REST %s failed", request.path_qs)
            return self._respond(500, rest_error(500, "Internal server error"), group, remaining)
        if skew_fault is not None:
            skew_fault.count("rest_responses_skewed", "/v1/" + tail)
        return self._respond(200, "[" + ",".join(items) + "]", group, remaining)

    @staticmethod
    def _respond(status: int, body: str, group: str, remaining: int) -> web.Response:
        return web.Response(
            status=status,
            body=body.encode(),
            content_type="application/json",
            charset="utf-8",
            headers={"Remaining-Req": f"group={group}; min=1800; sec={remaining}"},
        )

    def _models(self, params: Params, name: str = "markets") -> list[tuple[str, MarketModel]]:
        codes = [c.strip() for c in _required(params, name).split(",") if c.strip()]
        out = []
        for code in dict.fromkeys(codes):
            if not self.ex.is_listed(code):
                raise RestError(404, "Code not found")
            out.append((code, self.ex.model(code)))
        return out

    # -- handlers -------------------------------------------------------------------------

    def market_all(self, params: Params, asof: int, skew: int) -> list[str]:
        raw = _get(params, "is_details", "isDetails")
        if raw is not None and raw.lower() not in ("true", "false"):
            raise RestError(400, MISMATCH)
        details = raw is not None and raw.lower() == "true"
        return [rest_market(self.ex.spec(code), details) for code in self.ex.markets]

    def ticker(self, params: Params, asof: int, skew: int) -> list[str]:
        return self._tickers(self._models(params), asof, skew)

    def ticker_all(self, params: Params, asof: int, skew: int) -> list[str]:
        quotes = [q.strip() for q in _required(params, "quote_currencies").split(",") if q.strip()]
        if not quotes or not all(_QUOTE.match(q) for q in quotes):
            raise RestError(400, INVALID)
        ex = self.ex
        chosen = [(c, ex.model(c)) for c in ex.markets if ex.spec(c).quote in quotes]
        return self._tickers(chosen, asof, skew)

    @staticmethod
    def _tickers(models: list[tuple[str, MarketModel]], asof: int, skew: int) -> list[str]:
        prepare([model for _, model in models], asof)
        out = []
        for code, model in models:
            state = model.ticker_at(asof)
            if state is not None:
                out.append(rest_ticker(code, state, skew))
        return out

    def trades(self, params: Params, asof: int, skew: int) -> list[str]:
        ((code, model),) = self._models(params, "market")[:1]
        count = _int(params, "count", default=1)
        if count < 1:
            raise RestError(400, INVALID)
        count = min(count, 500)
        days_ago = _int(params, "days_ago", "daysAgo", default=0)
        if _get(params, "days_ago", "daysAgo") not in (None, "") and not 1 <= days_ago <= 7:
            raise RestError(400, INVALID)
        day = day_floor(asof) - days_ago * DAY_MS
        upper = min(day + DAY_MS, asof - model.lag + 1)
        to = _get(params, "to")
        if to:
            match = _TO_TIME.match(to.strip())
            if match is None:
                raise RestError(400, INVALID)
            h, m, s = (int(g) for g in match.groups())
            if h > 23 or m > 59 or s > 59:
                raise RestError(400, INVALID)
            upper = min(upper, day + (h * 3600 + m * 60 + s) * 1000)
        bound = (upper, 0)
        cursor = _get(params, "cursor")
        if cursor:
            try:
                sid = int(cursor)
            except ValueError:
                raise RestError(400, MISMATCH) from None
            bound = min(bound, (sid // 10_000, sid))
        prev = model.prev_close(day)
        return [rest_trade(code, t, prev, skew) for t in model.trades_desc(day, bound, count)]

    def orderbook(self, params: Params, asof: int, skew: int) -> list[str]:
        models = self._models(params)
        count = _int(params, "count", default=self.ex.config.orderbook_depth)
        if count < 1:
            raise RestError(400, INVALID)
        count = min(count, 30)
        level = 0
        raw_level = params.get("level")
        if raw_level:
            try:
                amount = Decimal(raw_level)
            except InvalidOperation:
                raise RestError(400, MISMATCH) from None
            if not amount.is_finite() or amount < 0:
                raise RestError(400, INVALID)
            level = int(amount * SCALE)
        out = []
        found_all = last_trades([m for _, m in models], asof)
        for (code, model), found in zip(models, found_all, strict=True):
            if found is None or level not in model.supported_levels(found[0].price[found[1]]):
                continue
            out.append(rest_orderbook(code, model.book_for(*found, level=level), count, skew))
        return out

    def instruments(self, params: Params, asof: int, skew: int) -> list[str]:
        out = []
        models = self._models(params)
        found_all = last_trades([m for _, m in models], asof)
        for (code, model), found in zip(models, found_all, strict=True):
            price = found[0].price[found[1]] if found else model.spec.base_price
            tick = tick_at(model.table, price)
            out.append(rest_instrument(code, model.spec.quote, tick, model.supported_levels(price)))
        return out

    def _candles_handler(self, kind_path: str) -> Callable[[Params, int, int], list[str]]:
        kind, _, rest = kind_path.partition("/")
        minutes = 0
        if kind == "minutes":
            if not rest.isdigit() or int(rest) not in CANDLE_UNITS_MIN:
                return self._fail(400, "specified unit is not valid.")
            minutes = int(rest)
            unit = f"{minutes}m"
        elif kind in ("seconds", "days", "weeks", "months", "years") and not rest:
            unit = "1s" if kind == "seconds" else kind
        else:
            return self._fail(404, "Not found")

        def handler(params: Params, asof: int, skew: int) -> list[str]:
            ((code, model),) = self._models(params, "market")[:1]
            count = _int(params, "count", default=1)
            if count < 1:
                raise RestError(400, INVALID)
            count = min(count, 200)
            to_raw = params.get("to")
            to_excl = _parse_to(to_raw) if to_raw else asof + 1
            converting = _get(params, "converting_price_unit", "convertingPriceUnit")
            candles = model.candles(unit, to_excl, count, asof)
            out = []
            for candle in candles:
                converted = None
                if kind == "days" and converting == "KRW" and model.spec.quote != "KRW":
                    converted = self._converted(
                        model.spec.quote, candle.agg.close, candle.agg.last_ts
                    )
                out.append(
                    rest_candle(code, kind, candle, skew, minutes=minutes, converted=converted)
                )
            return out

        return handler

    @staticmethod
    def _fail(status: int, message: str) -> Callable[[Params, int, int], list[str]]:
        def handler(params: Params, asof: int, skew: int) -> list[str]:
            raise RestError(status, message)

        return handler

    def _converted(self, quote: str, close: int, at_ms: int) -> int:
        code = f"KRW-{quote}"
        if self.ex.is_listed(code):
            model = self.ex.model(code)
        else:
            model = MarketModel(
                build_spec(code),
                seed=self.ex.seed,
                recent_start_ms=self.ex.recent_start_ms,
                history_start_ms=self.ex.history_start_ms,
                activity_scale=self.ex.config.activity_scale,
            )
        found = model.last_trade_index(at_ms)
        rate = found[0].price[found[1]] if found else model.spec.base_price
        return close * rate // SCALE
