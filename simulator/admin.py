"""The admin API under ``/_sim``: faults, truth, clock, markets and counters (no rate limit)."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.clock import ManualClock
from simulator.faults import FaultError
from simulator.wire import truth_trade

if TYPE_CHECKING:
    from simulator.exchange import Exchange


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json({"error": message}, status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "the body must be a JSON object"}', content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text='{"error": "the body must be a JSON object"}', content_type="application/json"
        )
    return data


def add_admin_routes(app: web.Application, ex: Exchange) -> None:
    """Register the ``/_sim`` endpoints of ``ex`` on ``app``."""

    async def info(request: web.Request) -> web.Response:
        return _json(
            {
                "rest_url": ex.rest_url,
                "ws_url": ex.ws_url,
                "admin_url": ex.admin_url,
                "seed": ex.seed,
                "start_ms": ex.start_ms,
                "now_ms": ex.clock.now_ms(),
                "clock": type(ex.clock).__name__,
                "markets": len(ex.markets),
                "firehose": ex.firehose is not None,
            }
        )

    async def faults_post(request: web.Request) -> web.Response:
        body = await _body(request)
        kind = body.pop("kind", None)
        if not isinstance(kind, str):
            return _error(400, 'the body needs "kind", e.g. {"kind": "disconnect"}')
        try:
            return _json(ex.faults.apply(kind, **body))
        except FaultError as exc:
            return _error(400, str(exc))

    async def faults_get(request: web.Request) -> web.Response:
        return _json(ex.faults.list())

    async def faults_delete(request: web.Request) -> web.Response:
        ex.faults.clear()
        return _json({"cleared": True})

    async def truth(request: web.Request) -> web.Response:
        market = request.query.get("market", "")
        if not market:
            return _error(400, "give ?market=CODE (and optionally from=, to= in ms)")
        try:
            low = int(request.query["from"]) if "from" in request.query else None
            high = int(request.query["to"]) if "to" in request.query else None
        except ValueError:
            return _error(400, "from and to are integer epoch milliseconds")
        if not ex.knows(market):
            return _error(404, f"{market} is not a market of this exchange")

        def body() -> str:  # may generate days of trades: on a worker thread
            return "[" + ",".join(truth_trade(t) for t in ex.truth_raw(market, low, high)) + "]"

        return web.Response(text=await asyncio.to_thread(body), content_type="application/json")

    async def clock_get(request: web.Request) -> web.Response:
        return _json({"now_ms": ex.clock.now_ms(), "clock": type(ex.clock).__name__})

    async def clock_post(request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(ex.clock, ManualClock):
            return _error(409, "the exchange clock is not manual; start it with a manual clock")
        try:
            if "advance_ms" in body:
                ex.clock.advance(int(body["advance_ms"]))
            elif "set_ms" in body:
                ex.clock.set_ms(int(body["set_ms"]))
            else:
                return _error(400, 'give {"advance_ms": N} or {"set_ms": T}')
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc))
        await ex.settle()
        return _json({"now_ms": ex.clock.now_ms()})

    async def settle(request: web.Request) -> web.Response:
        await ex.settle()
        return _json({"now_ms": ex.clock.now_ms()})

    async def markets_get(request: web.Request) -> web.Response:
        return _json(ex.markets)

    async def markets_post(request: web.Request) -> web.Response:
        body = await _body(request)
        code = body.get("market")
        if not isinstance(code, str):
            return _error(400, 'give {"market": "KRW-NEW"} (korean_name, english_name optional)')
        try:
            ex.list_market(
                code, korean_name=body.get("korean_name"), english_name=body.get("english_name")
            )
        except ValueError as exc:
            return _error(400, str(exc))
        return _json({"listed": code})

    async def markets_delete(request: web.Request) -> web.Response:
        code = request.match_info["code"]
        try:
            ex.delist_market(code)
        except KeyError:
            return _error(404, f"{code} is not listed")
        return _json({"delisted": code})

    async def connections(request: web.Request) -> web.Response:
        return _json(ex.connections())

    async def stats(request: web.Request) -> web.Response:
        data: dict[str, Any] = dict(ex.stats)
        data["frames_sent"] = ex.frames_sent()
        data["open_connections"] = sum(1 for c in ex.connections() if not c["closed"])
        if ex.firehose is not None:
            data["firehose"] = ex.firehose.stats()
        return _json(data)

    r = app.router
    r.add_get("/_sim", info)
    r.add_get("/_sim/", info)
    r.add_post("/_sim/faults", faults_post)
    r.add_get("/_sim/faults", faults_get)
    r.add_delete("/_sim/faults", faults_delete)
    r.add_get("/_sim/truth/trades", truth)
    r.add_get("/_sim/clock", clock_get)
    r.add_post("/_sim/clock", clock_post)
    r.add_post("/_sim/settle", settle)
    r.add_get("/_sim/markets", markets_get)
    r.add_post("/_sim/markets", markets_post)
    r.add_delete("/_sim/markets/{code}", markets_delete)
    r.add_get("/_sim/connections", connections)
    r.add_get("/_sim/stats", stats)
