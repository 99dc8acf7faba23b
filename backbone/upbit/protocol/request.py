"""What we send over REST: paths, query parameters and the rate-limit group of each request.

Every quotation request is a ``GET`` under ``/v1`` with query parameters, e.g.::

    GET /v1/trades/ticks?market=KRW-BTC&count=500&cursor=17510687993360000&days_ago=1
    GET /v1/candles/minutes/1?market=KRW-BTC&count=200&to=2025-06-24T04:56:53Z
    GET /v1/ticker?markets=KRW-BTC,KRW-ETH

Each path belongs to one rate-limit group (10 requests/s each); the group names are the ones
Upbit's ``Remaining-Req`` header uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from backbone.errors import InvalidArgumentError
from backbone.upbit.protocol.candle import rest_path

__all__ = [
    "MAX_CANDLES",
    "MAX_TRADES",
    "MAX_TRADES_DAYS_AGO",
    "RestRequest",
    "candles_request",
    "group_of_path",
    "markets_request",
    "orderbook_request",
    "ticker_request",
    "trades_request",
]

MAX_TRADES: Final = 500
"""Most trades one ``/trades/ticks`` call returns."""
MAX_CANDLES: Final = 200
"""Most candles one candle call returns."""
MAX_TRADES_DAYS_AGO: Final = 7
"""``days_ago`` reaches back this many UTC days; older trades are not served."""

_GROUPS: Final = {
    "/market/all": "market",
    "/ticker": "ticker",
    "/ticker/all": "ticker",
    "/trades/ticks": "crix-trades",
    "/orderbook": "orderbook",
    "/orderbook/instruments": "orderbook",
}


@dataclass(frozen=True, slots=True)
class RestRequest:
    """A GET request: ``path`` relative to the base URL (which ends in ``/v1``)."""

    path: str
    params: tuple[tuple[str, str], ...]

    @property
    def group(self) -> str:
        """The rate-limit group this request counts against."""
        return group_of_path(self.path)

    @property
    def target(self) -> str:
        """Path and query string, as logged and stored with raw bodies."""
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"/v1{self.path}?{query}" if query else f"/v1{self.path}"


def group_of_path(path: str) -> str:
    """The rate-limit group of a REST path (``/v1`` prefix optional)."""
    bare = path.split("?", 1)[0]
    if bare.startswith("/v1/"):
        bare = bare[3:]
    if bare.startswith("/candles/"):
        return "candles"
    return _GROUPS.get(bare, "default")


def _symbols(symbols: Sequence[str]) -> str:
    if not symbols:
        raise InvalidArgumentError("at least one symbol is needed")
    return ",".join(symbols)


def _count(count: int, most: int) -> str:
    if not 1 <= count <= most:
        raise InvalidArgumentError(f"count must be between 1 and {most} per call, not {count}")
    return str(count)


def ticker_request(symbols: Sequence[str]) -> RestRequest:
    """``/ticker`` for ``symbols`` (one call for all of them)."""
    return RestRequest("/ticker", (("markets", _symbols(symbols)),))


def orderbook_request(symbols: Sequence[str], *, count: int | None = None) -> RestRequest:
    """``/orderbook`` for ``symbols``; ``count`` units per side (Upbit's default: 30)."""
    params: list[tuple[str, str]] = [("markets", _symbols(symbols))]
    if count is not None:
        params.append(("count", _count(count, 30)))
    return RestRequest("/orderbook", tuple(params))


def markets_request(*, details: bool = True) -> RestRequest:
    """``/market/all``, with ``market_event`` details by default."""
    return RestRequest("/market/all", (("is_details", "true" if details else "false"),))


def trades_request(
    symbol: str,
    *,
    count: int = MAX_TRADES,
    to: datetime | None = None,
    cursor: int | None = None,
    days_ago: int | None = None,
) -> RestRequest:
    """``/trades/ticks``: up to ``count`` trades of ``symbol``, newest first.

    ``cursor`` (a ``sequential_id``) continues with the trades just older than it; ``to`` is a
    time of day (UTC) within the day that ``days_ago`` selects (today when ``None``).

    Raises:
        InvalidArgumentError: ``count`` outside 1..500 or ``days_ago`` outside 1..7.
    """
    params: list[tuple[str, str]] = [("market", symbol), ("count", _count(count, MAX_TRADES))]
    if to is not None:
        params.append(("to", to.astimezone(UTC).strftime("%H:%M:%S")))
    if cursor is not None:
        params.append(("cursor", str(cursor)))
    if days_ago is not None:
        if not 1 <= days_ago <= MAX_TRADES_DAYS_AGO:
            raise InvalidArgumentError(
                f"days_ago must be between 1 and {MAX_TRADES_DAYS_AGO}, not {days_ago}"
            )
        params.append(("days_ago", str(days_ago)))
    return RestRequest("/trades/ticks", tuple(params))


def candles_request(
    symbol: str, timeframe: str, *, count: int = MAX_CANDLES, to: datetime | None = None
) -> RestRequest:
    """Candles of ``timeframe`` strictly before ``to`` (now when ``None``), newest first.

    Raises:
        InvalidArgumentError: unknown timeframe, ``count`` outside 1..200, or a naive ``to``.
    """
    params: list[tuple[str, str]] = [("market", symbol), ("count", _count(count, MAX_CANDLES))]
    if to is not None:
        if to.tzinfo is None:
            raise InvalidArgumentError("to must be an aware datetime (e.g. tzinfo=UTC)")
        params.append(("to", to.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
    return RestRequest(rest_path(timeframe), tuple(params))
