"""Record the simulator live, keep what the streams delivered in memory, replay: the same.

The recorder's ``on_record`` hook sees every record the live backbone's streams delivered, in
the order the recorder accepted them (that order is ``seq``). Replaying the recording must
yield exactly those records (every field, same types) in exactly that order, through a
disconnect (events, REST-sourced records) and rotations into several parts per partition.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from backbone.client import MarketDataBackbone
from backbone.config import BackboneConfig
from backbone.models import (
    CandleData,
    ConnectionEvent,
    EventKind,
    OrderbookData,
    Record,
    TickerData,
    TradeData,
)
from recorder.capture import Recorder
from recorder.config import RecorderConfig, StorageConfig
from recorder.rows import AnyRecord
from replay import ReplayBackbone
from simulator import Exchange, ExchangeConfig

MARKETS = ["KRW-BTC", "KRW-ETH"]
REPLAYED = (TickerData, TradeData, OrderbookData, CandleData, ConnectionEvent)


class Live:
    """The records the recorder accepted from the live streams, in the order accepted."""

    def __init__(self) -> None:
        self.records: list[tuple[int, Record]] = []
        self.changed = asyncio.Event()

    def __call__(self, record: AnyRecord, seq: int) -> None:
        if type(record) in REPLAYED:
            self.records.append((seq, record))  # type: ignore[arg-type]
            self.changed.set()

    def count(self, cls: type) -> int:
        return sum(1 for _, r in self.records if type(r) is cls)

    def reconnects(self) -> int:
        return sum(
            1
            for _, r in self.records
            if isinstance(r, ConnectionEvent) and r.kind is EventKind.RECONNECTED
        )

    async def wait(self, ready: object, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():  # type: ignore[operator]
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out after {timeout_s} s waiting for {what}"
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=min(remaining, 1.0))
            except TimeoutError:
                continue


async def test_replay_equals_the_live_streams_element_for_element(tmp_path: Path) -> None:
    live = Live()
    config = RecorderConfig(
        symbols=tuple(MARKETS),
        rest_snapshot_interval_s=0,
        backfill=False,
        storage=StorageConfig(flush_interval_ms=50, rotation_interval_s=0.5),
    )
    exchange = Exchange(seed=23, markets=MARKETS, config=ExchangeConfig(activity_scale=20))
    async with (
        exchange as ex,
        MarketDataBackbone(ex.rest_url, ex.ws_url, config=BackboneConfig()) as backbone,
        Recorder(backbone, tmp_path, config=config, on_record=live),
    ):
        await live.wait(
            lambda: all(live.count(cls) >= 5 for cls in (TickerData, TradeData, OrderbookData)),
            60,
            "tickers, trades and orderbooks",
        )
        ex.faults.apply("disconnect")
        await live.wait(lambda: live.reconnects() >= 1, 60, "a reconnect")
        settled = len(live.records)
        await live.wait(lambda: len(live.records) >= settled + 50, 60, "records after it")
    seqs = [seq for seq, _ in live.records]
    assert seqs == sorted(seqs), "on_record saw records out of seq order"
    delivered = [record for _, record in live.records]
    assert live.count(ConnectionEvent) and live.count(CandleData) >= 1
    parts = list((tmp_path / "trade").rglob("part-*.parquet"))
    assert len(parts) > len(MARKETS), "expected several parts per partition"

    async with ReplayBackbone(tmp_path) as replay:
        replayed = [record async for record in replay.stream_all()]
        first = await replay.digest()
    assert len(replayed) == len(delivered)
    for index, (got, want) in enumerate(zip(replayed, delivered, strict=True)):
        assert type(got) is type(want), index
        assert got == want, index
    async with ReplayBackbone(tmp_path) as replay:
        assert await replay.digest() == first
