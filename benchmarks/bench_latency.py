"""Backbone added latency: from the moment a frame arrives (``received_ns``, stamped by the
WebSocket shell) to the moment the consumer holds the record.

Runs ``tape exchange`` in its own process on the ten busiest simulator markets with a scaled
clock, streams them through ``MarketDataBackbone`` and records ``time.time_ns() -
record.received_ns`` in the consumer for every WebSocket record. Two loads: trades only at a
high clock speed (the most messages a second the simulator's market mode produces, about
2,500 on this machine), trades + tickers + orderbooks near the exchange's own limit, and the
same at a fifth of that, where neither the exchange nor this process is saturated.

Baseline in the same run: bare aiohttp clients (the backbone's client library), one connection
per data kind on the same subscription, that stamp each frame on arrival and hand it through an
``asyncio.Queue`` to a consumer task (the least any hand-over from a reader task to a consumer
can cost).

    python benchmarks/bench_latency.py [--seconds 30] [--trade-speed 800] [--mixed-speed 100]
        [--low-speed 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Literal

import aiohttp
from bench_ingest import spawn_exchange

from backbone import BackboneConfig, MarketDataBackbone
from backbone.models import MarketRecord

MARKETS = [
    "KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-USDT", "KRW-SOL",
    "KRW-DOGE", "KRW-ADA", "KRW-TRX", "KRW-LINK", "KRW-AVAX",
]  # fmt: skip


def percentiles(samples: list[int]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return (f"p50 {at(0.50):7.3f} ms  p99 {at(0.99):7.3f} ms  p99.9 {at(0.999):7.3f} ms  "
            f"max {ordered[-1] / 1e6:7.3f} ms  (n={len(ordered):,})")  # fmt: skip


async def backbone_run(
    urls: dict[str, str], kinds: tuple[str, ...], seconds: float
) -> tuple[list[int], float]:
    latencies: list[int] = []
    # REST reconciliation off: its trade pages would take exchange CPU from the stream.
    config = BackboneConfig(
        orderbook_buffer=10_000, ticker_buffer=10_000, reconcile_interval_s=3600.0
    )
    async with MarketDataBackbone(urls["rest_url"], urls["ws_url"], config=config) as bb:

        async def consume(stream: object) -> None:
            clock = time.time_ns
            async for record in stream:  # type: ignore[attr-defined]
                rec: MarketRecord = record
                if rec.source == "websocket":
                    latencies.append(clock() - rec.received_ns)

        streams = {
            "trade": bb.stream_trade,
            "ticker": bb.stream_ticker,
            "orderbook": bb.stream_orderbook,
        }
        async with asyncio.TaskGroup() as tasks:
            consumers = [tasks.create_task(consume(streams[k](MARKETS))) for k in kinds]
            await asyncio.sleep(3.0)  # snapshots and start-up out of the way
            latencies.clear()
            started = time.perf_counter()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - started
            n = len(latencies)
            for consumer in consumers:
                consumer.cancel()
    return latencies[:n], n / elapsed


async def bare_run(
    urls: dict[str, str], kinds: tuple[str, ...], seconds: float
) -> tuple[list[int], float]:
    latencies: list[int] = []
    queue: asyncio.Queue[tuple[bytes, int]] = asyncio.Queue(maxsize=10_000)

    async def consume() -> None:
        clock = time.time_ns
        while True:
            _, received_ns = await queue.get()
            latencies.append(clock() - received_ns)

    async def read(ws: aiohttp.ClientWebSocketResponse[Literal[False]]) -> None:
        while True:
            _, data, _ = await ws.receive()
            await queue.put((data, time.time_ns()))
            await asyncio.sleep(0)  # hand over at once: the least latency a reader can give

    async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as tasks:
        # One connection per data kind, as the backbone keeps them.
        running = [tasks.create_task(consume())]
        for kind in kinds:
            ws = await http.ws_connect(
                urls["ws_url"], autoping=False, max_msg_size=0, compress=0, decode_text=False
            )
            await ws.send_str(json.dumps([{"ticket": "bare"}, {"type": kind, "codes": MARKETS}]))
            running.append(tasks.create_task(read(ws)))
        await asyncio.sleep(3.0)
        latencies.clear()
        started = time.perf_counter()
        await asyncio.sleep(seconds)
        n = len(latencies)
        rate = n / (time.perf_counter() - started)
        for task in running:
            task.cancel()
    return latencies[:n], rate


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--trade-speed", type=float, default=800.0)
    parser.add_argument("--mixed-speed", type=float, default=100.0)
    parser.add_argument("--low-speed", type=float, default=20.0)
    args = parser.parse_args()
    print(f"latency: {len(MARKETS)} markets, {args.seconds:.0f} s per run, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    loads = (
        (("trade",), args.trade_speed),
        (("trade", "ticker", "orderbook"), args.mixed_speed),
        (("trade", "ticker", "orderbook"), args.low_speed),
    )
    for kinds, speed in loads:
        markets = ",".join(MARKETS)
        with spawn_exchange(
            "--speed", f"{speed:g}", "--no-rate-limits", "--markets", markets
        ) as urls:
            bare, bare_rate = asyncio.run(bare_run(urls, kinds, args.seconds))
            mine, rate = asyncio.run(backbone_run(urls, kinds, args.seconds))
        print(f"  {'+'.join(kinds)} at exchange speed {speed:g}")
        print(f"    bare reader -> queue -> consumer {bare_rate:7,.0f} msg/s  {percentiles(bare)}")
        print(f"    MarketDataBackbone streams       {rate:7,.0f} msg/s  {percentiles(mine)}")


if __name__ == "__main__":
    main()
