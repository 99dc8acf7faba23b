"""Replay throughput: trades into ``TradeData`` through ``async for``, against the model's ceiling.

Writes a trade recording with the recorder's own writer (``--trades`` rows over ``--symbols``
markets, one session), then measures in the same run, best of ``--repeat``:

- *bare*: a plain loop building the same ``TradeData`` objects with the dataclass constructor
  from in-memory columns (Python lists of ready ``Decimal``/``datetime`` values): the
  ceiling the model itself sets;
- *replay*: ``async for trade in ReplayBackbone(root).stream_trade(symbols)``, from Parquet;
- *batch*: ``replay.scan(root, "trade").collect()`` and ``scan_batches`` against a bare
  ``pyarrow.parquet.read_table`` of the same files (rows/s).

Prints events/s (rows/s) for each and the ratios. Goals (issue 5): replay >= 0.6 x bare;
batch >= 10 million rows/s.

    python benchmarks/bench_replay.py [--trades 300000] [--symbols 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from backbone.models import TradeData
from recorder import write_recording
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


def timed(action: object) -> float:
    began = time.perf_counter()
    action()  # type: ignore[operator]
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trades", type=int, default=300_000)
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
        del trades
        files = sorted(root.glob("trade/**/*.parquet"))
        rows = [0]

        def batches() -> None:
            rows[0] = sum(b.num_rows for b in scan_batches(root, "trade"))

        def frame() -> None:
            rows[0] = scan(root, "trade").collect().height

        def parquet() -> None:
            rows[0] = sum(pq.read_table(f, partitioning=None).num_rows for f in files)

        results: dict[str, float] = {}
        for _ in range(args.repeat):
            for name, run in (
                ("bare", lambda: bare(columns, count)),
                ("replay", lambda: asyncio.run(replayed(root, symbols, count))),
                ("parquet", lambda: timed(parquet)),
                ("scan_batches", lambda: timed(batches)),
                ("scan", lambda: timed(frame)),
            ):
                seconds = run()
                results[name] = min(results.get(name, float("inf")), seconds)
        print(f"trades: {count:,} over {len(symbols)} symbol(s), best of {args.repeat}")
        for name, seconds in results.items():
            print(f"  {name:13s} {count / seconds:14,.0f} rows/s  ({seconds:.3f} s)")
        print(f"replay / bare          = {results['bare'] / results['replay']:.2f}  (goal >= 0.6)")
        for name in ("scan_batches", "scan"):
            print(
                f"{name} / bare parquet = {results['parquet'] / results[name]:.2f}"
                f"  ({count / results[name] / 1e6:.1f} M rows/s, goal >= 10)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
