"""Bytes on disk per record, per dataset, for a recording of busy markets.

Starts ``tape exchange --speed X`` (exchange time runs X times faster, so an hour of market
passes in minutes) in its own process, records ``--markets`` on every channel with the
recorder's defaults but a 30 s rotation, plus REST reference snapshots every 2 s, then
measures every dataset as written (one part per partition per rotation), after
``tape compact`` (one zstd part per partition), and with each compacted part rewritten in
the other Parquet compressions and in zstd with Parquet's usual 1 MiB data pages (the
recorder writes 256 KiB pages).

    python benchmarks/bench_storage.py --seconds 120 --speed 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_capture_memory import sizes

from backbone import MarketDataBackbone
from recorder.capture import Recorder
from recorder.compaction import compact
from recorder.config import RecorderConfig, StorageConfig
from recorder.parts import DATA_PAGE_BYTES, read_part, write_parquet

MARKETS = "KRW-BTC,KRW-ETH,KRW-XRP,KRW-SOL,KRW-DOGE"


async def record(urls: dict[str, str], root: Path, seconds: float) -> None:
    config = RecorderConfig(
        symbols=tuple(MARKETS.split(",")),
        rest_snapshot_interval_s=2.0,
        rest_requests_per_s=2.0,
        storage=StorageConfig(rotation_interval_s=30.0),
    )
    # As tape record does: the backbone gets Upbit's REST budget less the snapshots' share.
    budget = config.backbone_config()
    async with (
        MarketDataBackbone(urls["rest_url"], urls["ws_url"], config=budget) as backbone,
        Recorder(backbone, root, config=config),
    ):
        await asyncio.sleep(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--speed", type=float, default=30.0)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tape", "exchange", "--duration", "2h", "--speed",
         str(args.speed), "--markets", MARKETS],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        asyncio.run(record(urls, base / "rec", args.seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    written = sizes(base / "rec")
    compact(base / "rec", compression="zstd")
    compacted = {"zstd": sizes(base / "rec")}
    # The compacted parts rewritten: in the other codecs, and in zstd with Parquet's usual
    # 1 MiB data pages (the cost of the recorder's smaller pages, on the same rows).
    for label, codec, page in (
        ("snappy", "snappy", DATA_PAGE_BYTES),
        ("gzip", "gzip", DATA_PAGE_BYTES),
        ("none", "none", DATA_PAGE_BYTES),
        ("zstd 1 MiB pages", "zstd", 1 << 20),
    ):
        rewritten: dict[str, tuple[int, int, int]] = {}
        for dataset, (files, rows, _) in compacted["zstd"].items():
            total = 0
            for n, part in enumerate((base / "rec" / dataset).rglob("*.parquet")):
                copy = base / f"{codec}-{page}-{dataset}-{n}.parquet"
                write_parquet(copy, read_part(part), codec, page_bytes=page)
                total += copy.stat().st_size
            rewritten[dataset] = (files, rows, total)
        compacted[label] = rewritten
    print(f"{MARKETS}, {args.seconds:g} s at speed {args.speed:g}:")
    print(
        f"  {'dataset':<15} {'rows':>8} {'parts':>6} {'B/rec as written':>17} "
        f"{'compacted zstd':>15} {'snappy':>8} {'gzip':>8} {'none':>8} {'zstd 1 MiB pages':>17}"
    )
    for dataset, (files, rows, size) in written.items():
        per = {codec: compacted[codec][dataset][2] / rows for codec in compacted}
        print(
            f"  {dataset:<15} {rows:>8,} {files:>6} {size / rows:>17.1f} "
            f"{per['zstd']:>15.1f} {per['snappy']:>8.1f} {per['gzip']:>8.1f} {per['none']:>8.1f}"
            f" {per['zstd 1 MiB pages']:>17.1f}"
        )
    subprocess.run(["rm", "-rf", str(base)], check=False)


if __name__ == "__main__":
    main()
