"""The market is consistent with itself: REST, WebSocket, candles, ticker and truth agree."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from sim_helpers import START_MS, connect, get, subscribe

from simulator import Exchange, ExchangeConfig, ManualClock

DAY = 86_400_000
MARKETS = ["KRW-BTC", "KRW-XRP", "BTC-ETH", "KRW-IMX"]


@pytest.fixture
async def ex() -> AsyncIterator[Exchange]:
    config = ExchangeConfig(rest_limit_per_s=None)
    async with Exchange(
        seed=11, markets=MARKETS, clock=ManualClock(START_MS), config=config
    ) as exchange:
        yield exchange


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


@pytest.mark.parametrize("market", MARKETS)
async def test_rest_trades_are_the_truth_newest_first(
    ex: Exchange, session: aiohttp.ClientSession, market: str
) -> None:
    ex.clock.advance(600_000)
    _, trades, _ = await get(session, ex.rest_url + f"/trades/ticks?market={market}&count=500")
    assert trades, "every market traded today"
    oldest = trades[-1]["timestamp"]
    truth = ex.truth_trades(market, from_ms=oldest)
    assert [
        (
            t["sequential_id"],
            _d(t["trade_price"]),
            _d(t["trade_volume"]),
            t["ask_bid"],
            t["timestamp"],
        )
        for t in reversed(trades)
    ][: len(truth)] == [
        (t.sequential_id, t.trade_price, t.trade_volume, t.ask_bid, t.trade_timestamp)
        for t in truth
    ][: len(trades)]
    keys = [(t["timestamp"], t["sequential_id"]) for t in trades]
    assert keys == sorted(keys, reverse=True)
    assert len({t["sequential_id"] for t in trades}) == len(trades)
    assert all(t["sequential_id"] // 10_000 == t["timestamp"] for t in trades)
    for t in trades:
        assert _d(t["change_price"]) == _d(t["trade_price"]) - _d(t["prev_closing_price"])


async def test_trade_paging_with_cursor_to_and_days_ago_covers_the_truth(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    url = ex.rest_url + "/trades/ticks?market=KRW-IMX&days_ago=2&count=7"
    seen: list[int] = []
    cursor = ""
    while True:
        _, page, _ = await get(session, url + (f"&cursor={cursor}" if cursor else ""))
        if not page:
            break
        seen += [t["sequential_id"] for t in page]
        cursor = str(page[-1]["sequential_id"])
    day = START_MS - START_MS % DAY - 2 * DAY
    truth = [t.sequential_id for t in ex.truth_trades("KRW-IMX", day, day + DAY)]
    assert truth and seen == list(reversed(truth))
    _, before_noon, _ = await get(
        session, ex.rest_url + "/trades/ticks?market=KRW-IMX&days_ago=2&count=500&to=12:00:00"
    )
    assert before_noon and all(t["timestamp"] < day + DAY // 2 for t in before_noon)
    assert before_noon[0]["sequential_id"] == max(s for s in truth if s // 10_000 < day + DAY // 2)


@pytest.mark.parametrize(
    ("market", "unit", "size"),
    [
        ("KRW-XRP", "seconds", 1000),
        ("KRW-XRP", "minutes/1", 60_000),
        ("KRW-XRP", "minutes/15", 900_000),
        ("KRW-IMX", "minutes/240", 14_400_000),
        ("KRW-IMX", "days", DAY),
        ("BTC-ETH", "days", DAY),
    ],
)
async def test_candles_are_exactly_the_ohlcv_of_the_truth(
    ex: Exchange, session: aiohttp.ClientSession, market: str, unit: str, size: int
) -> None:
    ex.clock.advance(90_000)
    _, candles, _ = await get(session, ex.rest_url + f"/candles/{unit}?market={market}&count=30")
    assert candles
    first = candles[-1]["candle_date_time_utc"]
    from datetime import UTC, datetime

    start = int(datetime.fromisoformat(first).replace(tzinfo=UTC).timestamp() * 1000)
    truth = ex.truth_trades(market, from_ms=start)
    groups: dict[int, list[Any]] = {}
    for t in truth:
        groups.setdefault(t.trade_timestamp - t.trade_timestamp % size, []).append(t)
    assert len(groups) == len(candles), "a candle exactly where there were trades"
    for candle in candles:
        cs = int(
            datetime.fromisoformat(candle["candle_date_time_utc"]).replace(tzinfo=UTC).timestamp()
            * 1000
        )
        ts = groups[cs]
        assert _d(candle["opening_price"]) == ts[0].trade_price
        assert _d(candle["trade_price"]) == ts[-1].trade_price
        assert _d(candle["high_price"]) == max(t.trade_price for t in ts)
        assert _d(candle["low_price"]) == min(t.trade_price for t in ts)
        assert _d(candle["candle_acc_trade_volume"]) == sum(t.trade_volume for t in ts)
        assert _d(candle["candle_acc_trade_price"]) == sum(
            t.trade_volume * t.trade_price for t in ts
        )
        assert candle["timestamp"] == ts[-1].trade_timestamp


async def test_candle_paging_is_exclusive_and_seamless(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    url = ex.rest_url + "/candles/days?market=KRW-IMX&count=200"
    _, page1, _ = await get(session, url)
    _, page2, _ = await get(session, url + "&to=" + page1[-1]["candle_date_time_utc"])
    assert len(page1) == 200 and page2
    starts = [c["candle_date_time_utc"] for c in page1 + page2]
    assert starts == sorted(starts, reverse=True) and len(set(starts)) == len(starts)
    for newer, older in zip(page1 + page2, (page1 + page2)[1:], strict=False):
        assert _d(newer["prev_closing_price"]) == _d(older["trade_price"])
    _, over, _ = await get(session, url.replace("count=200", "count=999"))
    assert len(over) == 200
    _, weeks, _ = await get(session, ex.rest_url + "/candles/weeks?market=KRW-IMX&count=3")
    week_start = weeks[1]["candle_date_time_utc"]
    days_in_week = [
        c
        for c in page1
        if week_start <= c["candle_date_time_utc"] < weeks[0]["candle_date_time_utc"]
    ]
    assert _d(weeks[1]["candle_acc_trade_volume"]) == sum(
        _d(c["candle_acc_trade_volume"]) for c in days_in_week
    )
    assert _d(weeks[1]["high_price"]) == max(_d(c["high_price"]) for c in days_in_week)


async def test_ticker_sums_agree_with_the_truth(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    ex.clock.advance(30_000)
    _, (ticker,), _ = await get(session, ex.rest_url + "/ticker?markets=KRW-IMX")
    ts = ticker["trade_timestamp"]
    midnight = ts - ts % DAY
    today = ex.truth_trades("KRW-IMX", midnight, ts + 1)
    last24 = ex.truth_trades("KRW-IMX", ts - DAY + 1, ts + 1)
    assert _d(ticker["acc_trade_volume"]) == sum(t.trade_volume for t in today)
    assert _d(ticker["acc_trade_price"]) == sum(t.trade_volume * t.trade_price for t in today)
    assert _d(ticker["acc_trade_volume_24h"]) == sum(t.trade_volume for t in last24)
    assert _d(ticker["acc_trade_price_24h"]) == sum(t.trade_volume * t.trade_price for t in last24)
    assert _d(ticker["opening_price"]) == today[0].trade_price
    assert _d(ticker["high_price"]) == max(t.trade_price for t in today)
    assert _d(ticker["low_price"]) == min(t.trade_price for t in today)
    assert _d(ticker["trade_price"]) == today[-1].trade_price
    assert _d(ticker["trade_volume"]) == today[-1].trade_volume
    yesterday = ex.truth_trades("KRW-IMX", midnight - DAY, midnight)
    assert _d(ticker["prev_closing_price"]) == yesterday[-1].trade_price
    signed = _d(ticker["signed_change_price"])
    assert signed == _d(ticker["trade_price"]) - _d(ticker["prev_closing_price"])
    assert _d(ticker["change_price"]) == abs(signed)
    assert ticker["change"] == ("RISE" if signed > 0 else "FALL" if signed < 0 else "EVEN")
    _, days, _ = await get(session, ex.rest_url + "/candles/days?market=KRW-IMX&count=200")
    _, more, _ = await get(
        session,
        ex.rest_url
        + "/candles/days?market=KRW-IMX&count=200&to="
        + days[-1]["candle_date_time_utc"],
    )
    year = [c for c in days + more if c["candle_date_time_utc"] >= _iso(midnight - 364 * DAY)]
    assert _d(ticker["highest_52_week_price"]) == max(_d(c["high_price"]) for c in year)
    assert _d(ticker["lowest_52_week_price"]) == min(_d(c["low_price"]) for c in year)
    by_date = {c["candle_date_time_utc"][:10]: c for c in year}
    assert _d(by_date[ticker["highest_52_week_date"]]["high_price"]) == _d(
        ticker["highest_52_week_price"]
    )
    assert _d(by_date[ticker["lowest_52_week_date"]]["low_price"]) == _d(
        ticker["lowest_52_week_price"]
    )


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")


async def test_websocket_and_rest_agree_and_books_are_sound(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    client = await connect(ex, session)
    await subscribe(
        client.ws,
        {"type": "ticker", "codes": ["KRW-BTC"]},
        {"type": "trade", "codes": ["KRW-BTC"]},
        {"type": "orderbook", "codes": ["KRW-BTC"]},
    )
    for _ in range(3):
        await client.recv()
    ex.clock.advance(20_000)
    frames = await client.pending()
    trades = [f for f in frames if f["type"] == "trade"]
    books = [f for f in frames if f["type"] == "orderbook"]
    tickers = [f for f in frames if f["type"] == "ticker"]
    assert trades and len(books) == len(trades) == len(tickers)
    last_book: dict[str, Any] = {}
    for frame in frames:
        if frame["type"] == "orderbook":
            units = frame["orderbook_units"]
            asks = [_d(u["ask_price"]) for u in units]
            bids = [_d(u["bid_price"]) for u in units]
            assert len(units) == 30 and asks == sorted(asks) and bids == sorted(bids, reverse=True)
            assert len(set(asks)) == 30 and len(set(bids)) == 30 and bids[0] < asks[0]
            assert _d(frame["total_ask_size"]) == sum(_d(u["ask_size"]) for u in units)
            assert _d(frame["total_bid_size"]) == sum(_d(u["bid_size"]) for u in units)
            assert all(p % 1000 == 0 for p in asks + bids), "KRW-BTC ticks are 1,000 won"
            last_book = frame
        elif frame["type"] == "trade":
            touch = (
                frame["best_bid_price"] if frame["ask_bid"] == "ASK" else frame["best_ask_price"]
            )
            assert _d(frame["trade_price"]) == _d(touch), "trades print at the touch"
    # The latest WebSocket messages and REST agree on every field both carry.
    _, (rest_book,), _ = await get(session, ex.rest_url + "/orderbook?markets=KRW-BTC")
    for key in ("timestamp", "total_ask_size", "total_bid_size", "orderbook_units", "level"):
        assert rest_book[key] == last_book[key], key
    _, (rest_ticker,), _ = await get(session, ex.rest_url + "/ticker?markets=KRW-BTC")
    ws_ticker = tickers[-1]
    for key, value in rest_ticker.items():
        if key in ws_ticker:
            assert (
                _d(ws_ticker[key]) == _d(value)
                if not isinstance(value, str)
                else ws_ticker[key] == value
            ), key
    _, (rest_trade,), _ = await get(session, ex.rest_url + "/trades/ticks?market=KRW-BTC")
    ws_trade = trades[-1]
    assert rest_trade["sequential_id"] == ws_trade["sequential_id"]
    assert rest_trade["timestamp"] == ws_trade["trade_timestamp"]
    assert _d(rest_trade["trade_price"]) == _d(ws_trade["trade_price"])
    assert _d(rest_trade["change_price"]) == (1 if ws_trade["change"] != "FALL" else -1) * _d(
        ws_trade["change_price"]
    )
    truth = ex.truth_trades("KRW-BTC", from_ms=START_MS + 1 - 100)
    assert [t["sequential_id"] for t in trades] == [
        t.sequential_id for t in truth if t.trade_timestamp > trades[0]["trade_timestamp"] - 1
    ][: len(trades)]


async def test_orderbook_depth_levels_and_instruments(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    _, (book,), _ = await get(session, ex.rest_url + "/orderbook?markets=KRW-BTC&count=15")
    assert len(book["orderbook_units"]) == 15
    assert _d(book["total_ask_size"]) == sum(_d(u["ask_size"]) for u in book["orderbook_units"])
    _, (inst,), _ = await get(session, ex.rest_url + "/orderbook/instruments?markets=KRW-BTC")
    assert inst["tick_size"] == "1000" and inst["supported_levels"][0] == "0"
    level = inst["supported_levels"][2]
    _, (grouped,), _ = await get(session, ex.rest_url + f"/orderbook?markets=KRW-BTC&level={level}")
    assert _d(grouped["level"]) == _d(level)
    assert all(
        _d(u["ask_price"]) % _d(level) == 0 and _d(u["bid_price"]) % _d(level) == 0
        for u in grouped["orderbook_units"]
    )
    _, unsupported, _ = await get(session, ex.rest_url + "/orderbook?markets=KRW-BTC&level=7")
    assert unsupported == []
    _, btc_level, _ = await get(session, ex.rest_url + "/orderbook?markets=BTC-ETH&level=10000")
    assert btc_level == []
    client = await connect(ex, session)
    await subscribe(client.ws, {"type": "orderbook", "codes": ["KRW-BTC.5", "KRW-XRP.7"]})
    frames = [await client.recv(), await client.recv()]
    depth = {f["code"]: len(f["orderbook_units"]) for f in frames}
    assert depth == {"KRW-BTC": 5, "KRW-XRP": 30}
