"""Paced replay: at speed 1.0, how close to the recorded schedule do records arrive?

Writes ``--seconds`` of market at about ``--rate`` records per second (trades, tickers and
orderbooks over two markets, receive times jittered as live), replays it with
``speed=1.0`` with one consumer that only takes the records (a light load). The replay
measures, for every record, how late it was handed out against its schedule (the replay's
start plus the record's replay clock minus the first clock): ``statistics()`` reports p99 and
max. The baseline, measured in the same run: a bare asyncio loop sleeping until the same
schedule (the event loop's own timer precision on this machine). Also at ``speed=10``.
Goal (issue 5): p99 within 5 ms at speed 1.0.

    python benchmarks/bench_replay_paced.py [--seconds 5] [--rate 500]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from backbone.models import Record, TickerData, TradeData
from recorder import write_recording
from replay import ReplayBackbone, ReplayStatistics

BASE_NS = 1_764_201_000_000_000_000


def records(seconds: float, rate: float, seed: int = 3) -> list[Record]:
    rng = random.Random(seed)
    out: list[Record] = []
    ns = BASE_NS
    ids = {"KRW-BTC": 0, "KRW-ETH": 0}
    while ns < BASE_NS + seconds * 1e9:
        ns += int(rng.expovariate(rate) * 1e9)
        symbol = rng.choice(("KRW-BTC", "KRW-ETH"))
        stamp = ns - rng.randrange(0, 200_000)  # receive stamps jitter a little
        moment = datetime.fromtimestamp((stamp // 1_000_000 - 3) / 1000, tz=UTC)
        price = Decimal(rng.randrange(1000, 2000))
        if rng.random() < 0.7:
            ids[symbol] += 1
            out.append(
                TradeData(
                    symbol=symbol,
                    trade_price=price,
                    trade_volume=Decimal("0.5"),
                    trade_side="BID",
                    trade_timestamp=moment,
                    sequential_id=ids[symbol],
                    source="websocket",
                    received_ns=stamp,
                    prev_closing_price=price,
                    change="EVEN",
                    change_price=Decimal(0),
                )
            )
        else:
            out.append(
                TickerData(
                    symbol=symbol,
                    current_price=price,
                    change_rate=Decimal(0),
                    change_amount=Decimal(0),
                    volume_24h=Decimal(1),
                    high_24h=price,
                    low_24h=price,
                    prev_closing_price=price,
                    timestamp=moment,
                    source="websocket",
                    received_ns=stamp,
                    opening_price=price,
                    change="EVEN",
                    trade_volume=Decimal(1),
                    trade_timestamp=moment,
                    acc_trade_volume=Decimal(1),
                    acc_trade_price=Decimal(1),
                    acc_trade_price_24h=Decimal(1),
                    highest_52_week_price=price,
                    highest_52_week_date=moment.date(),
                    lowest_52_week_price=price,
                    lowest_52_week_date=moment.date(),
                )
            )
    return out


async def paced(root: Path, speed: float) -> ReplayStatistics:
    count = 0
    async with ReplayBackbone(root, speed=speed) as replay:
        async for _record in replay.stream_all():
            count += 1
        stats = replay.statistics()
    assert stats.released == count
    return stats


async def bare(clocks: list[int], speed: float) -> list[float]:
    """Sleep until each clock's time, as the replay schedules it; lateness in seconds."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    lateness = []
    for clock in clocks:
        due = start + (clock - clocks[0]) / 1e9 / speed
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        lateness.append(loop.time() - due)
    return lateness


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-replay-paced-"))
    try:
        rows = records(args.seconds, args.rate)
        write_recording(work, rows, session_id="paced")
        clocks = []
        for record in rows:  # the replay clock: running maximum of the receive times
            clocks.append(max(record.received_ns, clocks[-1] if clocks else 0))
        for speed in (1.0, 10.0):
            base = [x * 1000 for x in asyncio.run(bare(clocks, speed))]
            stats = asyncio.run(paced(work, speed))
            assert stats.lag_p99_s is not None and stats.max_lag_s is not None
            print(
                f"speed {speed:4.1f}, {len(rows):,} records: replay late by p99 "
                f"{stats.lag_p99_s * 1000:.2f} ms, max {stats.max_lag_s * 1000:.2f} ms "
                f"(goal p99 <= 5 ms at speed 1); bare asyncio sleep p99 "
                f"{percentile(base, 0.99):.2f} ms, max {max(base):.2f} ms"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
