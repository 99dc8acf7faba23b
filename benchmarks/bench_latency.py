"""Backbone added latency: from the moment a frame arrives (``received_ns``, stamped by the
WebSocket shell) to the moment the consumer holds the record, at a paced message rate.

Runs ``tape exchange --firehose MIX --firehose-rate RATE`` in its own process (so client and
exchange do not share a core): the exchange sends RATE frames a second in real time to a
client subscribed to every channel of the mix, in bursts at most a millisecond apart. Two
loads: trades alone (``--firehose trades``: the trade socket gets RATE frames/s) and the mixed
load (``--firehose mixed``: half trades, a quarter tickers, a quarter 30-unit orderbooks, one
socket per data kind as the backbone keeps them, RATE frames/s in all).

``MarketDataBackbone`` streams the markets (``stream_trade``, and for the mixed load also
``stream_ticker`` and ``stream_orderbook``, one consumer task each) and the consumer records
``time.time_ns() - record.received_ns`` for every WebSocket record.

Baseline in the same run, on fresh sockets to the same exchange: bare aiohttp readers (the
backbone's client library), one connection per data kind on the same subscription, that stamp
each frame on arrival and hand it through an ``asyncio.Queue`` to one consumer task (the least
any hand-over from a reader task to a consumer can cost; no decoding).

Printed per load and client: messages a second actually received, p50 / p99 / p99.9 / max of
the added latency, the client process's CPU share, and for the backbone the percentiles per
data kind.

``--stalls``: a probe task in each client sleeps 1 ms at a time and counts the event loop's
stalls (the probe woke more than 5 ms late), with the thread's CPU time during them: a stall
in which the thread hardly ran is time the process waited for a core (other processes on a
loaded machine), not work of its own. The probe adds a thousand wake-ups a second.

    python benchmarks/bench_latency.py [--seconds 20] [--rate 5000] [--loads trades,mixed]
        [--stalls]
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
KINDS = {"trades": ("trade",), "mixed": ("trade", "ticker", "orderbook")}
WARMUP_S = 3.0

STALL_S = 0.005

Result = tuple[dict[str, list[int]], float, float, list[tuple[float, float]]]
"""(latencies in ns by data kind, messages a second received, CPU seconds per wall second,
event loop stalls as (wall seconds, thread CPU seconds))."""


async def probe(stalls: list[tuple[float, float]]) -> None:
    """Sleep 1 ms at a time; record every wake-up more than STALL_S late."""
    wall, cpu = time.perf_counter, time.thread_time
    while True:
        w, c = wall(), cpu()
        await asyncio.sleep(0.001)
        late = wall() - w - 0.001
        if late > STALL_S:
            stalls.append((late, cpu() - c))


def percentiles(samples: list[int]) -> str:
    if not samples:
        return "no samples"
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6

    return (f"p50 {at(0.50):6.3f} ms  p99 {at(0.99):6.3f} ms  p99.9 {at(0.999):6.3f} ms  "
            f"max {ordered[-1] / 1e6:6.2f} ms  (n={len(ordered):,})")  # fmt: skip


async def _measure(
    latencies: dict[str, list[int]], seconds: float, stalls: list[tuple[float, float]]
) -> tuple[float, float, int]:
    # Let connections, snapshots and start-up pass; then measure for ``seconds``.
    await asyncio.sleep(WARMUP_S)
    for samples in latencies.values():
        samples.clear()
    stalls.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - wall
    n = sum(len(s) for s in latencies.values())
    return elapsed, (time.process_time() - cpu) / elapsed, n


async def backbone_run(
    urls: dict[str, str], kinds: tuple[str, ...], seconds: float, with_probe: bool
) -> Result:
    latencies: dict[str, list[int]] = {k: [] for k in kinds}
    stalls: list[tuple[float, float]] = []
    # REST reconciliation off: its trade pages would take exchange CPU from the firehose.
    config = BackboneConfig(
        orderbook_buffer=10_000,
        ticker_buffer=10_000,
        reconcile_interval_s=3600.0,
        market_refresh_s=3600.0,
    )
    async with MarketDataBackbone(urls["rest_url"], urls["ws_url"], config=config) as bb:

        async def consume(kind: str, stream: object) -> None:
            clock = time.time_ns
            samples = latencies[kind]
            async for record in stream:  # type: ignore[attr-defined]
                rec: MarketRecord = record
                if rec.source == "websocket":
                    samples.append(clock() - rec.received_ns)

        streams = {
            "trade": bb.stream_trade,
            "ticker": bb.stream_ticker,
            "orderbook": bb.stream_orderbook,
        }
        async with asyncio.TaskGroup() as tasks:
            consumers = [tasks.create_task(consume(k, streams[k](MARKETS))) for k in kinds]
            if with_probe:
                consumers.append(tasks.create_task(probe(stalls)))
            elapsed, cpu_share, n = await _measure(latencies, seconds, stalls)
            for consumer in consumers:
                consumer.cancel()
    return latencies, n / elapsed, cpu_share, stalls


async def bare_run(
    urls: dict[str, str], kinds: tuple[str, ...], seconds: float, with_probe: bool
) -> Result:
    latencies: dict[str, list[int]] = {k: [] for k in kinds}
    stalls: list[tuple[float, float]] = []
    queue: asyncio.Queue[tuple[str, bytes, int]] = asyncio.Queue(maxsize=10_000)

    async def consume() -> None:
        clock = time.time_ns
        while True:
            kind, _, received_ns = await queue.get()
            latencies[kind].append(clock() - received_ns)

    async def read(kind: str, ws: aiohttp.ClientWebSocketResponse[Literal[False]]) -> None:
        while True:
            _, data, _ = await ws.receive()
            await queue.put((kind, data, time.time_ns()))
            await asyncio.sleep(0)  # hand over at once: the least latency a reader can give

    async with aiohttp.ClientSession() as http, asyncio.TaskGroup() as tasks:
        running = [tasks.create_task(consume())]
        for kind in kinds:
            ws = await http.ws_connect(
                urls["ws_url"], autoping=False, max_msg_size=0, compress=0, decode_text=False
            )
            await ws.send_str(json.dumps([{"ticket": "bare"}, {"type": kind, "codes": MARKETS}]))
            running.append(tasks.create_task(read(kind, ws)))
        if with_probe:
            running.append(tasks.create_task(probe(stalls)))
        elapsed, cpu_share, n = await _measure(latencies, seconds, stalls)
        for task in running:
            task.cancel()
    return latencies, n / elapsed, cpu_share, stalls


def report(label: str, result: Result, *, by_kind: bool, seconds: float) -> None:
    latencies, rate, cpu_share, stalls = result
    merged = [x for samples in latencies.values() for x in samples]
    print(f"    {label:<33s} {rate:7,.0f} msg/s  CPU {cpu_share:4.0%}  {percentiles(merged)}")
    if stalls:
        wall = sum(w for w, _ in stalls)
        cpu = sum(c for _, c in stalls)
        longest = max(w for w, _ in stalls)
        print(f"      loop stalls > {STALL_S * 1e3:.0f} ms: {len(stalls) / seconds:.1f}/s, "
              f"{wall / seconds:.1%} of the time, longest {longest * 1e3:.1f} ms; "
              f"the thread ran {cpu / wall:.0%} of the stalled time")  # fmt: skip
    if by_kind and len(latencies) > 1:
        for kind, samples in latencies.items():
            print(f"      {kind:<31s} {'':21s}{percentiles(samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=5000.0, help="frames/s per client")
    parser.add_argument("--loads", default="trades,mixed", help="trades, mixed or both")
    parser.add_argument("--stalls", action="store_true", help="count event loop stalls")
    args = parser.parse_args()
    loads = [load.strip() for load in args.loads.split(",") if load.strip()]
    for load in loads:
        if load not in KINDS:
            parser.error(f"--loads takes trades and/or mixed, not {load!r}")
    # Every connection gets its own budget; enough for warm-up, the run and a margin.
    frames = int(args.rate * (WARMUP_S + args.seconds + 10))
    print(f"latency: {len(MARKETS)} markets, {args.rate:,.0f} frames/s per client, "
          f"{args.seconds:.0f} s per run, load average {os.getloadavg()}")  # fmt: skip
    for load in loads:
        kinds = KINDS[load]
        with spawn_exchange(
            "--no-rate-limits", "--markets", ",".join(MARKETS), "--firehose", load,
            "--firehose-frames", str(frames), "--firehose-rate", f"{args.rate:g}",
        ) as urls:  # fmt: skip
            bare = asyncio.run(bare_run(urls, kinds, args.seconds, args.stalls))
            mine = asyncio.run(backbone_run(urls, kinds, args.seconds, args.stalls))
        print(f"  {load}: {'+'.join(kinds)}, firehose {args.rate:,.0f} frames/s")
        report("bare reader -> queue -> consumer", bare, by_kind=False, seconds=args.seconds)
        report("MarketDataBackbone streams", mine, by_kind=True, seconds=args.seconds)
    print(f"  load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
