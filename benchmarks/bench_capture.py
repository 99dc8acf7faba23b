"""Recorder capture throughput from the simulator's firehose, on one core, with zero loss.

Starts ``tape exchange --firehose MIX`` in its own process pinned to the other core, pins
this process to one core, and measures, each on fresh connections subscribed like the
backbone subscribes (one connection per data kind):

- ``bare``: the receive-and-discard loop (aiohttp's ``ws.receive()`` with the backbone's
  client settings: the backbone's library): the baseline;
- ``backbone``: ``MarketDataBackbone.stream_*`` consumed and discarded (for reference:
  the recorder cannot be faster than the client it records);
- ``capture``: ``Recorder`` writing a recording (journal every 250 ms, Parquet every 5 s),
  with no per-record hook (its accepted counts are polled), timed until it has closed (every
  record in Parquet); the Parquet row count of every dataset must then equal what was
  accepted, and the backbone must report nothing dropped.

Each phase is given as messages per second of wall time and per second of this process's
CPU time (all its threads): on a machine shared with other work the second is the steadier
measure of what one core sustains.

``--mix trades``: trade messages on 3 markets. ``--mix mixed``: the issue's mix, half trades, a
quarter tickers and a quarter 30-unit orderbooks. The firehose budgets ``--frames`` per
channel (``FirehoseConfig.budget``), so the backbone's one connection per data kind receives
``--frames`` frames in all, in that mix, in every phase.

    python benchmarks/bench_capture.py --mix trades --frames 200000
    python benchmarks/bench_capture.py --mix mixed --frames 100000
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

import aiohttp
import pyarrow.parquet as pq

from backbone import BackboneConfig, MarketDataBackbone
from recorder.capture import Recorder
from recorder.config import RecorderConfig, StorageConfig
from simulator.config import FirehoseConfig

MARKETS = ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
KINDS = {"trades": ("trade",), "mixed": ("trade", "ticker", "orderbook")}


Rates = tuple[float, float]
"""(messages per second of wall time, messages per second of this process's CPU time)."""


class Clock:
    """Wall and CPU time (all threads of this process) since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def rates(self, messages: int) -> Rates:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        return messages / wall, messages / cpu


def budgets(mix: str, frames: int) -> dict[str, int]:
    """The frames the firehose sends one connection subscribed to each kind of ``mix``."""
    config = FirehoseConfig(mix=mix, frames=frames)  # type: ignore[arg-type]
    return {kind: config.budget(kind) for kind in KINDS[mix]}


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


async def bare(ws_url: str, budget: dict[str, int]) -> Rates:
    """Frames per second through bare receive-and-discard loops, one aiohttp connection per
    kind with the backbone's client settings."""

    async def one(http: aiohttp.ClientSession, kind: str, frames: int) -> None:
        request = [
            {"ticket": f"bare-{kind}"},
            {"type": kind, "codes": MARKETS},
            {"format": "DEFAULT"},
        ]
        async with http.ws_connect(
            ws_url, autoping=False, max_msg_size=0, compress=0, decode_text=False
        ) as ws:
            await ws.send_str(json.dumps(request))
            receive = ws.receive
            for _ in range(frames):
                await receive()

    async with aiohttp.ClientSession() as http:
        clock = Clock()
        await asyncio.gather(*(one(http, kind, n) for kind, n in budget.items()))
        return clock.rates(sum(budget.values()))


def _backbone_config() -> BackboneConfig:
    # No REST work during the measurement: the firehose is a WebSocket benchmark.
    return BackboneConfig(reconcile_interval_s=3600.0, market_refresh_s=3600.0)


async def through_backbone(urls: dict[str, str], budget: dict[str, int]) -> Rates:
    """Records per second through the backbone's streams, consumed and discarded."""
    async with MarketDataBackbone(
        urls["rest_url"], urls["ws_url"], config=_backbone_config()
    ) as bb:
        streams = {
            "trade": bb.stream_trade,
            "ticker": bb.stream_ticker,
            "orderbook": bb.stream_orderbook,
        }
        clock: Clock | None = None

        async def one(kind: str, frames: int) -> None:
            nonlocal clock
            count = 0
            async for _ in streams[kind](MARKETS):
                if clock is None:
                    clock = Clock()
                count += 1
                if count >= frames:
                    return

        await asyncio.gather(*(one(kind, n) for kind, n in budget.items()))
        assert clock is not None
        return clock.rates(sum(budget.values()))


async def capture(
    urls: dict[str, str], budget: dict[str, int], root: Path
) -> tuple[Rates, dict[str, int], dict[str, int], int]:
    """Records per second through the recorder into Parquet; returns the rates, the records
    accepted and the Parquet rows per dataset, and what the backbone dropped.

    The recorder runs as ``tape record`` runs it, with no ``on_record`` hook: its accepted
    counts are polled every 10 ms. The clock starts at the first poll that sees a record and
    stops when the recorder has closed (every record journaled and published as Parquet);
    the rate counts the records accepted after the first poll.
    """
    kinds = tuple(budget)
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
            start: tuple[Clock, int] | None = None
            while True:
                accepted = recorder.accepted()
                total = sum(accepted.get(k, 0) for k in kinds)
                if start is None and total:
                    start = (Clock(), total)
                if all(accepted.get(k, 0) >= n for k, n in budget.items()):
                    break
                await asyncio.sleep(0.01)
            assert start is not None
        counts = {k: recorder.accepted().get(k, 0) for k in kinds}
        rates = start[0].rates(sum(counts.values()) - start[1])
        dropped = sum(s.dropped for s in bb.statistics().streams)
    rows = {
        kind: sum(pq.read_metadata(p).num_rows for p in (root / kind).rglob("*.parquet"))
        for kind in kinds
    }
    return rates, counts, rows, dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--mix", choices=sorted(KINDS), default="trades")
    parser.add_argument(
        "--frames", type=int, default=200_000, help="per phase, over all connections, in the mix"
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--core", type=int, default=0, help="the core this process runs on")
    parser.add_argument("--dir", type=Path, default=None, help="where recordings go (a tmp dir)")
    args = parser.parse_args()
    kinds = KINDS[args.mix]
    budget = budgets(args.mix, args.frames)
    os.sched_setaffinity(0, {args.core})
    other = next(iter(os.sched_getaffinity(0) ^ set(range(os.cpu_count() or 2))), args.core)
    base_dir = Path(tempfile.mkdtemp(prefix="bench-capture-", dir=args.dir))
    results: list[tuple[Rates, Rates, Rates]] = []
    try:
        with spawn_exchange(args.mix, args.frames, other) as urls:
            for n in range(args.rounds):
                b = asyncio.run(bare(urls["ws_url"], budget))
                bb = asyncio.run(through_backbone(urls, budget))
                root = base_dir / f"round-{n}"
                rate, counts, rows, dropped = asyncio.run(capture(urls, budget, root))
                loss = {k: counts[k] - rows[k] for k in kinds}
                print(
                    f"round {n + 1} (wall / CPU msg/s): bare {b[0]:,.0f} / {b[1]:,.0f}  "
                    f"backbone {bb[0]:,.0f} / {bb[1]:,.0f}  capture {rate[0]:,.0f} / "
                    f"{rate[1]:,.0f}  accepted {counts}  parquet rows {rows}  lost {loss}  "
                    f"dropped {dropped}  load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
                if any(loss.values()) or dropped:
                    raise SystemExit("data was lost: the capture figure does not count")
                results.append((b, bb, rate))
                shutil.rmtree(root)
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)
    best = max(results, key=lambda r: r[2][0])
    print(
        f"capture, {args.mix}, one core, load {os.getloadavg()[0]:.1f}, best of {args.rounds} "
        "by capture rate (that round's figures):"
    )
    print(f"  {'':<36}{'wall msg/s':>12}{'ratio':>7}{'CPU msg/s':>12}{'ratio':>7}")
    for label, (wall, cpu) in zip(
        ("bare receive-and-discard (baseline)", "backbone streams, discarded",
         "recorder capture, zero loss"), best, strict=True,
    ):  # fmt: skip
        print(
            f"  {label:<36}{wall:>12,.0f}{wall / best[0][0]:>7.2f}{cpu:>12,.0f}"
            f"{cpu / best[0][1]:>7.2f}"
        )


if __name__ == "__main__":
    main()
