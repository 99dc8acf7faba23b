"""Peak memory of compacting one partition of 30-level orderbooks (what the recorder's
compactor does each night beside the capture).

The partition holds ``--parts`` parts of ``--rows`` orderbooks each, written with the
recorder's own writer. Each compaction runs in a fresh process and reports its peak resident
set (``VmHWM``). In the same run, three processes: one that only imports the compaction
code (the floor), one compacting with row groups of 65,536 rows for list columns (the cap
every dataset had before ``LIST_ROW_GROUP_ROWS``: the baseline), one with the current cap.

    python benchmarks/bench_compact_memory.py --parts 8 --rows 10000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from backbone.models import OrderbookData
from recorder.manifest import ensure_root
from recorder.parts import LIST_ROW_GROUP_ROWS, ROW_GROUP_ROWS, publish_table
from recorder.rows import to_table

BASE_NS = 1_764_115_200_000_000_000  # 2025-11-26T00:00:00Z

_CHILD = """
import re, sys, time
from recorder import parts
from recorder.compaction import compact
cap = int(sys.argv[2])
if cap:
    parts.LIST_ROW_GROUP_ROWS = cap
    began = time.perf_counter()
    done = compact(sys.argv[1], datasets=("orderbook",))
    assert sum(1 for d in done if d.output is not None) == 1, done
    seconds = time.perf_counter() - began
else:
    seconds = 0.0
status = open("/proc/self/status").read()
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) // 1024, round(seconds, 2))
"""


def _book(ns: int, levels: int = 30) -> OrderbookData:
    from datetime import UTC, datetime
    from decimal import Decimal

    prices = tuple(Decimal(100_000_000 + 1000 * i) for i in range(levels))
    sizes = tuple(Decimal(f"0.{i + 1:08d}") for i in range(levels))
    return OrderbookData(
        symbol="KRW-BTC",
        bid_prices=prices,
        bid_volumes=sizes,
        ask_prices=prices,
        ask_volumes=sizes,
        timestamp=datetime.fromtimestamp(ns // 1_000_000 / 1000, tz=UTC),
        source="websocket",
        received_ns=ns,
        total_ask_size=Decimal("12.5"),
        total_bid_size=Decimal("13.25"),
        level=Decimal(0),
        stream_type="REALTIME",
    )


def write_partition(root: Path, parts: int, rows: int) -> None:
    """Write ``parts`` parts of ``rows`` orderbooks into one partition."""
    ensure_root(root)
    one = [_book(BASE_NS + i * 1_000_000) for i in range(rows)]
    for k in range(parts):
        books = [replace(b, received_ns=b.received_ns + k * rows * 1_000_000) for b in one]
        seqs = list(range(k * rows, (k + 1) * rows))
        table = to_table("orderbook", books, session_id="bench", seqs=seqs)
        publish_table(root, "orderbook", table, compression="zstd")


def peak(root: Path, cap: int) -> tuple[int, float]:
    """Compact ``root``'s orderbooks in a fresh process with list row groups of ``cap`` rows
    (0: import only); return its peak RSS in MiB and the seconds the compaction took."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), str(cap)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", type=int, default=8)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-compact-"))
    try:
        source = work / "source"
        write_partition(source, args.parts, args.rows)
        print(f"{args.parts} parts of {args.rows:,} 30-level orderbooks in one partition")
        floor, _ = peak(source, 0)
        print(f"  import only                          peak {floor:5d} MiB")
        results = {}
        for label, cap in (("baseline", ROW_GROUP_ROWS), ("current", LIST_ROW_GROUP_ROWS)):
            copy = work / label
            shutil.copytree(source, copy)
            results[label] = peak(copy, cap)
            mib, seconds = results[label]
            print(f"  {label:8s} (list row groups {cap:6,d})  peak {mib:5d} MiB  {seconds:.2f} s")
        above = {label: mib - floor for label, (mib, _) in results.items()}
        print(
            f"above the import floor: current {above['current']} MiB, baseline "
            f"{above['baseline']} MiB, ratio {above['current'] / max(above['baseline'], 1):.2f}"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
