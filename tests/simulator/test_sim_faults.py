"""Each fault is seen by a client, logged exactly, and the exchange recovers afterwards."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sim_helpers import START_MS, Client, connect, decode, get, subscribe

from simulator import Exchange, ExchangeConfig, FaultError, ManualClock

MARKETS = ["KRW-BTC", "KRW-XRP"]


@pytest.fixture
async def ex() -> AsyncIterator[Exchange]:
    config = ExchangeConfig(rest_limit_per_s=None, ws_connect_limit_per_s=None)
    async with Exchange(
        seed=21, markets=MARKETS, clock=ManualClock(START_MS), config=config
    ) as exchange:
        yield exchange


async def trade_client(ex: Exchange, session: aiohttp.ClientSession, **kwargs: Any) -> Client:
    client = await connect(ex, session, **kwargs)
    await subscribe(client.ws, {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True})
    await client.ws.send_str('[{"ticket":"l"},{"method":"LIST_SUBSCRIPTIONS"}]')
    assert "method" in await client.recv()
    return client


def sids(frames: list[Any]) -> list[int]:
    return [f["sequential_id"] for f in frames if isinstance(f, dict) and f.get("type") == "trade"]


async def test_disconnect_closes_every_socket_once(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    a = await trade_client(ex, session)
    b = await trade_client(ex, session)
    fault = ex.faults.apply("disconnect")
    assert fault["start_ms"] == fault["end_ms"] == START_MS
    for client in (a, b):
        msg = await client.ws.receive(timeout=10)
        assert msg.type in (
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
            aiohttp.WSMsgType.CLOSE,
        )
    (logged,) = ex.faults.list()
    assert logged["effects"]["connections_closed"] == 2
    c = await trade_client(ex, session)
    ex.clock.advance(10_000)
    assert sids(await c.pending()) == [
        t.sequential_id for t in ex.truth_trades("KRW-BTC", START_MS)
    ]


async def test_stall_silences_old_sockets_and_serves_new_ones(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    old = await trade_client(ex, session, autoping=False)
    ex.faults.apply("stall", seconds=10)
    await old.ws.ping(b"during")
    fresh = await trade_client(ex, session)
    ex.clock.advance(9_000)
    assert await old.pending() == []
    during = sids(await fresh.pending())
    assert during
    ex.clock.advance(20_000)
    await old.ws.ping(b"after")
    pong = await old.ws.receive(timeout=10)
    assert pong.type == aiohttp.WSMsgType.PONG and pong.data == b"after", (
        "the stalled ping got no pong"
    )
    after = sids(await old.pending())
    lag = ex.model("KRW-BTC").lag
    fresh_after = sids(await fresh.pending())
    during += [s for s in fresh_after if s // 10_000 + lag < START_MS + 10_000]
    assert after and after == [s for s in fresh_after if s // 10_000 + lag >= START_MS + 10_000]
    effects = ex.faults.list()[0]["effects"]
    assert effects["connections_stalled"] == 1
    assert effects["frames_withheld"] == {"KRW-BTC": {"trade": len(during)}}
    assert effects["pongs_withheld"] == 1


async def test_refuse_ws_refuses_new_sockets_for_its_duration(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    ex.faults.apply("refuse_ws", seconds=5)
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await session.ws_connect(ex.ws_url)
    assert info.value.status == 503
    ex.clock.advance(5_000)
    client = await trade_client(ex, session)
    assert client.ws.closed is False
    assert ex.faults.list()[0]["effects"] == {"connections_refused": 1}


async def test_drop_ws_drops_exactly_the_logged_trades(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    client = await trade_client(ex, session)
    fault = ex.faults.apply("drop_ws", channel="trade", fraction=0.5, seconds=60)
    ex.clock.advance(90_000)
    got = sids(await client.pending())
    truth = [t.sequential_id for t in ex.truth_trades("KRW-BTC", START_MS)]
    (logged,) = ex.faults.list()
    dropped = [sid for market, sid in logged["effects"]["dropped_trades"]]
    assert dropped and set(got) | set(dropped) == set(truth) and not set(got) & set(dropped)
    assert all(sid // 10_000 + ex.model("KRW-BTC").lag < fault["end_ms"] for sid in dropped)
    assert logged["effects"]["messages_dropped"] == {"KRW-BTC": {"trade": len(dropped)}}
    async with session.get(ex.rest_url + "/trades/ticks?market=KRW-BTC&count=500") as resp:
        rest = {t["sequential_id"] for t in decode(await resp.read())}
    assert set(dropped) <= rest, "dropped trades still exist in REST"


async def test_delay_ws_holds_frames_back_in_order(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    client = await trade_client(ex, session)
    ex.faults.apply("delay_ws", ms=3_000, seconds=20)
    ex.clock.advance(20_000)
    early = sids(await client.pending())
    ex.clock.advance(3_000)
    late = sids(await client.pending())
    truth = [t.sequential_id for t in ex.truth_trades("KRW-BTC", START_MS)]
    lag = ex.model("KRW-BTC").lag
    window = [s for s in truth if s // 10_000 + lag < START_MS + 20_000]
    assert early + late == truth[: len(early + late)]
    assert early == [s for s in window if s // 10_000 + lag + 3_000 <= START_MS + 20_000]
    assert window == (early + late)[: len(window)]
    effects = ex.faults.list()[0]["effects"]
    assert effects["messages_delayed"] == {"KRW-BTC": {"trade": len(window)}}


async def test_malformed_ws_sends_broken_frames_then_data(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    client = await trade_client(ex, session)
    ex.faults.apply("malformed_ws", count=3)
    ex.clock.advance(10_000)
    await ex.settle()
    broken = 0
    for _ in range(client.sent() - client.received):
        msg = await client.ws.receive(timeout=10)
        client.received += 1
        try:
            json.loads(msg.data)
        except ValueError:
            broken += 1
    assert broken == 3
    assert ex.faults.list()[0]["effects"]["frames_malformed"] == 3


async def test_rest_error_and_recovery(ex: Exchange, session: aiohttp.ClientSession) -> None:
    ex.faults.apply("rest_error", status=503, seconds=5)
    status, body, headers = await get(session, ex.rest_url + "/ticker?markets=KRW-BTC")
    assert status == 503 and body["error"]["name"] == 503 and "Remaining-Req" in headers
    ex.clock.advance(5_000)
    status, _, _ = await get(session, ex.rest_url + "/ticker?markets=KRW-BTC")
    assert status == 200
    effects = ex.faults.list()[0]["effects"]
    assert effects["requests_failed"] == {"/v1/ticker": 1}
    assert effects["requests_failed_by_market"] == {"KRW-BTC": 1}


async def test_rest_stale_serves_a_frozen_snapshot(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    async with session.get(ex.rest_url + "/ticker?markets=KRW-BTC") as resp:
        before = await resp.read()
    ex.faults.apply("rest_stale", seconds=30)
    ex.clock.advance(20_000)
    assert ex.truth_trades("KRW-BTC", START_MS), "trades happened meanwhile"
    async with session.get(ex.rest_url + "/ticker?markets=KRW-BTC") as resp:
        assert await resp.read() == before
    ex.clock.advance(10_000)
    async with session.get(ex.rest_url + "/ticker?markets=KRW-BTC") as resp:
        assert await resp.read() != before
    assert ex.faults.list()[0]["effects"]["requests_stale"] == {"/v1/ticker": 1}


async def test_clock_skew_shifts_timestamps(ex: Exchange, session: aiohttp.ClientSession) -> None:
    client = await trade_client(ex, session)
    ex.faults.apply("clock_skew", ms=5_000, seconds=10)
    ex.clock.advance(9_999)
    skewed = [f for f in await client.pending()]
    truth = {t.sequential_id: t.trade_timestamp for t in ex.truth_trades("KRW-BTC", START_MS)}
    assert skewed and all(f["trade_timestamp"] == truth[f["sequential_id"]] + 5_000 for f in skewed)
    _, (rest,), _ = await get(session, ex.rest_url + "/trades/ticks?market=KRW-BTC")
    assert rest["timestamp"] == max(truth.values()) + 5_000
    ex.clock.advance(10_001)
    normal = await client.pending()
    assert normal and all(f["trade_timestamp"] == f["sequential_id"] // 10_000 for f in normal)
    effects = ex.faults.list()[0]["effects"]
    assert effects["messages_skewed"] == {"KRW-BTC": {"trade": len(skewed)}}
    assert effects["rest_responses_skewed"] == {"/v1/trades/ticks": 1}


async def test_admin_fault_endpoints(ex: Exchange, session: aiohttp.ClientSession) -> None:
    async with session.post(
        ex.admin_url + "/faults", json={"kind": "rest_error", "status": 500, "seconds": 2}
    ) as r:
        applied = await r.json()
        assert r.status == 200 and set(applied) == {"id", "kind", "start_ms", "end_ms"}
        assert applied["end_ms"] - applied["start_ms"] == 2000
    async with session.get(ex.admin_url + "/faults") as r:
        (listed,) = await r.json()
        assert listed["id"] == applied["id"] and listed["active"] is True
    for bad in (
        {"kind": "nope"},
        {"kind": "drop_ws", "channel": "trade"},
        {"kind": "stall", "seconds": -1},
        {"kind": "drop_ws", "channel": "x", "fraction": 0.1, "seconds": 1},
        {"seconds": 1},
    ):
        async with session.post(ex.admin_url + "/faults", json=bad) as r:
            assert r.status == 400 and "error" in await r.json()
    async with session.post(ex.admin_url + "/faults", data="not json") as r:
        assert r.status == 400
    async with session.delete(ex.admin_url + "/faults") as r:
        assert r.status == 200
    assert ex.faults.list() == []
    with pytest.raises(FaultError):
        ex.faults.apply("malformed_ws", count=0)
