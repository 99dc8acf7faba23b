"""Recorder capture throughput from the simulator's firehose, on one core, with zero loss.

Starts ``tape exchange --firehose MIX`` in its own process pinned to the other core, pins
this process to one core, and measures, each on fresh connections subscribed like the
backbone subscribes (one connection per data kind):

- ``bare``: the receive-and-discard loop (websockets ``recv()``, the backbone's library):
  the baseline;
- ``backbone``: ``MarketDataBackbone.stream_*`` consumed and discarded (for reference:
  the recorder cannot be faster than the client it records);
- ``capture``: ``Recorder`` writing a recording (journal every 250 ms, Parquet at each
  rotation), with no per-record hook (its accepted counts are polled); after it closes, the
  Parquet row count of every dataset must equal what was accepted, and the backbone must
  report nothing dropped.

``--mix trades``: trade messages on 3 markets. ``--mix mixed``: trade, ticker and 30-unit
orderbook messages; the firehose sends each connection the same number of frames and the
backbone keeps one connection per kind, so the mix is a third of each (heavier than the issue's
half trades, quarter tickers, quarter orderbooks: tickers and orderbooks cost more).

    python benchmarks/bench_capture.py --mix trades --frames 200000
    python benchmarks/bench_capture.py --mix mixed --frames 60000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq
from websockets.asyncio.client import connect

from backbone import BackboneConfig, MarketDataBackbone
from recorder.capture import Recorder
from recorder.config import RecorderConfig, StorageConfig

MARKETS = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
KINDS = {"trades": ("trade",), "mixed": ("trade", "ticker", "orderbook")}


@contextmanager
def spawn_exchange(mix: str, frames: int, core: int) -> Iterator[dict[str, str]]:
    """Run the firehose exchange in its own process on ``core``; yield its URLs."""
    cmd = [
        sys.executable, "-m", "tape", "exchange", "--duration", "2h", "--no-rate-limits",
        "--markets", ",".join(MARKETS), "--firehose", mix, "--firehose-frames", str(frames),
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def bare(ws_url: str, kinds: tuple[str, ...], frames: int) -> float:
    """Frames per second through bare receive-and-discard loops, one connection per kind."""

    async def one(kind: str) -> None:
        request = [
            {"ticket": f"bare-{kind}"},
            {"type": kind, "codes": MARKETS},
            {"format": "DEFAULT"},
        ]
        async with connect(ws_url, max_size=None, compression=None, ping_interval=None) as ws:
            await ws.send(json.dumps(request))
            for _ in range(frames):
                await ws.recv()

    start = time.perf_counter()
    await asyncio.gather(*(one(kind) for kind in kinds))
    return frames * len(kinds) / (time.perf_counter() - start)


def _backbone_config() -> BackboneConfig:
    # No REST work during the measurement: the firehose is a WebSocket benchmark.
    return BackboneConfig(reconcile_interval_s=3600.0, market_refresh_s=3600.0)


async def through_backbone(urls: dict[str, str], kinds: tuple[str, ...], frames: int) -> float:
    """Records per second through the backbone's streams, consumed and discarded."""
    async with MarketDataBackbone(
        urls["rest_url"], urls["ws_url"], config=_backbone_config()
    ) as bb:
        streams = {
            "trade": bb.stream_trade,
            "ticker": bb.stream_ticker,
            "orderbook": bb.stream_orderbook,
        }
        start = 0.0
        started = asyncio.Event()

        async def one(kind: str) -> None:
            count = 0
            async for _ in streams[kind](MARKETS):
                if not started.is_set():
                    nonlocal start
                    start = time.perf_counter()
                    started.set()
                count += 1
                if count >= frames:
                    return

        await asyncio.gather(*(one(kind) for kind in kinds))
        return frames * len(kinds) / (time.perf_counter() - start)


async def capture(
    urls: dict[str, str], kinds: tuple[str, ...], frames: int, root: Path
) -> tuple[float, dict[str, int], dict[str, int], int]:
    """Records per second through the recorder; returns the rate, the records accepted and
    the Parquet rows per dataset, and what the backbone dropped.

    The recorder runs as ``tape record`` runs it, with no ``on_record`` hook: its accepted
    counts are polled every 10 ms, and the rate is the records accepted between the first
    poll that saw any and the first that saw them all, over the time between the two polls.
    """
    config = RecorderConfig(
        symbols=tuple(MARKETS),
        channels=kinds,
        rest_snapshot_interval_s=0,
        backfill=False,
        storage=StorageConfig(rotation_interval_s=5.0),
    )
    async with MarketDataBackbone(
        urls["rest_url"], urls["ws_url"], config=_backbone_config()
    ) as bb:
        async with Recorder(bb, root, config=config) as recorder:
            start: tuple[float, int] | None = None
            while True:
                accepted = recorder.accepted()
                now = time.perf_counter()
                total = sum(accepted.get(k, 0) for k in kinds)
                if start is None and total:
                    start = (now, total)
                if all(accepted.get(k, 0) >= frames for k in kinds):
                    break
                await asyncio.sleep(0.01)
            assert start is not None
            rate = (total - start[1]) / (now - start[0])
            counts = {k: accepted.get(k, 0) for k in kinds}
        dropped = sum(s.dropped for s in bb.statistics().streams)
    rows = {
        kind: sum(pq.read_metadata(p).num_rows for p in (root / kind).rglob("*.parquet"))
        for kind in kinds
    }
    return rate, counts, rows, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mix", choices=sorted(KINDS), default="trades")
    parser.add_argument("--frames", type=int, default=200_000, help="per connection and phase")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--core", type=int, default=0, help="the core this process runs on")
    parser.add_argument("--dir", type=Path, default=None, help="where recordings go (a tmp dir)")
    args = parser.parse_args()
    kinds = KINDS[args.mix]
    os.sched_setaffinity(0, {args.core})
    other = next(iter(os.sched_getaffinity(0) ^ set(range(os.cpu_count() or 2))), args.core)
    per_connection = args.frames
    base_dir = Path(tempfile.mkdtemp(prefix="bench-capture-", dir=args.dir))
    results: list[tuple[float, float, float]] = []
    try:
        with spawn_exchange(args.mix, per_connection, other) as urls:
            for n in range(args.rounds):
                b = asyncio.run(bare(urls["ws_url"], kinds, args.frames))
                bb = asyncio.run(through_backbone(urls, kinds, args.frames))
                root = base_dir / f"round-{n}"
                rate, counts, rows, dropped = asyncio.run(capture(urls, kinds, args.frames, root))
                loss = {k: counts[k] - rows[k] for k in kinds}
                print(
                    f"round {n + 1}: bare {b:,.0f}/s  backbone {bb:,.0f}/s  capture {rate:,.0f}/s"
                    f"  accepted {counts}  parquet rows {rows}  lost {loss}  dropped {dropped}",
                    flush=True,
                )
                if any(loss.values()) or dropped:
                    raise SystemExit("data was lost: the capture figure does not count")
                results.append((b, bb, rate))
                shutil.rmtree(root)
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    best = max(results, key=lambda r: r[2])
    print(f"capture, {args.mix}, one core, load {os.getloadavg()[0]:.1f}, best of {args.rounds}:")
    print(f"  bare receive-and-discard (baseline) {best[0]:>10,.0f} msg/s   1.00")
    print(
        f"  backbone streams, discarded         {best[1]:>10,.0f} msg/s   {best[1] / best[0]:.2f}"
    )
    print(
        f"  recorder capture, zero loss         {best[2]:>10,.0f} msg/s   {best[2] / best[0]:.2f}"
    )


if __name__ == "__main__":
    main()
