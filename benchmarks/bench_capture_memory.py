"""A long capture of many markets: memory growth, and bytes on disk per record per dataset.

Starts ``tape exchange`` (real time, Upbit-like activity, rate limits on) in its own process,
then records 200 of its markets on every channel with the recorder's defaults (REST reference
snapshots, 250 ms flushes, 5-minute rotations; the backbone's REST budget less the snapshots'
share, as ``tape record`` sets it) for ``--minutes``. The resident set size of
this process is sampled every 5 s; the figure is its growth between minute 2 and the end.
Afterwards the recording is measured as written, and again after ``tape compact``: bytes per
record for each dataset.

    python benchmarks/bench_capture_memory.py --minutes 10 --markets 200
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
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pyarrow.parquet as pq

from backbone import MarketDataBackbone
from recorder.capture import Recorder
from recorder.compaction import compact
from recorder.config import RecorderConfig, StorageConfig
from recorder.schema import DATASETS


def rss_kb(field: str = "VmRSS") -> int:
    """The resident set (``VmRSS``), or its anonymous (``RssAnon``) or file-backed
    (``RssFile``) part, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def sizes(root: Path) -> dict[str, tuple[int, int, int]]:
    """(files, rows, bytes) per dataset."""
    out = {}
    for dataset in DATASETS:
        parts = list((root / dataset).rglob("*.parquet"))
        if parts:
            rows = sum(pq.read_metadata(p).num_rows for p in parts)
            out[dataset] = (len(parts), rows, sum(p.stat().st_size for p in parts))
    return out


async def record(
    urls: dict[str, str], symbols: list[str], root: Path, minutes: float, rotation_s: float
) -> list[tuple[float, int, int, int, int]]:
    """Samples of (seconds, RSS, RssAnon, RssFile in KiB, records accepted) every 5 s."""
    samples: list[tuple[float, int, int, int, int]] = []
    config = RecorderConfig(
        symbols=tuple(symbols), storage=StorageConfig(rotation_interval_s=rotation_s)
    )
    # As tape record does: the backbone gets Upbit's REST budget less the snapshots' share.
    budget = config.backbone_config()
    async with (
        MarketDataBackbone(urls["rest_url"], urls["ws_url"], config=budget) as backbone,
        Recorder(backbone, root, config=config) as recorder,
    ):
        start = time.monotonic()
        while (elapsed := time.monotonic() - start) < minutes * 60:
            stats = recorder.statistics()
            accepted = sum(stats.accepted.values())
            samples.append((elapsed, rss_kb(), rss_kb("RssAnon"), rss_kb("RssFile"), accepted))
            print(
                f"{elapsed:6.0f} s  rss {samples[-1][1] / 1024:7.1f} MB "
                f"(anon {samples[-1][2] / 1024:.1f}, file {samples[-1][3] / 1024:.1f})  "
                f"records {accepted}  REST snapshots {stats.rest_snapshots} "
                f"(errors {stats.rest_errors})",
                flush=True,
            )
            await asyncio.sleep(5)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--markets", type=int, default=200)
    parser.add_argument("--rotation-interval", type=float, default=300.0, help="seconds")
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tape", "exchange", "--duration", "3h"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="bench-memory-", dir=args.dir)) / "rec"
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        with urllib.request.urlopen(urls["rest_url"] + "/market/all") as response:
            listed = [m["market"] for m in json.loads(response.read())]
        symbols = sorted(listed, key=lambda s: (not s.startswith("KRW-"), s))[: args.markets]
        samples = asyncio.run(record(urls, symbols, root, args.minutes, args.rotation_interval))
        at2 = next(s for s in samples if s[0] >= 120)
        end = samples[-1]
        written = sizes(root)
        compact(root)
        compacted = sizes(root)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(
        f"\n{len(symbols)} markets, {args.minutes:g} min, rotation every "
        f"{args.rotation_interval:g} s, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"  rss at {at2[0]:.0f} s: {at2[1] / 1024:.1f} MB; at {end[0]:.0f} s: "
        f"{end[1] / 1024:.1f} MB; growth {(end[1] - at2[1]) / 1024:+.1f} MB (goal < 5 MB): "
        f"anonymous {(end[2] - at2[2]) / 1024:+.1f} MB, file-backed "
        f"{(end[3] - at2[3]) / 1024:+.1f} MB"
    )
    print(f"  peak rss {max(s[1] for s in samples) / 1024:.1f} MB; records {end[4]:,}")
    print(
        f"  {'dataset':<15} {'rows':>10} {'files':>6} {'B/rec':>8} {'files*':>6} "
        f"{'B/rec*':>8}  (* after tape compact)"
    )
    for dataset, (files, rows, size) in written.items():
        cfiles, _, csize = compacted[dataset]
        print(
            f"  {dataset:<15} {rows:>10,} {files:>6} {size / rows:>8.1f} {cfiles:>6} "
            f"{csize / rows:>8.1f}"
        )
    shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
