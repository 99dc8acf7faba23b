"""Helpers for the recorder's end-to-end tests: watching what the recorder accepts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow as pa
import pyarrow.dataset as ds

from backbone.models import ConnectionEvent, EventKind, TradeData
from recorder.rows import AnyRecord


class Accepted:
    """An ``on_record`` hook that remembers what the recorder accepted and wakes waiters."""

    def __init__(self) -> None:
        self.trades: dict[tuple[str, int], TradeData] = {}
        self.first_trade_ms: dict[str, int] = {}
        self.events: list[ConnectionEvent] = []
        self.count = 0
        self._changed = asyncio.Event()

    def __call__(self, record: AnyRecord, seq: int) -> None:
        self.count += 1
        if type(record) is TradeData:
            self.trades[(record.symbol, record.sequential_id)] = record
            ms = int(record.trade_timestamp.timestamp() * 1000)
            self.first_trade_ms.setdefault(record.symbol, ms)
        elif type(record) is ConnectionEvent:
            self.events.append(record)
        self._changed.set()

    def kinds(self, kind: EventKind) -> int:
        return sum(1 for e in self.events if e.kind is kind)

    async def wait(self, predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 1.0))
            except TimeoutError:
                continue


async def truth_trades(admin_url: str, market: str, from_ms: int, to_ms: int) -> list[Any]:
    """The simulator's truth over HTTP (``/_sim/truth/trades``), exact decimals."""
    import json
    from decimal import Decimal

    url = f"{admin_url}/truth/trades?market={market}&from={from_ms}&to={to_ms}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        return json.loads(await response.read(), parse_float=Decimal)  # type: ignore[no-any-return]


def read_dataset(root: Path, dataset: str) -> pa.Table:
    """Read a dataset as any user would: pyarrow over the hive-partitioned files."""
    return ds.dataset(root / dataset, format="parquet", partitioning="hive").to_table()
