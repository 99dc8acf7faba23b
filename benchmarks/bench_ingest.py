"""Backbone ingest: trade messages through receive, parse and unify, against a bare receive
loop on the same socket.

Starts ``tape exchange --firehose trades`` in its own process (so client and exchange do not
share a core), opens one WebSocket with the same client settings the backbone uses, and
alternates phases on that one socket:

- ``bare``: ``await ws.recv()`` and discard (the baseline);
- ``unify``: ``await ws.recv()``, stamp ``received_ns``, ``DataUnifier.unify_ws`` into a
  ``TradeData`` (msgspec decode into Decimal from the wire text, enum tables, signed change).

Then, on a fresh connection, the whole backbone: ``MarketDataBackbone.stream_trade`` (receive,
parse, unify, de-duplicate on (symbol, sequential_id), fan out through the bounded buffer)
with a consumer that counts records, as a ratio to a bare loop measured just before it.

    python benchmarks/bench_ingest.py [--phase-frames 50000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from websockets.asyncio.client import connect

from backbone import BackboneConfig, DataUnifier, MarketDataBackbone
from backbone.models import TradeData

MARKETS = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
SUBSCRIBE = json.dumps(
    [{"ticket": "bench"}, {"type": "trade", "codes": MARKETS}, {"format": "DEFAULT"}]
)


@contextmanager
def spawn_exchange(*args: str) -> Iterator[dict[str, str]]:
    """Run ``tape exchange ARGS`` in its own process; yield its URLs; stop it after."""
    cmd = [sys.executable, "-m", "tape", "exchange", "--duration", "2h", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


Rates = tuple[float, float]
"""(frames per second of wall time, frames per second of this process's CPU time)."""


async def _bare(recv: object, frames: int) -> Rates:
    receive = recv  # bound method of the connection
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(frames):
        await receive()  # type: ignore[operator]
    return frames / (time.perf_counter() - wall), frames / (time.process_time() - cpu)


async def _unify(recv: object, frames: int) -> Rates:
    unify = DataUnifier().unify_ws
    clock_ns = time.time_ns
    receive = recv
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(frames):
        data = await receive()  # type: ignore[operator]
        record = unify(data, received_ns=clock_ns())
    rates = frames / (time.perf_counter() - wall), frames / (time.process_time() - cpu)
    assert isinstance(record, TradeData)
    return rates


async def socket_phases(
    ws_url: str, phase_frames: int, rounds: int
) -> tuple[list[Rates], list[Rates]]:
    bare: list[Rates] = []
    unified: list[Rates] = []
    async with connect(ws_url, max_size=None, compression=None, ping_interval=None) as ws:
        await ws.send(SUBSCRIBE)
        await _bare(ws.recv, 2_000)  # warm-up
        for _ in range(rounds):
            bare.append(await _bare(ws.recv, phase_frames))
            unified.append(await _unify(ws.recv, phase_frames))
    return bare, unified


async def through_backbone(urls: dict[str, str], frames: int) -> tuple[Rates, Rates]:
    async with connect(urls["ws_url"], max_size=None, compression=None, ping_interval=None) as ws:
        await ws.send(SUBSCRIBE)
        await _bare(ws.recv, 2_000)
        bare = await _bare(ws.recv, frames)
    config = BackboneConfig(reconcile_interval_s=3600.0, market_refresh_s=3600.0)
    async with MarketDataBackbone(urls["rest_url"], urls["ws_url"], config=config) as bb:
        count = 0
        wall = cpu = 0.0
        async for _trade in bb.stream_trade(MARKETS):
            count += 1
            if count == 2_000:
                wall, cpu = time.perf_counter(), time.process_time()
            elif count == 2_000 + frames:
                break
        rate = frames / (time.perf_counter() - wall), frames / (time.process_time() - cpu)
    return bare, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--phase-frames", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    per_socket = args.phase_frames * args.rounds * 2 + 10_000
    with spawn_exchange(
        "--markets", ",".join(MARKETS), "--no-rate-limits", "--firehose", "trades",
        "--firehose-frames", str(per_socket),
    ) as urls:  # fmt: skip
        bare, unified = asyncio.run(socket_phases(urls["ws_url"], args.phase_frames, args.rounds))
        bb_bare, bb_rate = asyncio.run(through_backbone(urls, args.phase_frames))
    print(f"ingest: {args.rounds} rounds of {args.phase_frames} trade frames per phase, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for i, what in enumerate(("wall", "cpu")):
        ratios = [u[i] / b[i] for u, b in zip(unified, bare, strict=True)]
        print(f"  [{what} time]")
        base = statistics.median(b[i] for b in bare)
        parsed = statistics.median(u[i] for u in unified)
        print(f"  bare receive (baseline)         median {base:10,.0f} frames/s")
        print(f"  receive + parse + unify         median {parsed:10,.0f} frames/s")
        print(f"  ratio per round                 {', '.join(f'{r:.2f}' for r in ratios)}")
        print(f"  ratio (median)                  {statistics.median(ratios):.2f}   goal >= 0.5")
        print(f"  bare receive, fresh socket      {bb_bare[i]:10,.0f} frames/s")
        full, ratio = bb_rate[i], bb_rate[i] / bb_bare[i]
        print(f"  MarketDataBackbone.stream_trade {full:10,.0f} records/s   ratio {ratio:.2f}")


if __name__ == "__main__":
    main()
