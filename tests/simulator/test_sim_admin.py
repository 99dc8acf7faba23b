"""The admin API: clock, markets, truth, counters; the firehose; clocks and lifecycle."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import aiohttp
import pytest
from sim_helpers import START_MS, connect, decode, get, subscribe

from simulator import Exchange, ExchangeConfig, FirehoseConfig, ManualClock, RealClock, ScaledClock


async def test_clock_over_http_settles_and_frames_are_counted(
    session: aiohttp.ClientSession,
) -> None:
    async with Exchange(seed=2, markets=["KRW-BTC"], clock=ManualClock(START_MS)) as ex:
        client = await connect(ex, session)
        await subscribe(client.ws, {"type": "trade", "codes": ["KRW-BTC"]})
        await client.recv()
        async with session.post(ex.admin_url + "/clock", json={"advance_ms": 30_000}) as resp:
            assert (await resp.json()) == {"now_ms": START_MS + 30_000}
        truth = ex.truth_trades("KRW-BTC", START_MS)
        async with session.get(ex.admin_url + "/connections") as resp:
            (info,) = await resp.json()
        assert info["frames_sent"] == {"trade": 1 + len(truth)}
        got = [(await client.recv())["sequential_id"] for _ in range(len(truth))]
        assert got == [t.sequential_id for t in truth]
        async with session.post(
            ex.admin_url + "/clock", json={"set_ms": START_MS + 40_000}
        ) as resp:
            assert (await resp.json())["now_ms"] == START_MS + 40_000
        for bad in ({"advance_ms": -1}, {"set_ms": START_MS}, {}):
            async with session.post(ex.admin_url + "/clock", json=bad) as resp:
                assert resp.status == 400
        async with session.get(ex.admin_url + "/clock") as resp:
            assert (await resp.json())["clock"] == "ManualClock"
        async with session.post(ex.admin_url + "/settle") as resp:
            assert resp.status == 200
        async with session.get(ex.admin_url) as resp:
            info = await resp.json()
        assert info["ws_url"] == ex.ws_url and info["markets"] == 1


async def test_truth_endpoint(session: aiohttp.ClientSession) -> None:
    async with Exchange(seed=2, markets=["KRW-XRP"], clock=ManualClock(START_MS)) as ex:
        ex.clock.advance(60_000)
        async with session.get(ex.admin_url + "/truth/trades?market=KRW-XRP") as resp:
            truth = decode(await resp.read())
        assert truth and set(truth[0]) == {
            "sequential_id",
            "trade_price",
            "trade_volume",
            "ask_bid",
            "trade_timestamp",
        }
        assert [t["sequential_id"] for t in truth] == [
            t.sequential_id for t in ex.truth_trades("KRW-XRP")
        ]
        assert all(isinstance(t["trade_price"], (int, Decimal)) for t in truth)
        middle = truth[len(truth) // 2]["trade_timestamp"]
        async with session.get(
            ex.admin_url + f"/truth/trades?market=KRW-XRP&from={middle}&to={START_MS + 60_000}"
        ) as resp:
            part = decode(await resp.read())
        assert part == [t for t in truth if t["trade_timestamp"] >= middle]
        for query, status in (
            ("", 400),
            ("?market=KRW-NOPE", 404),
            ("?market=KRW-XRP&from=x", 400),
        ):
            async with session.get(ex.admin_url + "/truth/trades" + query) as resp:
                assert resp.status == status


async def test_listing_and_delisting_while_running(session: aiohttp.ClientSession) -> None:
    async with Exchange(seed=2, markets=["KRW-BTC", "KRW-ETH"], clock=ManualClock(START_MS)) as ex:
        client = await connect(ex, session)
        await subscribe(client.ws, {"type": "trade", "codes": ["KRW-ETH"]})
        await client.recv()
        async with session.post(
            ex.admin_url + "/markets", json={"market": "KRW-NEWCOIN", "english_name": "New"}
        ) as resp:
            assert resp.status == 200
        _, markets, _ = await get(session, ex.rest_url + "/market/all")
        assert [m["market"] for m in markets] == ["KRW-BTC", "KRW-ETH", "KRW-NEWCOIN"]
        assert markets[2]["english_name"] == "New" and markets[2]["korean_name"]
        status, (ticker,), _ = await get(session, ex.rest_url + "/ticker?markets=KRW-NEWCOIN")
        assert status == 200 and ticker["market"] == "KRW-NEWCOIN"
        async with session.delete(ex.admin_url + "/markets/KRW-ETH") as resp:
            assert resp.status == 200
        status, _, _ = await get(session, ex.rest_url + "/ticker?markets=KRW-ETH")
        assert status == 404
        ex.clock.advance(60_000)
        assert await client.pending() == [], "a delisted market's streams stop"
        async with session.get(ex.admin_url + "/markets") as resp:
            assert await resp.json() == ["KRW-BTC", "KRW-NEWCOIN"]
        async with session.delete(ex.admin_url + "/markets/KRW-ETH") as resp:
            assert resp.status == 404
        for bad in ({"market": "btc"}, {}):
            async with session.post(ex.admin_url + "/markets", json=bad) as resp:
                assert resp.status == 400


@pytest.mark.parametrize("mix", ["trades", "mixed"])
async def test_firehose_sends_unique_valid_frames_and_counts_them(
    session: aiohttp.ClientSession, mix: str
) -> None:
    config = ExchangeConfig(firehose=FirehoseConfig(mix=mix, frames=3000, chunk_frames=256))  # type: ignore[arg-type]
    async with Exchange(
        seed=2, markets=["KRW-BTC", "KRW-ETH"], clock=ManualClock(START_MS), config=config
    ) as ex:
        async with session.ws_connect(ex.ws_url) as ws:
            await ws.send_str(
                json.dumps(
                    [
                        {"ticket": "f"},
                        {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"]},
                        {"type": "ticker", "codes": ["KRW-BTC"]},
                        {"type": "orderbook", "codes": ["KRW-ETH"]},
                    ]
                )
            )
            frames = [json.loads((await ws.receive(timeout=10)).data) for _ in range(3000)]
        kinds = {
            k: sum(1 for f in frames if f["type"] == k) for k in ("trade", "ticker", "orderbook")
        }
        if mix == "trades":
            assert kinds == {"trade": 3000, "ticker": 0, "orderbook": 0}
        else:
            assert kinds == {"trade": 1500, "ticker": 750, "orderbook": 750}
            assert all(len(f["orderbook_units"]) == 30 for f in frames if f["type"] == "orderbook")
        keys = {(f["code"], f["sequential_id"]) for f in frames if f["type"] == "trade"}
        assert len(keys) == kinds["trade"]
        assert all(
            f["sequential_id"] // 10_000 == f["trade_timestamp"]
            for f in frames
            if f["type"] == "trade"
        )
        async with session.get(ex.admin_url + "/stats") as resp:
            stats = await resp.json()
        assert stats["firehose"]["frames_sent"] == kinds
        assert sum(stats["firehose"]["trades_by_code"].values()) == kinds["trade"]
        assert ex.frames_sent() == kinds


async def test_firehose_mix_holds_across_one_connection_per_kind(
    session: aiohttp.ClientSession,
) -> None:
    config = ExchangeConfig(firehose=FirehoseConfig(mix="mixed", frames=4000, chunk_frames=300))
    codes = ["KRW-BTC", "KRW-ETH"]
    async with Exchange(seed=2, markets=codes, clock=ManualClock(START_MS), config=config) as ex:
        sockets = {}
        for kind in ("trade", "ticker", "orderbook"):
            ws = await session.ws_connect(ex.ws_url)
            await ws.send_str(json.dumps([{"ticket": kind}, {"type": kind, "codes": codes}]))
            sockets[kind] = ws
        expected = {"trade": 2000, "ticker": 1000, "orderbook": 1000}
        got = {}
        for kind, ws in sockets.items():
            frames = [decode((await ws.receive(timeout=10)).data) for _ in range(expected[kind])]
            assert {f["type"] for f in frames} == {kind}
            assert {f["code"] for f in frames} == set(codes)
            got[kind] = len(frames)
        assert got == expected, "half trades, a quarter tickers, a quarter orderbooks in all"
        async with session.get(ex.admin_url + "/connections") as resp:
            infos = await resp.json()
        by_kind = {info["subscriptions"][0][0]: info for info in infos}
        for kind, count in expected.items():
            assert by_kind[kind]["frames_sent"][kind] == count
            assert by_kind[kind]["firehose_planned"] == {kind: count}
        async with session.get(ex.admin_url + "/stats") as resp:
            stats = (await resp.json())["firehose"]
        assert stats["frames_sent"] == expected
        assert stats["budget_per_connection"] == expected
        for ws in sockets.values():
            await ws.close()


async def test_paced_firehose_keeps_its_rate_and_stamps_frames_now(
    session: aiohttp.ClientSession,
) -> None:
    rate, frames = 2000.0, 800
    config = ExchangeConfig(firehose=FirehoseConfig(mix="mixed", frames=frames, rate=rate))
    clock = ScaledClock(1.0, start_ms=START_MS)
    async with Exchange(seed=2, markets=["KRW-BTC"], clock=clock, config=config) as ex:
        async with session.ws_connect(ex.ws_url) as ws:
            kinds = [{"type": k, "codes": ["KRW-BTC"]} for k in ("trade", "ticker", "orderbook")]
            await ws.send_str(json.dumps([{"ticket": "paced"}, *kinds]))
            arrivals = []
            received = []
            for _ in range(frames):
                received.append(decode((await ws.receive(timeout=10)).data))
                arrivals.append((asyncio.get_running_loop().time(), clock.now_ms()))
        elapsed_s = arrivals[-1][0] - arrivals[0][0]
        # Each channel's frame k is due k / (its share of the rate) after its first: the last
        # of the 800 at 399 ms. Never early (but for the first frame's own delivery time),
        # and not far behind.
        assert (frames - 2) / rate - 0.005 <= elapsed_s < (frames / rate) * 4 + 1.0
        counts = {k: sum(1 for f in received if f["type"] == k) for k in ("trade", "ticker")}
        assert counts == {"trade": 400, "ticker": 200}
        for frame, (_, now_ms) in zip(received, arrivals, strict=True):
            assert now_ms - 1000 <= frame["timestamp"] <= now_ms + 5, "stamped when made"
        trades = [(f["code"], f["sequential_id"]) for f in received if f["type"] == "trade"]
        assert len(set(trades)) == len(trades)


def test_firehose_config_is_checked() -> None:
    with pytest.raises(ValueError, match="rate"):
        FirehoseConfig(rate=0)
    with pytest.raises(ValueError, match="mix"):
        FirehoseConfig(mix="books")  # type: ignore[arg-type]
    assert FirehoseConfig(mix="mixed", frames=10).budget("orderbook") == 3
    assert FirehoseConfig(mix="trades", frames=10).budget("ticker") == 0


async def test_clocks() -> None:
    manual = ManualClock(1000)
    waiter = asyncio.ensure_future(manual.sleep_until(1500))
    await asyncio.sleep(0)
    manual.advance(400)
    assert not waiter.done()
    manual.advance(100)
    await asyncio.wait_for(waiter, 5)
    await manual.sleep_until(0)
    with pytest.raises(ValueError):
        manual.advance(-1)
    scaled = ScaledClock(1000.0, start_ms=START_MS)
    await scaled.sleep_until(START_MS + 200)
    assert scaled.now_ms() >= START_MS + 200
    with pytest.raises(ValueError):
        ScaledClock(0)
    real = RealClock()
    now = real.now_ms()
    await real.sleep_until(now + 5)
    assert real.now_ms() >= now + 5


async def test_lifecycle_and_a_scaled_clock(session: aiohttp.ClientSession) -> None:
    ex = Exchange(seed=2, markets=["KRW-BTC"], clock=ScaledClock(600.0, START_MS))
    async with ex:
        with pytest.raises(RuntimeError):
            await ex.start()
        client = await connect(ex, session)
        await subscribe(
            client.ws, {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True}
        )
        frame = await client.recv(timeout_s=30)
        assert frame["type"] == "trade" and frame["stream_type"] == "REALTIME"
    await ex.close()
    with pytest.raises(ValueError):
        ExchangeConfig(orderbook_depth=31)
    with pytest.raises(ValueError):
        Exchange(markets=["bad code"])


async def test_slow_consumer_is_closed(session: aiohttp.ClientSession) -> None:
    config = ExchangeConfig(ws_queue_frames=16)
    async with Exchange(
        seed=2, markets=["KRW-BTC"], clock=ManualClock(START_MS), config=config
    ) as ex:
        client = await connect(ex, session)
        await subscribe(client.ws, {"type": "trade", "codes": ["KRW-BTC"]})
        await client.recv()
        ex.clock.advance(3_600_000)
        await ex.settle()
        (info,) = ex.connections()
        assert info["closed"] and "slow consumer" in info["close_reason"]
        msg = await client.ws.receive(timeout=10)
        while msg.type == aiohttp.WSMsgType.BINARY:
            msg = await client.ws.receive(timeout=10)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ex.stats["ws_slow_closed"] == 1


async def test_scaled_clock_streams_every_trade_in_order(session: aiohttp.ClientSession) -> None:
    markets = ["KRW-BTC", "KRW-XRP", "KRW-ETH"]
    clock = ScaledClock(120.0, START_MS)
    async with Exchange(seed=4, markets=markets, clock=clock) as ex:
        client = await connect(ex, session)
        await subscribe(client.ws, {"type": "trade", "codes": markets, "is_only_realtime": True})
        frames = [await client.recv(timeout_s=30) for _ in range(300)]
    lags = {m: ex.model(m).lag for m in markets}
    published = [(f["trade_timestamp"] + lags[f["code"]], f["sequential_id"]) for f in frames]
    assert published == sorted(published), "emitted in publication order across markets"
    first, last = published[0][0], published[-1][0]
    for market in markets:
        lag = lags[market]
        # Everything published between the first frame and the last must have arrived.
        truth = [t.sequential_id for t in ex.truth_trades(market, first - lag + 1, last - lag)]
        got = [f["sequential_id"] for f in frames if f["code"] == market]
        got = [s for s in got if first < s // 10_000 + lag < last]
        assert got == truth, market


def test_a_manual_clock_advanced_from_another_thread_wakes_its_loop() -> None:
    import threading

    clock = ManualClock(1000)
    woke = threading.Event()

    async def wait() -> None:
        await clock.sleep_until(2000)
        woke.set()

    thread = threading.Thread(target=asyncio.run, args=(wait(),))
    thread.start()
    for _ in range(1000):  # the waiter registers as soon as the thread's loop runs
        if clock._waiters:
            break
        thread.join(0.01)
    clock.advance(1000)
    thread.join(10)
    assert woke.is_set()
