"""A child process for the kill test: records synthetic records until killed.

It prints ``session <id>`` first, then one line ``<seq> <dataset>`` per accepted record,
written straight to the pipe (no buffering), so the parent knows what was accepted when.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from recorder_factories import orderbook, ticker, trade

from recorder.config import StorageConfig
from recorder.rows import dataset_of
from recorder.session import RecordingSession


async def main(root: str) -> None:
    def echo(record: object, seq: int) -> None:
        os.write(1, f"{seq} {dataset_of(record)}\n".encode())  # type: ignore[arg-type]

    storage = StorageConfig(flush_interval_ms=100, rotation_interval_s=0.7)
    async with RecordingSession(root, storage=storage, on_record=echo) as session:
        os.write(1, f"session {session.session_id}\n".encode())
        sequential_id = int(time.time() * 1000)
        while True:
            now = time.time_ns()
            for symbol in ("KRW-BTC", "KRW-ETH"):
                sequential_id += 1
                await session.put(trade(symbol, sequential_id, now))
                await session.put(ticker(symbol, now))
                await session.put(orderbook(symbol, now))
            await asyncio.sleep(0.005)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
