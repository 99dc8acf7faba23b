"""Run a fixed scenario against a fresh exchange and print a SHA-256 of every byte it sent.

Used by test_sim_determinism.py in subprocesses with different hash seeds.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys

import aiohttp

from simulator import Exchange, ExchangeConfig, ManualClock

START_MS = 1_790_000_000_000
PATHS = [
    "/market/all?is_details=true",
    "/ticker?markets=KRW-BTC,BTC-ETH,KRW-SHIB",
    "/trades/ticks?market=KRW-BTC&count=200",
    "/trades/ticks?market=KRW-SHIB&count=50&days_ago=3",
    "/orderbook?markets=KRW-BTC,BTC-ETH",
    "/candles/minutes/5?market=KRW-BTC&count=50",
    "/candles/days?market=KRW-SHIB&count=20",
]


async def scenario(seed: int) -> str:
    digest = hashlib.sha256()
    config = ExchangeConfig(rest_limit_per_s=None)
    markets = ["KRW-BTC", "BTC-ETH", "KRW-SHIB"]
    async with (
        Exchange(seed=seed, markets=markets, clock=ManualClock(START_MS), config=config) as ex,
        aiohttp.ClientSession() as session,
    ):
        for path in PATHS:
            async with session.get(ex.rest_url + path) as resp:
                digest.update(await resp.read())
        async with session.ws_connect(ex.ws_url) as ws:
            request = [
                {"ticket": "d"},
                {"type": "trade", "codes": markets},
                {"type": "ticker", "codes": markets},
                {"type": "orderbook", "codes": markets},
                {"type": "candle.1s", "codes": markets},
                {"format": "SIMPLE"},
            ]
            await ws.send_str(json.dumps(request))
            count = 0
            for _ in range(12):
                digest.update((await ws.receive(timeout=10)).data)
                count += 1
            ex.clock.advance(90_000)
            await ex.settle()
            sent = sum(c["frames_total"] for c in ex.connections() if not c["closed"])
            for _ in range(sent - count):
                digest.update((await ws.receive(timeout=10)).data)
            digest.update(str(sent).encode())
    return digest.hexdigest()


if __name__ == "__main__":
    print(asyncio.run(scenario(int(sys.argv[1]))))
