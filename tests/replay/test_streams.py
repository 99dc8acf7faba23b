"""Several consumers, one clock: deterministic interleaving, and no pattern of use deadlocks."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import pytest

from backbone.models import ConnectionEvent, OrderbookData, Record, TickerData, TradeData
from replay import ReplayBackbone, ReplayClosed
from replay.errors import InvalidReplayArgument, UnknownSymbol

SYMBOLS = ["KRW-BTC", "KRW-ETH"]
TIMEOUT_S = 60  # generous: only reached if the replay deadlocks


async def _two_consumers(
    root: Path, seed: int, speed: float | None = None
) -> list[tuple[str, Any]]:
    # A ticker consumer and a trade consumer that take different, random (per seed) pauses.
    rng = random.Random(seed)
    log: list[tuple[str, Any]] = []
    async with ReplayBackbone(root, speed=speed) as replay:

        async def consume(stream: Any, tag: str) -> None:
            async for record in stream:
                log.append((tag, record))
                pause = rng.random()
                if pause < 0.2:
                    await asyncio.sleep(pause / 1000)
                elif pause < 0.5:
                    await asyncio.sleep(0)

        async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as tg:
            tg.create_task(consume(replay.stream_ticker(SYMBOLS), "ticker"))
            tg.create_task(consume(replay.stream_trade(SYMBOLS), "trade"))
    return log


async def test_two_concurrent_consumers_see_the_same_interleaving_every_run(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    want = [
        ("ticker" if type(r) is TickerData else "trade", r)
        for r in records
        if type(r) in (TickerData, TradeData)
    ]
    runs = [await _two_consumers(root, seed) for seed in range(3)]
    for log in runs:
        assert log == want


async def test_paced_consumers_interleave_the_same_way(tmp_path: Path) -> None:
    from replay_factories import Market

    from recorder import write_recording

    records = Market(seed=21).records(120, step_ns=200_000)  # about 24 ms of market
    write_recording(tmp_path, records, session_id="s-paced")
    want = [
        ("ticker" if type(r) is TickerData else "trade", r)
        for r in records
        if type(r) in (TickerData, TradeData)
    ]
    assert await _two_consumers(tmp_path, 1, speed=1.0) == want
    assert await _two_consumers(tmp_path, 2, speed=5.0) == want


async def test_a_stream_created_and_never_read_holds_nothing(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    async with ReplayBackbone(root) as replay, asyncio.timeout(TIMEOUT_S):
        unread = replay.stream_ticker(SYMBOLS)
        trades = [t async for t in replay.stream_trade(SYMBOLS)]
        assert trades == [r for r in records if type(r) is TradeData]
        assert unread.delivered == 0
        assert [t async for t in unread] == []  # the selection is over by now


async def test_streams_read_one_after_another(recording: tuple[Path, list[Record]]) -> None:
    root, records = recording
    async with ReplayBackbone(root) as replay, asyncio.timeout(TIMEOUT_S):
        trades = replay.stream_trade(SYMBOLS)
        first = []
        async for trade in trades:
            first.append(trade)
            if len(first) == 5:
                break  # ``trades`` stays referenced: it is not closed
        # The same task now reads another stream: the trade stream stops holding the clock.
        tickers = [t async for t in replay.stream_ticker(SYMBOLS)]
    where = records.index(first[-1])
    assert first == [r for r in records[: where + 1] if type(r) is TradeData]
    assert tickers == [r for r in records[where + 1 :] if type(r) is TickerData]


async def test_read_one_item_then_another_stream_then_the_first_again(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    async with ReplayBackbone(root) as replay, asyncio.timeout(TIMEOUT_S):
        books = replay.stream_orderbook(SYMBOLS)
        book = await anext(books)
        tick = await anext(replay.stream_ticker(SYMBOLS))
        book_again = await anext(books)  # rejoins at the clock: what passed meanwhile is missed
    assert book == next(r for r in records if type(r) is OrderbookData)
    after_book = records[records.index(book) + 1 :]
    assert tick == next(r for r in after_book if type(r) is TickerData)
    after_tick = records[records.index(tick) + 1 :]
    assert book_again == next(r for r in after_tick if type(r) is OrderbookData)


async def test_a_consumer_that_breaks_out_early_releases_the_clock(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    done = asyncio.Event()
    got: list[TradeData] = []
    async with ReplayBackbone(root) as replay:

        async def quitter() -> None:
            async for _ in replay.stream_ticker(SYMBOLS):
                break  # the dropped stream is closed
            await done.wait()  # then waits for the other consumer, reading nothing

        async def reader() -> None:
            async for trade in replay.stream_trade(SYMBOLS):
                got.append(trade)
            done.set()

        async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as tg:
            tg.create_task(quitter())
            tg.create_task(reader())
    assert got == [r for r in records if type(r) is TradeData]


async def test_a_kept_stream_is_released_by_aclose_or_by_its_task_ending(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    kept: list[Any] = []
    for how in ("aclose", "task ends"):
        done = asyncio.Event()
        got: list[TradeData] = []
        async with ReplayBackbone(root) as replay:

            async def holder(how: str = how, done: asyncio.Event = done) -> None:
                stream = replay.stream_ticker(SYMBOLS)
                kept.append(stream)  # still referenced: only aclose or the task's end frees it
                await anext(stream)
                if how == "aclose":
                    await stream.aclose()
                    await done.wait()

            async def reader(got: list[TradeData] = got, done: asyncio.Event = done) -> None:
                async for trade in replay.stream_trade(SYMBOLS):
                    got.append(trade)
                done.set()

            async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as tg:
                tg.create_task(holder())
                tg.create_task(reader())
        trades = [r for r in records if type(r) is TradeData]
        first_ticker = next(r for r in records if type(r) is TickerData)
        # The reader joined before the first ticker was handed out and saw every trade.
        assert got == trades, how
        assert records.index(first_ticker) < records.index(trades[-1])


async def test_a_cancelled_consumer_ends_its_stream_and_frees_the_others(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    got: list[TradeData] = []
    async with ReplayBackbone(root) as replay:
        books = replay.stream_orderbook(SYMBOLS)
        seen_book = asyncio.Event()

        async def book_reader() -> None:
            async for _ in books:
                seen_book.set()

        async def trade_reader(victim: asyncio.Task[None]) -> None:
            async for trade in replay.stream_trade(SYMBOLS):
                got.append(trade)
                if seen_book.is_set() and not victim.done():
                    victim.cancel()  # the book reader is waiting for its next book

        async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as tg:
            victim = tg.create_task(book_reader())
            tg.create_task(trade_reader(victim))
        assert victim.cancelled()
        assert [b async for b in books] == []  # a cancelled stream stays ended
    assert got == [r for r in records if type(r) is TradeData]


async def test_cancelling_the_only_consumer_mid_replay(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    async with ReplayBackbone(root, speed=0.001) as replay:  # the next record is far away
        stream = replay.stream_all()
        first = await asyncio.wait_for(anext(stream), TIMEOUT_S)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(anext(stream), 0.05)
        with pytest.raises(StopAsyncIteration):
            await anext(stream)  # like an async generator, a cancelled stream has ended
        assert first == records[0]


async def test_a_stream_matched_by_several_streams_goes_to_each_in_join_order(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    log: list[tuple[str, Record]] = []
    async with ReplayBackbone(root) as replay:

        async def consume(stream: Any, tag: str) -> None:
            async for record in stream:
                log.append((tag, record))

        async with asyncio.timeout(TIMEOUT_S), asyncio.TaskGroup() as tg:
            tg.create_task(consume(replay.stream_all(["trade", "events"]), "all"))
            tg.create_task(consume(replay.stream_trade("KRW-BTC"), "btc"))
    want: list[tuple[str, Record]] = []
    for r in records:
        if type(r) in (TradeData, ConnectionEvent):
            want.append(("all", r))
        if type(r) is TradeData and r.symbol == "KRW-BTC":
            want.append(("btc", r))
    assert log == want


async def test_lifecycle_and_bad_calls(recording: tuple[Path, list[Record]]) -> None:
    root, _ = recording
    replay = ReplayBackbone(root)
    with pytest.raises(ReplayClosed):
        replay.stream_trade("KRW-BTC")
    async with replay:
        with pytest.raises(UnknownSymbol, match="KRW-NOPE"):
            replay.stream_trade(["KRW-BTC", "KRW-NOPE"])
        with pytest.raises(ValueError):  # UnknownSymbol is a ValueError, as the live one
            replay.stream_ticker("KRW-NOPE")
        with pytest.raises(InvalidReplayArgument, match="timeframe"):
            replay.stream_candle("KRW-BTC", "7m")
        with pytest.raises(InvalidReplayArgument, match="channel"):
            replay.stream_all(["trades"])
        with pytest.raises(InvalidReplayArgument):
            replay.stream_all([])
        stream = replay.stream_all()
        assert repr(stream).startswith("<ReplayStream all(")
        await anext(stream)
        stats = replay.statistics()
        assert stats.released == 1 and stats.lag_s is None and not stats.finished
    await replay.aclose()  # idempotent
    with pytest.raises(StopAsyncIteration):
        await anext(stream)  # streams end with the replay
    with pytest.raises(ReplayClosed, match="opens once"):
        async with replay:
            pass
    with pytest.raises(InvalidReplayArgument, match="speed"):
        ReplayBackbone(root, speed=0)
    with pytest.raises(InvalidReplayArgument, match="speed"):
        ReplayBackbone(root, speed=True)


async def test_an_unknown_selected_symbol_is_refused_on_entry(
    recording: tuple[Path, list[Record]],
) -> None:
    root, _ = recording
    with pytest.raises(UnknownSymbol, match="KRW-NOPE"):
        async with ReplayBackbone(root, symbols="KRW-BTC,KRW-NOPE"):
            pass


async def test_stream_context_manager_closes(recording: tuple[Path, list[Record]]) -> None:
    root, records = recording
    async with ReplayBackbone(root) as replay:
        async with replay.stream_all() as stream:
            assert await anext(stream) == records[0]
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        rest = [r async for r in replay.stream_all()]
    assert rest == records[1:]


async def test_stopping_the_reader_wakes_a_consumer_waiting_for_it() -> None:
    import threading

    from replay.prefetch import DONE, Failed, Prefetch

    gate = threading.Event()

    def produce() -> Any:
        yield "first"
        gate.wait(TIMEOUT_S)  # the reader is slow: nothing more for now
        yield "late"

    reader = Prefetch(produce, depth=1)  # type: ignore[arg-type]
    task = asyncio.create_task(reader.run())
    assert await asyncio.wait_for(reader.get(), TIMEOUT_S) == "first"
    waiting = asyncio.create_task(reader.get())
    await asyncio.sleep(0)
    assert not waiting.done()
    reader.stop()  # the replay closes
    assert await asyncio.wait_for(waiting, TIMEOUT_S) is DONE
    gate.set()
    await asyncio.wait_for(task, TIMEOUT_S)

    def broken() -> Any:
        raise OSError("disk gone")
        yield  # pragma: no cover

    failing = Prefetch(broken)  # type: ignore[arg-type]
    task = asyncio.create_task(failing.run())
    item = await asyncio.wait_for(failing.get(), TIMEOUT_S)
    assert isinstance(item, Failed) and isinstance(item.error, OSError)
    await task
