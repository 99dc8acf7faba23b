"""Where the recorder's time goes per record, without any network: one thread, in memory.

For each stream dataset, builds records in memory (like the backbone's), then times, per
record: ``convert`` (records to an Arrow batch in the contract schema: the Decimal and
datetime conversions), ``journal`` (the batch appended to a journal segment and fsynced) and
``publish`` (the segment read back, split by symbol and written as zstd Parquet parts, 50
symbols). The baseline is the bare cost of building the Decimal columns from the records'
values with ``pyarrow.array`` (what any exact Arrow writer must pay). Figures are CPU time of
this process per record (steady on a shared machine), then the wall time of the stages that
wait for the disk (fsync).

    python benchmarks/bench_sink.py --records 100000
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "recorder"))

import pyarrow as pa
from recorder_factories import BASE_NS, orderbook, ticker, trade

from recorder.journal import JournalSegment, publish_segment
from recorder.rows import to_batch
from recorder.schema import DECIMAL, schema_for

MAKERS = {
    "trade": lambda i: trade(f"KRW-S{i % 50}", i, BASE_NS + i * 1000),
    "ticker": lambda i: ticker(f"KRW-S{i % 50}", BASE_NS + i * 1000),
    "orderbook": lambda i: orderbook(f"KRW-S{i % 50}", BASE_NS + i * 1000),
}


class Clock:
    """Wall and CPU time (all threads of this process) between laps."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> tuple[float, float]:
        """Return (wall, CPU) seconds since the last lap and start the next one."""
        wall, cpu = time.perf_counter(), time.process_time()
        lap = wall - self.wall, cpu - self.cpu
        self.wall, self.cpu = wall, cpu
        return lap


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-sink-"))
    print(f"{'dataset':<10} {'decimals only':>14} {'convert':>9} {'journal':>9} {'publish':>9}"
          f" {'total':>9}  {'wall: journal':>13} {'publish':>9} {'total':>9}"
          "   microseconds per record (CPU time, then wall time)")  # fmt: skip
    try:
        for dataset, make in MAKERS.items():
            count = args.records if dataset != "orderbook" else args.records // 5
            records = [make(i) for i in range(count)]
            decimal_fields = [
                f.name for f in schema_for(dataset) if f.type == DECIMAL or pa.types.is_list(f.type)
            ]
            clock = Clock()
            for name in decimal_fields:
                values = [getattr(r, name) for r in records]
                pa.array(values, pa.list_(DECIMAL) if isinstance(values[0], tuple) else DECIMAL)
            bare = clock.lap()
            batches = [
                to_batch(dataset, records[i : i + 5000], session_id="s", seqs=range(i, i + 5000))
                for i in range(0, count, 5000)
            ]
            convert = clock.lap()
            root = base / dataset
            segment = JournalSegment.create(root, "s", 0)
            clock.lap()
            for batch in batches:
                segment.append([(dataset, batch)])
            segment.close()
            journal = clock.lap()
            publish_segment(root, segment.path, compression="zstd")
            publish = clock.lap()
            cpu = [x[1] / count * 1e6 for x in (bare, convert, journal, publish)]
            wall = [x[0] / count * 1e6 for x in (bare, convert, journal, publish)]
            print(f"{dataset:<10} {cpu[0]:>14.2f} {cpu[1]:>9.2f} {cpu[2]:>9.2f} {cpu[3]:>9.2f}"
                  f" {sum(cpu[1:]):>9.2f}  {wall[2]:>13.2f} {wall[3]:>9.2f}"
                  f" {sum(wall[1:]):>9.2f}")  # fmt: skip
        print(f"load {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
