"""Replay memory: a recording ten times larger must not need more memory to replay.

Writes two recordings with the recorder's own writer (mixed trades, tickers and 15-level
orderbooks over four markets, the partitions rotated into parts as a live recorder does):
``--records`` and ten times as many. Each is replayed in a fresh process through
``stream_all()`` (every record decoded), and the process's peak RSS is read (``VmHWM`` of
``/proc/self/status``; Linux), the median of ``--repeat`` processes (peaks move by 10 to 30
MiB from one process to the next). The same is done for ``scan_batches``. Prints both peaks and
the ratio (goal: the larger within 10 % of the smaller), with the peak of a process that only
imports tape as the floor. Two layouts: parts rotated as the live recorder writes them (a
longer recording has more parts), and the same parts merged by the recorder's own
compaction (``recorder.compaction.compact``, what ``tape compact`` runs: one part per
partition, so a longer recording has larger files, in row groups of at most 65,536 rows).

    python benchmarks/bench_replay_memory.py [--records 100000] [--markets 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from backbone.models import OrderbookData, Record, TickerData, TradeData
from recorder.compaction import compact
from recorder.parts import publish_table
from recorder.rows import dataset_of, to_table

BASE_NS = 1_764_201_000_000_000_000
SYMBOLS = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL")
ROTATION = 5_000  # records per rotation: a longer recording has more parts, as live

CHILD = """
import asyncio, sys
from replay import ReplayBackbone, scan_batches

async def stream(root):
    count = 0
    async with ReplayBackbone(root) as replay:
        async for _ in replay.stream_all():
            count += 1
    return count

root, how = sys.argv[1], sys.argv[2]
if how == "stream":
    count = asyncio.run(stream(root))
elif how == "batches":
    count = sum(b.num_rows for d in ("trade", "ticker", "orderbook") for b in scan_batches(root, d))
else:
    count = 0
# VmHWM: this process's own peak resident set (ru_maxrss would carry the parent's over exec).
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(count, hwm)
"""


def records(count: int, symbols: tuple[str, ...] = SYMBOLS, seed: int = 1) -> list[Record]:
    rng = random.Random(seed)
    out: list[Record] = []
    ids = dict.fromkeys(symbols, 0)
    ns = BASE_NS
    for _ in range(count):
        symbol = rng.choice(symbols)
        ns += rng.randrange(100_000, 1_000_000)
        moment = datetime.fromtimestamp((ns // 1_000_000 - 3) / 1000, tz=UTC)
        price = Decimal(rng.randrange(1_000, 1_000_000))
        kind = rng.random()
        if kind < 0.5:
            ids[symbol] += 1
            out.append(
                TradeData(
                    symbol=symbol,
                    trade_price=price,
                    trade_volume=Decimal(f"0.{rng.randrange(1, 10**8):08d}"),
                    trade_side="BID",
                    trade_timestamp=moment,
                    sequential_id=ids[symbol],
                    source="websocket",
                    received_ns=ns,
                    prev_closing_price=price,
                    change="RISE",
                    change_price=Decimal(1),
                    message_timestamp=moment,
                    stream_type="REALTIME",
                )
            )
        elif kind < 0.75:
            out.append(
                OrderbookData(
                    symbol=symbol,
                    bid_prices=tuple(price - i for i in range(15)),
                    bid_volumes=tuple(
                        Decimal(f"0.{rng.randrange(1, 10**8):08d}") for _ in range(15)
                    ),
                    ask_prices=tuple(price + i for i in range(15)),
                    ask_volumes=tuple(
                        Decimal(f"0.{rng.randrange(1, 10**8):08d}") for _ in range(15)
                    ),
                    timestamp=moment,
                    source="websocket",
                    received_ns=ns,
                    total_ask_size=Decimal("12.5"),
                    total_bid_size=Decimal("13.5"),
                    level=Decimal(0),
                    stream_type="REALTIME",
                )
            )
        else:
            out.append(
                TickerData(
                    symbol=symbol,
                    current_price=price,
                    change_rate=Decimal("0.01"),
                    change_amount=Decimal(5),
                    volume_24h=Decimal("1234.5"),
                    high_24h=price,
                    low_24h=price,
                    prev_closing_price=price,
                    timestamp=moment,
                    source="websocket",
                    received_ns=ns,
                    opening_price=price,
                    change="RISE",
                    trade_volume=Decimal("0.1"),
                    trade_timestamp=moment,
                    acc_trade_volume=Decimal("100"),
                    acc_trade_price=Decimal("1000000"),
                    acc_trade_price_24h=Decimal("2000000"),
                    highest_52_week_price=price,
                    highest_52_week_date=moment.date(),
                    lowest_52_week_price=price,
                    lowest_52_week_date=moment.date(),
                )
            )
    return out


def write(root: Path, count: int, rotation: int, symbols: tuple[str, ...] = SYMBOLS) -> None:
    """Write ``count`` records as one session, rotated every ``rotation`` records."""
    rows = records(count, symbols)
    step = max(1, rotation)
    for first in range(0, count, step):
        by_dataset: dict[str, tuple[list[Record], list[int]]] = {}
        for seq in range(first, min(first + step, count)):
            group = by_dataset.setdefault(dataset_of(rows[seq]), ([], []))
            group[0].append(rows[seq])
            group[1].append(seq)
        for dataset, (recs, seqs) in by_dataset.items():
            table = to_table(dataset, recs, session_id="bench", seqs=seqs)
            publish_table(root, dataset, table, compression="zstd")


def peak(root: Path, how: str, repeat: int = 1) -> tuple[int, int]:
    """Return the records replayed and the median peak (KiB) of ``repeat`` fresh processes."""
    peaks = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(root), how],
            capture_output=True,
            text=True,
            check=True,
        )
        count, kib = done.stdout.split()
        peaks.append(int(kib))
    return int(count), int(statistics.median(peaks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument(
        "--markets", type=int, default=len(SYMBOLS), help="markets interleaved (default 4)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="processes per figure; the median is printed"
    )
    args = parser.parse_args()
    symbols = SYMBOLS[: args.markets] + tuple(
        f"KRW-M{i:03d}" for i in range(max(0, args.markets - len(SYMBOLS)))
    )
    work = Path(tempfile.mkdtemp(prefix="bench-replay-memory-"))
    try:
        for layout, compacted in (
            ("rotated parts (as recorded)", False),
            ("one part per partition (tape compact)", True),
        ):
            small, large = work / "small", work / "large"
            write(small, args.records, ROTATION, symbols)
            write(large, args.records * 10, ROTATION, symbols)
            if compacted:
                for root in (small, large):
                    merged = [c for c in compact(root) if c.output is not None]
                    assert merged, f"compaction merged nothing under {root}"
            _, floor = peak(small, "import")
            print(
                f"{layout}, {len(symbols)} markets; import-only process peak: "
                f"{floor / 1024:.0f} MiB"
            )
            for how in ("stream", "batches"):
                n_small, p_small = peak(small, how, args.repeat)
                n_large, p_large = peak(large, how, args.repeat)
                print(
                    f"  {how:8s} {n_small:>9,} records: {p_small / 1024:6.0f} MiB  "
                    f"{n_large:>9,} records: {p_large / 1024:6.0f} MiB  "
                    f"ratio {p_large / p_small:.3f} (goal <= 1.10)"
                )
            shutil.rmtree(small)
            shutil.rmtree(large)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
