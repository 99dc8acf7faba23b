"""``get_*`` answer as of the replay clock, never from records not yet released; pacing."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from replay_factories import Market

from backbone.models import CandleData, OrderbookData, Record, TickerData, TradeData
from recorder import write_recording
from replay import NotYetReplayed, ReplayBackbone, UnknownSymbol
from replay.errors import InvalidReplayArgument

SYMBOLS = ("KRW-BTC", "KRW-ETH")


async def test_requests_follow_the_clock_record_by_record(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    latest: dict[tuple[type, str], Record] = {}
    trades: dict[str, list[TradeData]] = {s: [] for s in SYMBOLS}
    candles: dict[tuple[str, str], OrderedDict[datetime, CandleData]] = {}
    async with ReplayBackbone(root) as replay:
        for symbol in SYMBOLS:
            with pytest.raises(NotYetReplayed, match="iterate a stream"):
                await replay.get_ticker(symbol)
            with pytest.raises(NotYetReplayed):
                await replay.get_orderbook(symbol)
            assert await replay.get_trades(symbol) == []
        checked = 0
        async for record in replay.stream_all():
            assert replay.clock_ns is not None and replay.clock_ns >= record.received_ns
            if isinstance(record, TradeData):
                trades[record.symbol].append(record)
            elif isinstance(record, CandleData):
                kept = candles.setdefault((record.symbol, record.timeframe), OrderedDict())
                kept[record.open_time] = record
            if isinstance(record, TickerData | OrderbookData):
                latest[(type(record), record.symbol)] = record
            for symbol in SYMBOLS:
                ticker = latest.get((TickerData, symbol))
                if ticker is not None:
                    assert await replay.get_ticker(symbol, realtime=True) == ticker
                book = latest.get((OrderbookData, symbol))
                if book is not None:
                    assert await replay.get_orderbook(symbol) == book
                assert await replay.get_trades(symbol, 7) == trades[symbol][::-1][:7]
                for timeframe in ("1m", "1s"):
                    want = sorted(
                        candles.get((symbol, timeframe), {}).values(),
                        key=lambda c: c.open_time,
                        reverse=True,
                    )
                    assert await replay.get_candles(symbol, timeframe, 3) == want[:3]
            checked += 1
        assert checked == len(records)


async def test_request_arguments(recording: tuple[Path, list[Record]]) -> None:
    root, records = recording
    async with ReplayBackbone(root) as replay:
        async for _ in replay.stream_all():
            pass
        all_trades = [r for r in records if type(r) is TradeData and r.symbol == "KRW-BTC"]
        newest = await replay.get_trades("KRW-BTC", 1000)
        assert newest == all_trades[::-1][:1000]
        cut = all_trades[len(all_trades) // 2].trade_timestamp
        before = await replay.get_trades("KRW-BTC", 5, to=cut)
        assert before and all(t.trade_timestamp < cut for t in before)
        assert before == [t for t in newest if t.trade_timestamp < cut][:5]
        candles = await replay.get_candles("KRW-BTC", "1m", 200)
        assert candles and len({c.open_time for c in candles}) == len(candles)
        late = candles[0].open_time
        assert await replay.get_candles("KRW-BTC", "1m", to=late) == candles[1:]
        assert await replay.get_candles("KRW-BTC", "1w") == []
        for bad in (0, 1001, True):
            with pytest.raises(InvalidReplayArgument, match="count"):
                await replay.get_trades("KRW-BTC", bad)
        with pytest.raises(InvalidReplayArgument, match="days_ago"):
            await replay.get_trades("KRW-BTC", days_ago=1)
        with pytest.raises(InvalidReplayArgument, match="aware"):
            await replay.get_trades("KRW-BTC", to=datetime(2025, 1, 1))
        with pytest.raises(InvalidReplayArgument, match="timeframe"):
            await replay.get_candles("KRW-BTC", "2m")
        with pytest.raises(UnknownSymbol):
            await replay.get_ticker("KRW-XRP")
        markets = await replay.get_markets()
        assert [m.symbol for m in markets] == list(SYMBOLS)
        assert markets[0].quote_currency == "KRW" and markets[0].base_currency == "BTC"
        assert replay.statistics().finished


async def test_markets_follow_the_sessions_started(tmp_path: Path) -> None:
    market = Market(seed=4)
    early = market.records(30)
    late = Market(seed=5, symbols=("KRW-XRP",)).records(30, start_ns=early[-1].received_ns + 10**9)
    write_recording(tmp_path, early, session_id="20251126T000000000Z-aaaa0001")
    write_recording(tmp_path, late, session_id="20251126T000001000Z-aaaa0002")
    manifest = next((tmp_path / "_sessions").glob("*aaaa0002.json"))
    body = manifest.read_text().replace(
        '"settings"',
        '"markets": [{"symbol": "KRW-XRP", "korean_name": "리플", "english_name": "XRP",'
        ' "warning": true, "caution": ["PRICE_FLUCTUATIONS"]}],\n  "settings"',
    )
    manifest.write_text(body)
    async with ReplayBackbone(tmp_path) as replay:
        assert [m.symbol for m in await replay.get_markets()] == ["KRW-BTC", "KRW-ETH"]
        async for record in replay.stream_all():
            if record.received_ns >= late[0].received_ns:
                break
        xrp = [m for m in await replay.get_markets() if m.symbol == "KRW-XRP"]
        assert xrp and xrp[0].english_name == "XRP" and xrp[0].warning
        assert xrp[0].caution == ("PRICE_FLUCTUATIONS",)


async def test_paced_replay_follows_the_recorded_times(tmp_path: Path) -> None:
    records = Market(seed=8).records(40, step_ns=5_000_000)  # about 200 ms of market
    write_recording(tmp_path, records, session_id="s-paced")
    span_s = (max(r.received_ns for r in records) - records[0].received_ns) / 1e9
    for speed in (1.0, 4.0):
        async with ReplayBackbone(tmp_path, speed=speed) as replay:
            began = time.monotonic()
            got = [r async for r in replay.stream_all()]
            elapsed = time.monotonic() - began
            stats = replay.statistics()
        assert got == records
        assert elapsed >= span_s / speed * 0.95  # never ahead of the schedule
        assert stats.lag_s is not None and stats.max_lag_s is not None
        assert stats.lag_p99_s is not None and stats.max_lag_s >= stats.lag_p99_s


async def test_a_paced_clock_runs_without_consumers(tmp_path: Path) -> None:
    records = Market(seed=9).records(30, step_ns=2_000_000)
    write_recording(tmp_path, records, session_id="s-paced")
    tickers = [r for r in records if type(r) is TickerData]
    async with ReplayBackbone(tmp_path, speed=1.0) as replay, asyncio.timeout(30):
        await replay.wait_finished()
        assert replay.clock_ns == max(r.received_ns for r in records)
        assert (
            await replay.get_ticker(tickers[-1].symbol)
            == [t for t in tickers if t.symbol == tickers[-1].symbol][-1]
        )
        assert [r async for r in replay.stream_all()] == []


async def test_requests_need_an_open_replay(recording: tuple[Path, list[Record]]) -> None:
    root, _ = recording
    replay = ReplayBackbone(root, start=datetime(2025, 11, 27, tzinfo=UTC))
    from replay import ReplayClosed

    with pytest.raises(ReplayClosed):
        await replay.get_markets()
    async with replay:
        first = await anext(replay.stream_all())
        assert first.received_ns >= 1_764_201_600_000_000_000
        assert replay.clock_ns is not None
        assert datetime(2025, 11, 27, tzinfo=UTC) + timedelta(seconds=10) > datetime.fromtimestamp(
            replay.clock_ns / 1e9, tz=UTC
        )
    with pytest.raises(ReplayClosed):
        await replay.digest()
