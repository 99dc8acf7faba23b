"""Backbone failover: WebSocket failure to the first REST record, back to the WebSocket once
the exchange accepts again, and many induced disconnects, every one recovered.

Runs ``tape exchange`` in its own process on busy markets (scaled clock) and drives faults
through its admin API (``POST /_sim/faults``).

Trials (``--trials``): streams of tickers and trades are live on the WebSocket; the exchange
is told to refuse new sockets for ``--refuse-s`` (exchange seconds) and to drop every socket.
Measured: from the fault to the first ``source="rest"`` record; from the moment the exchange
accepts sockets again to the first ``source="websocket"`` record. Baselines measured in the
same run: one REST ticker round trip (the least any REST record can take), and a bare
websockets client's connect + subscribe + first frame.

Disconnects (``--disconnects``): a trade stream on the busy markets; each round drops every
socket and waits for the ``reconnected`` event. At the end the trades delivered are compared
with the exchange's truth (``/_sim/truth/trades``): none missing, none repeated.

    python benchmarks/bench_failover.py [--trials 5] [--disconnects 1000] [--speed 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any

import aiohttp
from bench_ingest import spawn_exchange
from websockets.asyncio.client import connect

from backbone import BackboneConfig, MarketDataBackbone
from backbone.models import ConnectionEvent, EventKind, MarketRecord, TradeData
from backbone.upbit.protocol._wire import datetime_to_ms

MARKETS = ["KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL", "KRW-DOGE"]


async def fault(
    http: aiohttp.ClientSession, admin: str, kind: str, **params: Any
) -> dict[str, Any]:
    async with http.post(f"{admin}/faults", json={"kind": kind, **params}) as resp:
        resp.raise_for_status()
        answer: dict[str, Any] = await resp.json()
        return answer


class Watch:
    """Consumes streams; records when the first record of a source arrives after a mark."""

    def __init__(self) -> None:
        self.mark = 0.0
        self.first: dict[str, float] = {}
        self.changed = asyncio.Event()

    def reset(self) -> None:
        self.mark = time.perf_counter()
        self.first = {}

    async def consume(self, stream: Any) -> None:
        async for record in stream:
            self.see(record)

    def see(self, record: MarketRecord) -> None:
        now = time.perf_counter()
        if record.source not in self.first and now >= self.mark:
            self.first[record.source] = now
            self.changed.set()

    async def wait_source(self, source: str, after: float, timeout_s: float) -> float:
        async with asyncio.timeout(timeout_s):
            while not (source in self.first and self.first[source] >= after):
                if source in self.first and self.first[source] < after:
                    del self.first[source]
                self.changed.clear()
                await self.changed.wait()
        return self.first[source]


async def baselines(urls: dict[str, str]) -> tuple[float, float]:
    rest_s = float("inf")
    async with aiohttp.ClientSession() as http:
        for _ in range(5):  # best of 5: the first one also opens the connection
            started = time.perf_counter()
            async with http.get(
                f"{urls['rest_url']}/ticker", params={"markets": MARKETS[0]}
            ) as resp:
                await resp.read()
            rest_s = min(rest_s, time.perf_counter() - started)
    started = time.perf_counter()
    subscribe = json.dumps([{"ticket": "b"}, {"type": "trade", "codes": MARKETS}])
    async with connect(urls["ws_url"], compression=None) as ws:
        await ws.send(subscribe)
        await ws.recv()
    return rest_s, time.perf_counter() - started


async def trials(urls: dict[str, str], n: int, refuse_s: float, speed: float) -> None:
    rest_base, ws_base = await baselines(urls)
    failover: list[float] = []
    back: list[float] = []
    watch = Watch()
    async with (
        aiohttp.ClientSession() as http,
        MarketDataBackbone(urls["rest_url"], urls["ws_url"]) as bb,
        asyncio.TaskGroup() as tasks,
    ):
        consumers = [
            tasks.create_task(watch.consume(bb.stream_trade(MARKETS))),
            tasks.create_task(watch.consume(bb.stream_ticker(MARKETS))),
        ]
        await watch.wait_source("websocket", 0.0, 10)
        for _ in range(n):
            await asyncio.sleep(1.0)  # let the streams settle on the socket between trials
            watch.reset()
            started = time.perf_counter()
            refused = await fault(http, urls["admin_url"], "refuse_ws", seconds=refuse_s)
            await fault(http, urls["admin_url"], "disconnect")
            first_rest = await watch.wait_source("rest", started, 10)
            failover.append(first_rest - started)
            accepts_at = started + (refused["end_ms"] - refused["start_ms"]) / 1000 / speed
            await asyncio.sleep(max(0.0, accepts_at - time.perf_counter()))
            first_ws = await watch.wait_source("websocket", accepts_at, 10)
            back.append(first_ws - accepts_at)
        for consumer in consumers:
            consumer.cancel()
    print(f"failover trials: {n}, refuse {refuse_s} exchange s at speed {speed}")
    print(f"  baseline: one REST ticker round trip (best of 5)       {rest_base * 1000:8.1f} ms")
    print(f"  baseline: bare ws connect+subscribe+first frame {ws_base * 1000:8.1f} ms")
    print(f"  WS failure -> first REST record   median {statistics.median(failover) * 1000:7.1f} ms"
          f"  max {max(failover) * 1000:7.1f} ms   goal < 1000 ms")  # fmt: skip
    print(f"  exchange accepts -> first WS rec  median {statistics.median(back) * 1000:7.1f} ms"
          f"  max {max(back) * 1000:7.1f} ms   goal < 2000 ms")  # fmt: skip


async def disconnects(urls: dict[str, str], n: int) -> None:
    events: list[ConnectionEvent] = []
    trades: list[TradeData] = []
    reconnected = asyncio.Condition()
    config = BackboneConfig(reconcile_interval_s=2.0)

    async def collect_events(stream: Any) -> None:
        async for event in stream:
            async with reconnected:
                events.append(event)
                reconnected.notify_all()

    async def collect_trades(stream: Any) -> None:
        async for trade in stream:
            trades.append(trade)

    def count() -> int:
        return sum(e.kind == EventKind.RECONNECTED for e in events)

    started = time.perf_counter()
    failures = 0
    async with (
        aiohttp.ClientSession() as http,
        MarketDataBackbone(urls["rest_url"], urls["ws_url"], config=config) as bb,
        asyncio.TaskGroup() as tasks,
    ):
        ev = tasks.create_task(collect_events(bb.stream_events()))
        tr = tasks.create_task(collect_trades(bb.stream_trade(MARKETS)))
        async with asyncio.timeout(10), reconnected:
            await reconnected.wait_for(lambda: any(e.kind == EventKind.CONNECTED for e in events))
        start_ms = max(datetime_to_ms(t.trade_timestamp) for t in trades) + 1 if trades else 0
        for i in range(n):
            await fault(http, urls["admin_url"], "disconnect")
            try:
                async with asyncio.timeout(15), reconnected:
                    await reconnected.wait_for(lambda i=i: count() >= i + 1)
            except TimeoutError:
                failures += 1
            if (i + 1) % 100 == 0:
                spent = time.perf_counter() - started
                print(f"  {i + 1} disconnects, {count()} reconnected, {spent:.0f} s")
        elapsed = time.perf_counter() - started
        # Let the REST reconciliation confirm the last stretch, then compare with the truth.
        end_ms = max(datetime_to_ms(t.trade_timestamp) for t in trades)
        async with asyncio.timeout(60):
            await bb.session.wait_verified(MARKETS, end_ms)
        lost = repeated = total = 0
        for symbol in MARKETS:
            params = {"market": symbol, "from": str(start_ms), "to": str(end_ms)}
            async with http.get(f"{urls['admin_url']}/truth/trades", params=params) as resp:
                truth = {t["sequential_id"] for t in await resp.json()}
            mine = [t.sequential_id for t in trades if t.symbol == symbol
                    and start_ms <= datetime_to_ms(t.trade_timestamp) < end_ms]  # fmt: skip
            total += len(truth)
            lost += len(truth - set(mine))
            repeated += len(mine) - len(set(mine))
        stats = bb.statistics()
        ev.cancel()
        tr.cancel()
    print(f"disconnects: {n} induced in {elapsed:.0f} s ({n / elapsed:.1f}/s; Upbit allows 5 "
          f"new connections/s)")  # fmt: skip
    print(
        f"  recovered {count()} of {n}, timeouts {failures}, backbone reconnects {stats.reconnects}"
    )
    print(f"  trades checked against the truth: {total}, missing {lost}, repeated {repeated}, "
          f"repaired from REST {stats.trades_repaired}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--refuse-s", type=float, default=30.0, help="exchange seconds")
    parser.add_argument("--disconnects", type=int, default=1000)
    parser.add_argument("--speed", type=float, default=10.0)
    args = parser.parse_args()
    print(f"load {os.getloadavg()[0]:.1f}")
    with spawn_exchange("--markets", ",".join(MARKETS), "--speed", str(args.speed)) as urls:
        if args.trials:
            asyncio.run(trials(urls, args.trials, args.refuse_s, args.speed))
        if args.disconnects:
            asyncio.run(disconnects(urls, args.disconnects))


if __name__ == "__main__":
    main()
