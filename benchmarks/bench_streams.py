"""Backbone at scale: 10, 100 and all simulator markets streamed at once, and memory with a
slow consumer over a long run.

Runs ``tape exchange`` in its own process (scaled clock). For each market count the backbone
streams trades, tickers and orderbooks of that many markets for ``--seconds``; the baseline in
the same run is a bare websockets client subscribed to the same set, counting frames. Printed:
records per second against frames per second, connections opened, REST calls.

Memory (``--minutes``, 0 to skip): every market, trades, tickers and orderbooks, and a consumer
that takes ``--consumer-ms`` per record (slower than the feed: the ticker and orderbook buffers
drop the oldest, the trade buffer holds the socket back). The resident set size is sampled every
10 s; printed are the samples at each minute and the growth between minute 2 and the end.
``--trace N`` runs tracemalloc (N frames per allocation) and prints the allocation sites that
grew most between minute 2 and the end (slower: for finding a leak, not for the figures).

    python benchmarks/bench_streams.py [--seconds 30] [--minutes 10] [--speed 10] [--consumer-ms 50]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import time
import tracemalloc
import urllib.request

from bench_ingest import spawn_exchange
from websockets.asyncio.client import connect

from backbone import MarketDataBackbone
from backbone.memory import release_freed_memory

KINDS = ("trade", "ticker", "orderbook")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE / 1e6


def trimmed_rss_mb() -> float:
    """The resident set size after a full collection and glibc's ``malloc_trim(0)`` (memory
    freed but kept by the allocators handed back): what the process really holds."""
    gc.collect()
    release_freed_memory()
    return rss_mb()


def all_markets(rest_url: str) -> list[str]:
    with urllib.request.urlopen(rest_url + "/market/all") as resp:
        return [m["market"] for m in json.load(resp)]


async def bare(ws_url: str, markets: list[str], seconds: float) -> float:
    subscribe = json.dumps([{"ticket": "bare"}] + [{"type": k, "codes": markets} for k in KINDS])
    count = 0
    async with connect(ws_url, max_size=None, compression=None) as ws:
        await ws.send(subscribe)
        started = time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            try:
                async with asyncio.timeout(deadline - time.perf_counter()):
                    await ws.recv()
            except TimeoutError:
                break
            count += 1
        return count / (time.perf_counter() - started)


async def streamed(
    urls: dict[str, str], markets: list[str], seconds: float
) -> tuple[float, int, int]:
    count = 0
    async with MarketDataBackbone(urls["rest_url"], urls["ws_url"]) as bb:

        async def consume(stream: object) -> None:
            nonlocal count
            async for _ in stream:  # type: ignore[attr-defined]
                count += 1

        async with asyncio.TaskGroup() as tasks:
            consumers = [
                tasks.create_task(consume(bb.stream_trade(markets))),
                tasks.create_task(consume(bb.stream_ticker(markets))),
                tasks.create_task(consume(bb.stream_orderbook(markets))),
            ]
            started = time.perf_counter()
            await asyncio.sleep(seconds)
            rate = count / (time.perf_counter() - started)
            stats = bb.statistics()
            for consumer in consumers:
                consumer.cancel()
    return rate, stats.connects, stats.rest_calls


def top_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, n: int = 12) -> None:
    """Print the ``n`` allocation sites (innermost frames) that grew most between snapshots."""
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(keep).compare_to(before.filter_traces(keep), "traceback")
    total = sum(d.size_diff for d in diff)
    print(f"  traced Python memory grew {total / 1e6:+.2f} MB; largest growth by site:")
    for stat in diff[:n]:
        print(f"    {stat.size_diff / 1e3:+9.1f} kB  {stat.count_diff:+7d} blocks")
        for line in stat.traceback.format(limit=4, most_recent_first=True):
            print(f"        {line}")


async def slow_consumer(
    urls: dict[str, str], markets: list[str], minutes: float, consumer_s: float, trace: int
) -> None:
    samples: list[tuple[float, float]] = []
    snapshot: tracemalloc.Snapshot | None = None
    async with MarketDataBackbone(urls["rest_url"], urls["ws_url"]) as bb:

        async def consume(stream: object) -> None:
            async for _ in stream:  # type: ignore[attr-defined]
                await asyncio.sleep(consumer_s)  # a deliberately slow consumer

        async with asyncio.TaskGroup() as tasks:
            consumers = [
                tasks.create_task(consume(bb.stream_trade(markets))),
                tasks.create_task(consume(bb.stream_ticker(markets))),
                tasks.create_task(consume(bb.stream_orderbook(markets))),
            ]
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < minutes * 60:
                samples.append((elapsed, rss_mb()))
                if trace and snapshot is None and elapsed >= min(120, minutes * 30):
                    snapshot = tracemalloc.take_snapshot()
                if len(samples) % 6 == 1:
                    stats = bb.statistics()
                    blocked = sum(s.blocked for s in stats.streams)
                    print(f"  {elapsed / 60:5.1f} min  rss {samples[-1][1]:7.1f} MB  "
                          f"delivered {sum(s.delivered for s in stats.streams):8,}  "
                          f"dropped {sum(s.dropped for s in stats.streams):8,}  "
                          f"blocked {blocked:6,}  "
                          f"reconnects {stats.reconnects}  repaired {stats.trades_repaired}",
                          flush=True)  # fmt: skip
                await asyncio.sleep(10)
            samples.append((time.perf_counter() - started, rss_mb()))
            trimmed = trimmed_rss_mb()
            if snapshot is not None:
                top_growth(snapshot, tracemalloc.take_snapshot())
            for consumer in consumers:
                consumer.cancel()
    at2 = next(rss for t, rss in samples if t >= 120) if minutes >= 2 else samples[0][1]
    end = samples[-1][1]
    minute = samples[-1][0] / 60
    print(f"  rss at minute 2 {at2:.1f} MB, at the end ({minute:.1f} min) {end:.1f} MB, "
          f"growth {end - at2:+.1f} MB   goal < 5 MB")  # fmt: skip
    print(f"  at the end after gc.collect() and malloc_trim(0): {trimmed:.1f} MB "
          f"({trimmed - end:+.1f} MB: memory the allocators held, freed)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speed", type=float, default=10.0)
    parser.add_argument("--counts", default="10,100,all")
    parser.add_argument("--consumer-ms", type=float, default=50.0)
    parser.add_argument(
        "--trace", type=int, default=0, help="tracemalloc frames: diff minute 2 against the end"
    )
    args = parser.parse_args()
    if args.trace:
        tracemalloc.start(args.trace)
    print(f"streams: speed {args.speed:g}, load {os.getloadavg()[0]:.1f}", flush=True)
    with spawn_exchange("--speed", f"{args.speed:g}") as urls:
        markets = all_markets(urls["rest_url"])
        for count in args.counts.split(",") if args.counts else ():
            chosen = markets if count == "all" else markets[: int(count)]
            base = asyncio.run(bare(urls["ws_url"], chosen, args.seconds))
            rate, connects, rest_calls = asyncio.run(streamed(urls, chosen, args.seconds))
            print(f"  {len(chosen):4d} markets  bare {base:8,.1f} frames/s  backbone "
                  f"{rate:8,.1f} records/s  ratio {rate / base:.2f}  connections {connects}  "
                  f"REST calls {rest_calls}", flush=True)  # fmt: skip
        if args.minutes:
            print(f"slow consumer ({args.consumer_ms:g} ms a record), {len(markets)} markets, "
                  f"{args.minutes:g} min:", flush=True)  # fmt: skip
            asyncio.run(
                slow_consumer(urls, markets, args.minutes, args.consumer_ms / 1000, args.trace)
            )


if __name__ == "__main__":
    main()
