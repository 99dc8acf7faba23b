"""The event loop is never blocked for long by the exchange's first-time work.

A cold ``ticker/all`` over every default market and a cold subscription to all KRW tickers
generate a day of trades for hundreds of markets; crossing an hour generates every streamed
market's next hour. All of it must leave the loop free to answer pings (the bound is generous
for a loaded 2-core machine; serving these on the loop took seconds).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiohttp
from sim_helpers import decode

from simulator import Exchange, ExchangeConfig, ManualClock, model
from simulator.markets import default_codes

T = TypeVar("T")
BUSY_START_MS = 1_795_230_000_000  # 2026-11-21T03:00:00Z
WORST_LAG_S = 0.75
UNLIMITED = ExchangeConfig(
    rest_limit_per_s=None, ws_message_limit_per_s=None, ws_message_limit_per_min=None
)


class LagMonitor:
    """The longest time a 5 ms sleep overran: how long the loop was kept from running it."""

    def __init__(self) -> None:
        self.worst_s = 0.0

    async def run(self) -> None:
        while True:
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            self.worst_s = max(self.worst_s, time.perf_counter() - before - 0.005)


@asynccontextmanager
async def watching() -> AsyncIterator[LagMonitor]:
    monitor = LagMonitor()
    async with asyncio.TaskGroup() as tg:
        task = tg.create_task(monitor.run())
        await asyncio.sleep(0.02)
        try:
            yield monitor
        finally:
            task.cancel()


async def within(awaitable: Awaitable[T]) -> T:
    async with asyncio.timeout(120):
        return await awaitable


async def test_cold_ticker_all_and_subscription_to_every_krw_ticker_leave_the_loop_free(
    session: aiohttp.ClientSession,
) -> None:
    model.clear_caches()
    krw = [c for c in default_codes() if c.startswith("KRW-")]
    async with Exchange(seed=3, clock=ManualClock(BUSY_START_MS), config=UNLIMITED) as ex:

        async def ticker_all() -> list[Any]:
            url = ex.rest_url + "/ticker/all?quote_currencies=KRW,BTC,USDT"
            async with session.get(url) as resp:
                return list(decode(await resp.read()))

        async def subscribe_all() -> list[Any]:
            async with session.ws_connect(ex.ws_url) as ws:
                request = [{"ticket": "all"}, {"type": "ticker", "codes": krw}]
                await ws.send_str(json.dumps(request))
                await ws.send_str("PING")
                frames = [decode((await ws.receive(timeout=60)).data) for _ in range(len(krw) + 1)]
            return frames

        async with watching() as monitor:
            tickers, frames = await within(asyncio.gather(ticker_all(), subscribe_all()))
        assert len(tickers) == len(ex.markets) > 250
        assert {"status": "UP"} in frames
        assert {f["code"] for f in frames if f.get("type") == "ticker"} == set(krw)
        assert monitor.worst_s < WORST_LAG_S, f"the loop was blocked for {monitor.worst_s:.2f} s"


async def test_streaming_many_markets_across_an_hour_leaves_the_loop_free(
    session: aiohttp.ClientSession,
) -> None:
    model.clear_caches()
    codes = [c for c in default_codes() if c.startswith("KRW-")][:60]
    before_hour = BUSY_START_MS + 3_600_000 - 30_000
    config = ExchangeConfig(
        rest_limit_per_s=None,
        ws_message_limit_per_s=None,
        ws_message_limit_per_min=None,
        activity_scale=3.0,
    )
    async with Exchange(seed=4, markets=codes, clock=ManualClock(before_hour), config=config) as ex:
        async with session.ws_connect(ex.ws_url) as ws:
            request = [
                {"ticket": "hour"},
                {"type": "ticker", "codes": codes, "is_only_realtime": True},
                {"type": "trade", "codes": codes, "is_only_realtime": True},
                {"format": "SIMPLE"},
            ]
            await ws.send_str(json.dumps(request))
            await ws.send_str('[{"ticket":"sync"},{"method":"LIST_SUBSCRIPTIONS"}]')
            assert "ty" not in decode((await ws.receive(timeout=60)).data)
            received = 0

            async def drain() -> None:
                nonlocal received
                while True:
                    msg = await ws.receive()
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        return
                    received += 1

            async with asyncio.TaskGroup() as tg:
                reader = tg.create_task(drain())
                async with watching() as monitor:
                    for _ in range(4):
                        ex.clock.advance(30_000)
                        await within(ex.settle())
                reader.cancel()
        hour = BUSY_START_MS + 3_600_000
        crossed = [t for c in codes for t in ex.truth_trades(c, hour, hour + 60_000)]
        assert crossed and received > len(crossed)
        assert monitor.worst_s < WORST_LAG_S, f"the loop was blocked for {monitor.worst_s:.2f} s"
