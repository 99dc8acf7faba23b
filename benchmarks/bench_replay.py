"""Replay throughput: trades into ``TradeData`` through ``async for``, against the model's ceiling.

Writes a trade recording with the recorder's own writer (``--trades`` rows over ``--symbols``
markets, one session) and a larger one for batch access (``--batch-trades`` rows: the same
trades repeated with later receive times and seq, written part by part as a recorder rotates),
then measures in the same run, best of ``--repeat``:

- *bare*: a plain loop building the same ``TradeData`` objects with the dataclass constructor
  from in-memory columns (Python lists of ready ``Decimal``/``datetime`` values): the
  ceiling the model itself sets;
- *replay*: ``async for trade in ReplayBackbone(root).stream_trade(symbols)``, from Parquet;
- *batch*: ``replay.scan(root, "trade").collect()`` and ``scan_batches`` against a bare
  ``pyarrow.parquet.read_table`` of the same files (rows/s), for every column and for the
  three columns a vectorized backtest typically reads (``received_ns``, ``trade_price``,
  ``trade_volume``). The bare read decodes with Arrow's threads (its default, columns side by
  side); ``parquet 3 col 1 thr`` is the same read on one thread, for reference.

Prints events/s (rows/s) for each and the ratios. Goals (issue 5): replay >= 0.6 x bare;
batch >= 10 million rows/s.

    python benchmarks/bench_replay.py [--trades 300000] [--batch-trades 3000000]
                                      [--symbols 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

from backbone.models import TradeData
from recorder import write_recording
from recorder.parts import publish_table
from recorder.rows import to_table
from replay import ReplayBackbone, scan, scan_batches

BASE_NS = 1_764_201_000_000_000_000
SYMBOLS = ("KRW-BTC", "KRW-ETH", "KRW-XRP", "KRW-SOL")


def make_trades(count: int, symbols: tuple[str, ...], seed: int = 1) -> list[TradeData]:
    """Trades shaped like Upbit's busy markets: prices on a tick grid, 8-decimal volumes."""
    rng = random.Random(seed)
    ids = dict.fromkeys(symbols, 0)
    price = {s: 130_000_000 // (i + 1) for i, s in enumerate(symbols)}
    out = []
    ns = BASE_NS
    for _ in range(count):
        symbol = rng.choice(symbols)
        ids[symbol] += 1
        price[symbol] += rng.choice((-1000, 0, 0, 1000))
        ns += rng.randrange(100_000, 2_000_000)
        moment = datetime.fromtimestamp((ns // 1_000_000 - 3) / 1000, tz=UTC)
        p = Decimal(price[symbol])
        out.append(
            TradeData(
                symbol=symbol,
                trade_price=p,
                trade_volume=Decimal(f"0.{rng.randrange(1, 10**8):08d}"),
                trade_side=rng.choice(("BID", "ASK")),
                trade_timestamp=moment,
                sequential_id=ids[symbol],
                source="websocket",
                received_ns=ns,
                prev_closing_price=Decimal(129_000_000),
                change="RISE",
                change_price=p - 129_000_000,
                message_timestamp=moment,
                best_ask_price=p + 1000,
                best_ask_size=Decimal("0.5"),
                best_bid_price=p,
                best_bid_size=Decimal("0.25"),
                stream_type="REALTIME",
            )
        )
    return out


def bare(columns: dict[str, list[object]], count: int) -> float:
    """Build the trades with the dataclass constructor from in-memory columns; seconds."""
    c = columns
    began = time.perf_counter()
    built = [
        TradeData(
            symbol=c["symbol"][i],  # type: ignore[arg-type]
            trade_price=c["trade_price"][i],  # type: ignore[arg-type]
            trade_volume=c["trade_volume"][i],  # type: ignore[arg-type]
            trade_side=c["trade_side"][i],  # type: ignore[arg-type]
            trade_timestamp=c["trade_timestamp"][i],  # type: ignore[arg-type]
            sequential_id=c["sequential_id"][i],  # type: ignore[arg-type]
            source=c["source"][i],  # type: ignore[arg-type]
            received_ns=c["received_ns"][i],  # type: ignore[arg-type]
            prev_closing_price=c["prev_closing_price"][i],  # type: ignore[arg-type]
            change=c["change"][i],  # type: ignore[arg-type]
            change_price=c["change_price"][i],  # type: ignore[arg-type]
            message_timestamp=c["message_timestamp"][i],  # type: ignore[arg-type]
            best_ask_price=c["best_ask_price"][i],  # type: ignore[arg-type]
            best_ask_size=c["best_ask_size"][i],  # type: ignore[arg-type]
            best_bid_price=c["best_bid_price"][i],  # type: ignore[arg-type]
            best_bid_size=c["best_bid_size"][i],  # type: ignore[arg-type]
            stream_type=c["stream_type"][i],  # type: ignore[arg-type]
        )
        for i in range(count)
    ]
    elapsed = time.perf_counter() - began
    assert len(built) == count
    return elapsed


async def replayed(root: Path, symbols: tuple[str, ...], count: int) -> float:
    """Replay every trade through ``async for``; seconds (opening included)."""
    began = time.perf_counter()
    seen = 0
    async with ReplayBackbone(root) as replay:
        async for _trade in replay.stream_trade(list(symbols)):
            seen += 1
    elapsed = time.perf_counter() - began
    assert seen == count
    return elapsed


def write_repeated(root: Path, trades: list[TradeData], total: int) -> int:
    """Write ``total`` trades: ``trades`` over and over, each copy received later and
    numbered after the previous one, one part per copy and symbol (as rotations)."""
    table = to_table("trade", trades, session_id="bench", seqs=list(range(len(trades))))
    span = table["received_ns"][-1].as_py() - table["received_ns"][0].as_py() + 1
    written = 0
    copy = 0
    while written < total:
        piece = table.slice(0, min(table.num_rows, total - written))
        shifted = piece.set_column(
            piece.schema.get_field_index("received_ns"),
            "received_ns",
            pc.add(piece["received_ns"], copy * span),
        ).set_column(piece.schema.get_field_index("seq"), "seq", pc.add(piece["seq"], written))
        publish_table(root, "trade", shifted, compression="zstd")
        written += piece.num_rows
        copy += 1
    return written


def timed(action: object) -> float:
    began = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trades", type=int, default=300_000)
    parser.add_argument("--batch-trades", type=int, default=3_000_000)
    parser.add_argument("--symbols", type=int, default=1, choices=range(1, len(SYMBOLS) + 1))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    symbols = SYMBOLS[: args.symbols]
    count = args.trades
    trades = make_trades(count, symbols)
    columns = {name: [getattr(t, name) for t in trades] for name in TradeData.__dataclass_fields__}
    work = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        root = work / "rec"
        write_recording(root, trades, session_id="bench")
        big = work / "big"
        big_count = write_repeated(big, trades, args.batch_trades)
        del trades
        files = sorted(big.glob("trade/**/*.parquet"))
        rows = [0]
        few = ["received_ns", "trade_price", "trade_volume"]

        def batches(columns: list[str] | None = None) -> None:
            rows[0] = sum(b.num_rows for b in scan_batches(big, "trade", columns=columns))
            assert rows[0] == big_count

        def frame(columns: list[str] | None = None) -> None:
            lazy = scan(big, "trade")
            rows[0] = (lazy.select(columns) if columns else lazy).collect().height

        def parquet(columns: list[str] | None = None, threads: bool = True) -> None:
            tables = [
                pq.read_table(f, columns=columns, partitioning=None, use_threads=threads)
                for f in files
            ]
            rows[0] = sum(t.num_rows for t in tables)

        results: dict[str, float] = {}
        runs: tuple[tuple[str, Callable[[], float]], ...] = (
            ("bare", lambda: bare(columns, count)),
            ("replay", lambda: asyncio.run(replayed(root, symbols, count))),
            ("parquet", lambda: timed(parquet)),
            ("scan_batches", lambda: timed(batches)),
            ("scan", lambda: timed(frame)),
            ("parquet 3 col", lambda: timed(lambda: parquet(few))),
            ("parquet 3 col 1 thr", lambda: timed(lambda: parquet(few, threads=False))),
            ("scan_batches 3 col", lambda: timed(lambda: batches(few))),
            ("scan 3 col", lambda: timed(lambda: frame(few))),
        )
        for _ in range(args.repeat):
            for name, run in runs:
                seconds = run()
                results[name] = min(results.get(name, float("inf")), seconds)
        print(
            f"trades: {count:,} (batch access: {big_count:,}) over {len(symbols)} symbol(s), "
            f"best of {args.repeat}"
        )
        for name, seconds in results.items():
            rows_done = count if name in ("bare", "replay") else big_count
            print(f"  {name:20s} {rows_done / seconds:14,.0f} rows/s  ({seconds:.3f} s)")
        print(f"replay / bare = {results['bare'] / results['replay']:.2f}  (goal >= 0.6)")
        for suffix in ("", " 3 col"):
            for name in ("scan_batches", "scan"):
                print(
                    f"{name}{suffix} / parquet{suffix} = "
                    f"{results['parquet' + suffix] / results[name + suffix]:.2f}"
                    f"  ({big_count / results[name + suffix] / 1e6:.1f} M rows/s, goal >= 10)"
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
