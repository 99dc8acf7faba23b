"""Benchmark ``tape check`` over a recording of N trades against a bare DuckDB scan.

Usage::

    python benchmarks/bench_check.py [--trades 10000000] [--symbols 10] [--keep DIR]

Writes a synthetic recording with Arrow directly, following ``recorder.schema`` and
``recorder.layout`` (one part per symbol, trades every 10 ms per symbol, 5 ms latency, and a
REST trades answer of 200 trades every 2,000 trades so the REST comparison runs), then times,
in this run:

- the baseline: one DuckDB query scanning the trade files' columns the checks read;
- ``run_checks`` in process (every measure over every dataset);
- ``tape check DIR --json`` as a user runs it (a new process: Python and imports included).

Prints the figures and the ratio of each to the baseline.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analytics import Recording, run_checks  # noqa: E402
from recorder.layout import MANIFEST_FILE, dataset_glob, partition_path  # noqa: E402
from recorder.schema import DECIMAL, SCHEMA_VERSION, schema_for  # noqa: E402

T0_MS = 1_764_118_800_000  # 2025-11-26T01:00:00Z
STEP_MS = 10
REST_EVERY = 2000
REST_COUNT = 200


def _decimal(values: np.ndarray, scale: int) -> pa.Array:
    # integer units of 10^-scale, cast exactly to the contract's decimal128(38, 18)
    units = pa.array(values, pa.int64()).cast(pa.decimal128(19, 0))
    divisor = pa.scalar(10**scale, pa.decimal128(scale + 1, 0))
    return pc.divide(units, divisor).cast(DECIMAL)


def _trades(symbol: str, first_seq: int, ids: np.ndarray, *, rest: bool) -> pa.Table:
    n = len(ids)
    ts_ms = T0_MS + ids * STEP_MS
    received_ns = ts_ms * 1_000_000 + (40_000_000 if rest else 5_000_000)
    price_units = 100_000_000 + (ids * 7919) % 50_000  # 1,000,000.00 KRW and around, in 0.01
    volume_units = 1 + (ids * 104_729) % 2_000_000  # up to 0.02 in 1e-8
    schema = schema_for("rest_trade" if rest else "trade")
    columns: dict[str, pa.Array] = {
        "session_id": pa.array(["bench"] * n, pa.string()),
        "seq": pa.array(first_seq + np.arange(n), pa.int64()),
        "received_ns": pa.array(received_ns, pa.int64()),
        "source": pa.array(["rest" if rest else "websocket"] * n, pa.string()),
        "symbol": pa.array([symbol] * n, pa.string()),
        "trade_price": _decimal(price_units, 2),
        "trade_volume": _decimal(volume_units, 8),
        "trade_side": pc.take(pa.array(["ASK", "BID"]), pa.array(ids % 2)),
        "trade_timestamp": pa.array(ts_ms, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
        "sequential_id": pa.array(ts_ms * 10_000, pa.int64()),
        "prev_closing_price": _decimal(np.full(n, 100_000_000), 2),
        "change": pa.array(["RISE"] * n, pa.string()),
        "change_price": _decimal(price_units - 100_000_000, 2),
    }
    if rest:
        start = (T0_MS + ids.max() * STEP_MS) * 1_000_000 + 20_000_000
        columns["request_start_ns"] = pa.array(np.full(n, start), pa.int64())
        columns["request_end_ns"] = pa.array(received_ns, pa.int64())
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _write(root: Path, dataset: str, symbol: str, table: pa.Table) -> None:
    received = table.column("received_ns")
    path = partition_path(root, dataset, symbol, pc.min(received).as_py(), pc.max(received).as_py())
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", row_group_size=1_000_000)


def generate(root: Path, trades: int, symbols: int) -> None:
    """Write a recording of ``trades`` trades spread over ``symbols`` markets under ``root``."""
    per_symbol = trades // symbols
    (root / MANIFEST_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_FILE).write_text(f'{{"schema_version": {SCHEMA_VERSION}}}\n')
    seq = 0
    for index in range(symbols):
        symbol = f"KRW-C{index:03d}"
        ids = np.arange(1, per_symbol + 1, dtype=np.int64)
        _write(root, "trade", symbol, _trades(symbol, seq, ids, rest=False))
        seq += per_symbol
        answers = [
            ids[end - REST_COUNT : end] for end in range(REST_EVERY, per_symbol + 1, REST_EVERY)
        ]
        if answers:
            rest = pa.concat_tables(
                _trades(symbol, seq + k * REST_COUNT, a, rest=True) for k, a in enumerate(answers)
            )
            seq += rest.num_rows
            _write(root, "rest_trade", symbol, rest)


def timed(label: str, action: object) -> float:
    start = time.perf_counter()
    action()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    print(f"  {label:<44} {elapsed:8.2f} s", flush=True)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=10_000_000)
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--keep", type=Path, help="Write the recording here and keep it.")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="tape-bench-check-"))
    try:
        print(f"recording of {args.trades:,} trades over {args.symbols} symbols in {root}")
        timed("generate (Arrow, zstd Parquet)", lambda: generate(root, args.trades, args.symbols))
        files = dataset_glob(root, "trade").replace("'", "''")
        scan_sql = (
            "SELECT count(*), min(received_ns), max(trade_timestamp), sum(trade_volume), "
            "count(DISTINCT symbol), max(sequential_id), max(seq), min(source) "
            f"FROM read_parquet('{files}')"
        )
        print("timings (best of 2 where repeated):")
        scan = min(
            timed("baseline: bare DuckDB scan", lambda: duckdb.sql(scan_sql).fetchall())
            for _ in range(2)
        )

        def checks() -> None:
            with Recording(root) as recording:
                result = run_checks(recording)
            assert result["consistency"]["trade"]["missing_from_stream"] == 0, result
            assert result["latency"]["trade"]["rows"] == args.trades // args.symbols * args.symbols

        in_process = timed("run_checks in process", checks)
        command = [sys.executable, "-m", "tape", "check", str(root), "--json"]
        cli = timed(
            "tape check DIR --json (new process)",
            lambda: subprocess.run(command, check=True, capture_output=True, cwd=ROOT),
        )
        print(f"ratio run_checks / bare scan:  {in_process / scan:6.1f}x")
        print(f"ratio tape check / bare scan:  {cli / scan:6.1f}x")
        print(f"tape check throughput:         {args.trades / cli / 1e6:6.2f} M trades/s")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
