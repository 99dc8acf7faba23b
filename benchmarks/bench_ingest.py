"""Backbone ingest: trade messages through receive, parse and unify, against bare receive
loops in the same run.

Starts ``tape exchange --firehose trades`` in its own process (so client and exchange do not
share a core) and alternates phases, in rounds:

- on one aiohttp WebSocket with the backbone's client settings (the library the backbone
  receives with): ``bare`` awaits ``ws.receive()`` and discards (the baseline on the same
  socket); ``unify`` awaits ``ws.receive()``, stamps ``received_ns`` and runs
  ``DataUnifier.unify_ws`` into a ``TradeData`` (msgspec decode into Decimal from the wire
  text, enum tables, signed change, two datetimes);
- on one websockets connection: ``bare`` ``await ws.recv()`` and discard (the baseline of the
  earlier figures, and of the recorder's capture benchmark);
- the whole backbone: ``MarketDataBackbone.stream_trade`` (receive, parse, unify,
  de-duplicate on (symbol, sequential_id), fan out through the bounded buffer) with a
  consumer that counts records, ``--phase-frames`` records per round.

Rates per wall second and per CPU second of this process; medians over the rounds.

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Literal

import aiohttp
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


def _rates(frames: int, wall: float, cpu: float) -> Rates:
    return frames / (time.perf_counter() - wall), frames / (time.process_time() - cpu)


async def _bare(receive: Callable[[], Awaitable[object]], frames: int) -> Rates:
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(frames):
        await receive()
    return _rates(frames, wall, cpu)


async def _unify(ws: aiohttp.ClientWebSocketResponse[Literal[False]], frames: int) -> Rates:
    unify = DataUnifier().unify_ws
    clock_ns = time.time_ns
    receive = ws.receive
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(frames):
        _, data, _ = await receive()
        record = unify(data, received_ns=clock_ns())
    rates = _rates(frames, wall, cpu)
    assert isinstance(record, TradeData)
    return rates


async def aiohttp_phases(ws_url: str, phase_frames: int, rounds: int) -> dict[str, list[Rates]]:
    out: dict[str, list[Rates]] = {"bare": [], "unify": []}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            ws_url, autoping=False, max_msg_size=0, compress=0, decode_text=False
        ) as ws,
    ):
        await ws.send_str(SUBSCRIBE)
        await _bare(ws.receive, 2_000)  # warm-up
        for _ in range(rounds):
            out["bare"].append(await _bare(ws.receive, phase_frames))
            out["unify"].append(await _unify(ws, phase_frames))
    return out


async def websockets_phases(ws_url: str, phase_frames: int, rounds: int) -> list[Rates]:
    async with connect(ws_url, max_size=None, compression=None, ping_interval=None) as ws:
        await ws.send(SUBSCRIBE)
        await _bare(ws.recv, 2_000)
        return [await _bare(ws.recv, phase_frames) for _ in range(rounds)]


async def through_backbone(urls: dict[str, str], phase_frames: int, rounds: int) -> list[Rates]:
    config = BackboneConfig(reconcile_interval_s=3600.0, market_refresh_s=3600.0)
    out: list[Rates] = []
    async with MarketDataBackbone(urls["rest_url"], urls["ws_url"], config=config) as bb:
        count = 0
        wall = cpu = 0.0
        async for _trade in bb.stream_trade(MARKETS):
            count += 1
            if count == 2_000:
                wall, cpu = time.perf_counter(), time.process_time()
            elif count > 2_000 and (count - 2_000) % phase_frames == 0:
                out.append(_rates(phase_frames, wall, cpu))
                if len(out) == rounds:
                    break
                wall, cpu = time.perf_counter(), time.process_time()
    return out


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
        phases = asyncio.run(aiohttp_phases(urls["ws_url"], args.phase_frames, args.rounds))
        legacy = asyncio.run(websockets_phases(urls["ws_url"], args.phase_frames, args.rounds))
        full = asyncio.run(through_backbone(urls, args.phase_frames, args.rounds))
    print(f"ingest: {args.rounds} rounds of {args.phase_frames} trade frames per phase, "
          f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
    for i, what in enumerate(("wall", "cpu")):
        bare = statistics.median(r[i] for r in phases["bare"])
        ws_bare = statistics.median(r[i] for r in legacy)
        print(f"  [{what} time, medians of {args.rounds} rounds]")
        print(f"  bare receive, aiohttp (same socket)     {bare:10,.0f} frames/s   1.00")
        print(f"  bare receive, websockets                {ws_bare:10,.0f} frames/s   "
              f"{ws_bare / bare:.2f}")  # fmt: skip
        for label, rates in (
            ("receive + parse + unify (aiohttp)", phases["unify"]),
            ("MarketDataBackbone.stream_trade", full),
        ):
            rate = statistics.median(r[i] for r in rates)
            per_round = [u[i] / b[i] for u, b in zip(rates, phases["bare"], strict=True)]
            print(f"  {label:<39s} {rate:10,.0f} frames/s   {rate / bare:.2f} of aiohttp "
                  f"(rounds {', '.join(f'{r:.2f}' for r in per_round)}), "
                  f"{rate / ws_bare:.2f} of websockets")  # fmt: skip


if __name__ == "__main__":
    main()
