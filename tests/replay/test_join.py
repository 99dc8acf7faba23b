"""Where a stream joins an unpaced replay: decided by the consumers and the records released
so far, never by how fast the files are read."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import replay.engine as engine_module
from backbone.models import Record, TickerData, TradeData
from replay import ReplayBackbone
from replay.order import Segment

SYMBOLS = ["KRW-BTC", "KRW-ETH"]
TIMEOUT_S = 60  # generous: only reached if the replay deadlocks


def _slow_reader(monkeypatch: pytest.MonkeyPatch, seed: int | None) -> None:
    # The reader hands its rows over in pieces of 7, each after a random delay (none when
    # ``seed`` is None), so the consumers find it behind at different points in every run.
    real = engine_module.segments
    rng = random.Random(seed)

    def slow(*args: Any, **kwargs: Any) -> Iterator[Segment]:
        for segment in real(*args, **kwargs):
            for start in range(0, len(segment), 7):
                if seed is not None:
                    time.sleep(rng.random() * 0.002)  # on the reader's thread
                yield segment.slice(start, min(start + 7, len(segment)))

    monkeypatch.setattr(engine_module, "segments", slow)


async def _join_after(root: Path, after: int, passes: int) -> list[tuple[str, Record]]:
    # A trade consumer starts a ticker consumer after its ``after``-th trade; the ticker
    # consumer lets the event loop run ``passes`` times before it iterates its stream.
    log: list[tuple[str, Record]] = []
    async with ReplayBackbone(root) as replay:

        async def tickers() -> None:
            for _ in range(passes):
                await asyncio.sleep(0)  # a start-up of several steps, none waiting on time
            async for ticker in replay.stream_ticker(SYMBOLS):
                log.append(("ticker", ticker))

        count = 0
        async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as tg:
            async for trade in replay.stream_trade(SYMBOLS):
                log.append(("trade", trade))
                count += 1
                if count == after:
                    tg.create_task(tickers())
    return log


def _expected(records: list[Record], after: int) -> list[tuple[str, Record]]:
    trades = [i for i, r in enumerate(records) if type(r) is TradeData]
    joined_at = trades[after - 1]
    want: list[tuple[str, Record]] = []
    for i, r in enumerate(records):
        if type(r) is TradeData:
            want.append(("trade", r))
        elif type(r) is TickerData and i > joined_at:
            want.append(("ticker", r))
    return want


@pytest.mark.parametrize("passes", [0, 3])
async def test_a_stream_started_after_n_records_joins_right_there_whatever_the_reader(
    recording: tuple[Path, list[Record]], monkeypatch: pytest.MonkeyPatch, passes: int
) -> None:
    root, records = recording
    after = 40
    want = _expected(records, after)
    for seed in (None, 1, 2, 3):
        _slow_reader(monkeypatch, seed)
        assert await _join_after(root, after, passes) == want, f"reader delays seed {seed}"
        monkeypatch.undo()


async def test_without_a_visible_ready_queue_every_release_lets_the_loop_run_once(
    recording: tuple[Path, list[Record]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An event loop that does not show its ready queue: the replay yields once per record,
    # so a consumer that iterates as soon as it runs still joins right after the N-th trade.
    root, records = recording
    for seed in (None, 4):
        _slow_reader(monkeypatch, seed)
        monkeypatch.setattr(engine_module, "_ready_queue_of", lambda loop: None)
        assert await _join_after(root, 25, 0) == _expected(records, 25)
        monkeypatch.undo()
