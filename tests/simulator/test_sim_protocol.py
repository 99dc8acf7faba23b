"""The WebSocket and REST protocol details: errors, subscriptions, keep-alive, limits."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from sim_helpers import START_MS, connect, get, subscribe

from simulator import Exchange, ExchangeConfig, ManualClock

MARKETS = ["KRW-BTC", "KRW-ETH", "BTC-ETH"]


@pytest.fixture
async def ex() -> AsyncIterator[Exchange]:
    config = ExchangeConfig(ws_connect_limit_per_s=None, idle_timeout_s=120)
    async with Exchange(
        seed=7, markets=MARKETS, clock=ManualClock(START_MS), config=config
    ) as exchange:
        yield exchange


@pytest.mark.parametrize(
    ("request_text", "name"),
    [
        ("not json", "WRONG_FORMAT"),
        ('{"ticket":"x"}', "WRONG_FORMAT"),
        ("[1, 2]", "WRONG_FORMAT"),
        ('[{"type":"trade","codes":["KRW-BTC"]}]', "NO_TICKET"),
        ('[{"ticket":"x"}]', "NO_TYPE"),
        ('[{"ticket":"x"},{"format":"SIMPLE"}]', "NO_TYPE"),
        ('[{"ticket":"x"},{"type":"trade"}]', "NO_CODES"),
        ('[{"ticket":"x"},{"type":"trade","codes":[]}]', "NO_CODES"),
        ('[{"ticket":"x"},{"type":"trades","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
        ('[{"ticket":"x"},{"type":"candle.7m","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
        ('[{"ticket":"x"},{"type":"trade","codes":"KRW-BTC"}]', "INVALID_PARAM"),
        (
            '[{"ticket":"x"},{"type":"trade","codes":["KRW-BTC"],"is_only_snapshot":"yes"}]',
            "INVALID_PARAM",
        ),
        ('[{"ticket":"x"},{"type":"trade","codes":["KRW-BTC"]},{"format":"XML"}]', "INVALID_PARAM"),
        ('[{"ticket":"x"},{"method":"UNSUBSCRIBE"}]', "INVALID_PARAM"),
        ('[{"ticket":""},{"type":"trade","codes":["KRW-BTC"]}]', "INVALID_PARAM"),
        (
            '[{"ticket":"x"},{"type":"orderbook","codes":["KRW-BTC"],"level":"abc"}]',
            "INVALID_PARAM",
        ),
    ],
)
async def test_request_errors_then_the_socket_still_works(
    ex: Exchange, session: aiohttp.ClientSession, request_text: str, name: str
) -> None:
    client = await connect(ex, session)
    await client.ws.send_str(request_text)
    error = await client.recv()
    assert error["error"]["name"] == name and error["error"]["message"]
    await subscribe(client.ws, {"type": "ticker", "codes": ["KRW-BTC"]})
    assert (await client.recv())["type"] == "ticker"


async def test_subscriptions_replace_snapshot_flags_and_unknown_codes(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    client = await connect(ex, session)
    await subscribe(client.ws, {"type": "trade", "codes": ["KRW-BTC", "KRW-NOPE", "krw-eth"]})
    first = await client.recv()
    assert (first["code"], first["stream_type"]) == ("KRW-BTC", "SNAPSHOT")
    assert await client.pending() == [], "unknown codes are silently ignored"
    await subscribe(client.ws, {"type": "ticker", "codes": ["KRW-ETH"], "isOnlySnapshot": True})
    snap = await client.recv()
    assert (snap["type"], snap["stream_type"]) == ("ticker", "SNAPSHOT")
    ex.clock.advance(60_000)
    assert await client.pending() == [], (
        "a new request replaced the trade stream; only-snapshot sends no more"
    )
    await subscribe(client.ws, {"type": "trade", "codes": ["KRW-ETH"], "is_only_realtime": True})
    await client.ws.send_str('[{"ticket":"sync"},{"method":"LIST_SUBSCRIPTIONS"}]')
    assert (await client.recv())["result"] == [{"type": "trade", "codes": ["KRW-ETH"]}]
    ex.clock.advance(100_000)
    frames = await client.pending()
    assert frames and all(f["stream_type"] == "REALTIME" and f["code"] == "KRW-ETH" for f in frames)


async def test_ping_text_and_ping_frames(ex: Exchange, session: aiohttp.ClientSession) -> None:
    client = await connect(ex, session, autoping=False)
    await client.ws.send_str("PING")
    assert await client.recv() == {"status": "UP"}
    await client.ws.ping(b"hello")
    msg = await client.ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.PONG and msg.data == b"hello"


async def test_idle_timeout_on_the_exchange_clock(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    quiet = await connect(ex, session)
    talker = await connect(ex, session)
    ex.clock.advance(100_000)
    await talker.ws.send_str("PING")
    assert await talker.recv() == {"status": "UP"}
    ex.clock.advance(30_000)
    await ex.settle()
    msg = await quiet.ws.receive(timeout=10)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    await talker.ws.send_str("PING")
    assert await talker.recv() == {"status": "UP"}, "activity keeps a socket open"
    assert ex.stats["ws_idle_closed"] == 1


async def test_candle_pushes_at_most_once_a_second(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    client = await connect(ex, session)
    await subscribe(
        client.ws,
        {"type": "candle.1s", "codes": ["KRW-BTC"]},
        {"type": "candle.1m", "codes": ["KRW-BTC"]},
        {"type": "trade", "codes": ["KRW-BTC"], "is_only_realtime": True},
    )
    await client.recv()
    await client.recv()
    ex.clock.advance(300_000)
    frames = await client.pending()
    trades = [f for f in frames if f["type"] == "trade"]
    minute = [f for f in frames if f["type"] == "candle.1m"]
    assert trades and minute
    seen: dict[str, list[int]] = {}
    for f in frames:
        if f["type"].startswith("candle"):
            seen.setdefault(f["type"], []).append(f["timestamp"])
    pushed_seconds = {t["timestamp"] // 1000 for t in trades}
    assert len(minute) <= len(pushed_seconds) + 5
    for f in minute:
        in_candle = [
            t
            for t in trades
            if t["trade_timestamp"] // 60_000 * 60_000 == _ms(f["candle_date_time_utc"])
            and t["trade_timestamp"] <= f["timestamp"]
        ]
        assert f["candle_acc_trade_volume"] >= sum(t["trade_volume"] for t in in_candle)


def _ms(iso: str) -> int:
    from datetime import UTC, datetime

    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


async def test_message_rate_limit_then_teapot(session: aiohttp.ClientSession) -> None:
    # The per-minute window makes the test independent of how fast a loaded machine runs it.
    config = ExchangeConfig(
        ws_message_limit_per_s=None, ws_message_limit_per_min=2, ws_violations_before_close=3
    )
    async with Exchange(
        seed=1, markets=["KRW-BTC"], clock=ManualClock(START_MS), config=config
    ) as ex:
        client = await connect(ex, session)
        request = json.dumps(
            [{"ticket": "x"}, {"type": "ticker", "codes": ["KRW-BTC"], "is_only_snapshot": True}]
        )
        names = []
        for _ in range(5):
            await client.ws.send_str(request)
            frame = await client.recv()
            names.append(frame["error"]["name"] if "error" in frame else frame["type"])
        assert names == [
            "ticker",
            "ticker",
            "Too Many Requests",
            "Too Many Requests",
            "I'm a teapot",
        ]
        msg = await client.ws.receive(timeout=10)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_connect_limit(session: aiohttp.ClientSession) -> None:
    config = ExchangeConfig(ws_connect_limit_per_s=2)
    async with Exchange(
        seed=1, markets=["KRW-BTC"], clock=ManualClock(START_MS), config=config
    ) as ex:
        opened = [await session.ws_connect(ex.ws_url) for _ in range(2)]
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(ex.ws_url)
        assert info.value.status == 429
        for ws in opened:
            await ws.close()
        assert ex.stats["ws_rate_limited"] == 1


async def test_rest_rate_limit_429_then_418(session: aiohttp.ClientSession) -> None:
    config = ExchangeConfig(rest_limit_per_s=3, rest_429s_before_block=2, rest_block_s=30)
    async with Exchange(
        seed=1, markets=["KRW-BTC"], clock=ManualClock(START_MS), config=config
    ) as ex:
        statuses, remaining = [], []
        for _ in range(6):
            status, body, headers = await get(session, ex.rest_url + "/ticker?markets=KRW-BTC")
            statuses.append(status)
            remaining.append(headers["Remaining-Req"])
        assert statuses == [200, 200, 200, 429, 418, 418]
        assert remaining[:4] == [f"group=ticker; min=1800; sec={n}" for n in (2, 1, 0, 0)]
        status, body, _ = await get(session, ex.rest_url + "/candles/days?market=KRW-BTC")
        assert status == 418 and "Blocked" in body["error"]["message"], "a block covers every group"
        async with session.get(ex.admin_url + "/stats") as resp:
            stats = await resp.json()
        assert stats["rest_429"] == 1 and stats["rest_418"] == 3


async def test_groups_are_independent(session: aiohttp.ClientSession) -> None:
    config = ExchangeConfig(rest_limit_per_s=2)
    async with Exchange(
        seed=1, markets=["KRW-BTC"], clock=ManualClock(START_MS), config=config
    ) as ex:
        for path in (
            "/ticker?markets=KRW-BTC",
            "/ticker?markets=KRW-BTC",
            "/orderbook?markets=KRW-BTC",
            "/trades/ticks?market=KRW-BTC",
            "/candles/minutes/1?market=KRW-BTC",
            "/market/all",
        ):
            status, _, headers = await get(session, ex.rest_url + path)
            assert status == 200, path
        assert headers["Remaining-Req"] == "group=market; min=1800; sec=1"


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/trades/ticks", 400, "Missing request parameter error. Check the required parameters!"),
        ("/trades/ticks?market=KRW-BTC&count=0", 400, "Invalid parameter. Check the given value!"),
        (
            "/trades/ticks?market=KRW-BTC&count=x",
            400,
            "Type mismatch error. Check the parameters type!",
        ),
        (
            "/trades/ticks?market=KRW-BTC&to=25:00:00",
            400,
            "Invalid parameter. Check the given value!",
        ),
        ("/trades/ticks?market=KRW-BTC&to=noon", 400, "Invalid parameter. Check the given value!"),
        (
            "/trades/ticks?market=KRW-BTC&cursor=abc",
            400,
            "Type mismatch error. Check the parameters type!",
        ),
        ("/trades/ticks?market=KRW-XYZ", 404, "Code not found"),
        ("/candles/minutes/2?market=KRW-BTC", 400, "specified unit is not valid."),
        ("/candles/minutes/x?market=KRW-BTC", 400, "specified unit is not valid."),
        (
            "/candles/days?market=KRW-BTC&to=yesterday",
            400,
            "Invalid parameter. Check the given value!",
        ),
        ("/candles/days?market=KRW-BTC&count=-1", 400, "Invalid parameter. Check the given value!"),
        ("/candles/hours?market=KRW-BTC", 404, "Not found"),
        ("/orderbook?markets=KRW-BTC&count=0", 400, "Invalid parameter. Check the given value!"),
        (
            "/orderbook?markets=KRW-BTC&level=abc",
            400,
            "Type mismatch error. Check the parameters type!",
        ),
        ("/orderbook?markets=KRW-BTC&level=-5", 400, "Invalid parameter. Check the given value!"),
        ("/ticker/all", 400, "Missing request parameter error. Check the required parameters!"),
        ("/ticker/all?quote_currencies=k1", 400, "Invalid parameter. Check the given value!"),
        ("/market/all?is_details=maybe", 400, "Type mismatch error. Check the parameters type!"),
        ("/nothing/here", 404, "Not found"),
    ],
)
async def test_bad_rest_requests_get_upbit_errors(
    ex: Exchange, session: aiohttp.ClientSession, path: str, status: int, message: str
) -> None:
    got, body, headers = await get(session, ex.rest_url + path)
    assert (got, body) == (status, {"error": {"name": status, "message": message}})
    assert "Remaining-Req" in headers


async def test_rest_query_forms(ex: Exchange, session: aiohttp.ClientSession) -> None:
    async with session.post(ex.rest_url + "/ticker?markets=KRW-BTC") as resp:
        assert resp.status == 405
    _, ticks, _ = await get(
        session, ex.rest_url + "/trades/ticks?market=KRW-BTC&count=900&daysAgo=1&to=235959"
    )
    assert len(ticks) == 500
    _, utc, _ = await get(
        session, ex.rest_url + "/candles/minutes/60?market=KRW-BTC&count=2&to=2026-09-21T12:00:00Z"
    )
    _, kst, _ = await get(
        session,
        ex.rest_url + "/candles/minutes/60?market=KRW-BTC&count=2&to=2026-09-21T21:00:00%2B09:00",
    )
    _, spaced, _ = await get(
        session, ex.rest_url + "/candles/minutes/60?market=KRW-BTC&count=2&to=2026-09-21%2012:00:00"
    )
    assert utc == kst == spaced and utc[0]["candle_date_time_utc"] == "2026-09-21T11:00:00"
    _, all_krw, _ = await get(session, ex.rest_url + "/ticker/all?quote_currencies=KRW,BTC")
    assert [t["market"] for t in all_krw] == MARKETS
    _, old_seconds, _ = await get(
        session, ex.rest_url + "/candles/seconds?market=KRW-BTC&to=2026-01-01T00:00:00"
    )
    assert old_seconds == [], "seconds candles reach back three months only"


async def test_an_internal_error_is_an_upbit_500_and_the_server_keeps_serving(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    def broken(params: object, asof: int, skew: int) -> list[str]:
        raise RuntimeError("a bug")

    ex.rest._routes["ticker"] = ("ticker", broken)
    status, body, _ = await get(session, ex.rest_url + "/ticker?markets=KRW-BTC")
    assert (status, body) == (500, {"error": {"name": 500, "message": "Internal server error"}})
    status, _, _ = await get(session, ex.rest_url + "/orderbook?markets=KRW-BTC")
    assert status == 200


async def test_a_ping_on_a_closing_socket_is_counted_not_raised(
    ex: Exchange, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    client = await connect(ex, session, autoping=False)
    (conn,) = [c for c in ex._conns.values() if c.id == client.conn_id]
    assert await ex._pong(conn, b"alive")
    assert (await client.ws.receive(timeout=10)).type == aiohttp.WSMsgType.PONG
    conn.request.transport.close()  # type: ignore[union-attr]
    assert not await ex._pong(conn, b"too late")
    assert ex.stats["ws_pongs_unsent"] == 1
    # Clients that ping and vanish at once: whatever the race, nothing is logged as an error.
    for _ in range(5):
        raw = await session.ws_connect(ex.ws_url, autoping=False)
        await raw.ping(b"bye")
        raw._response.connection.transport.abort()  # type: ignore[union-attr]
    assert (await client.ws.receive(timeout=10)).type == aiohttp.WSMsgType.CLOSED
    async with asyncio.timeout(10):
        while any(not c["closed"] for c in ex.connections()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # no event marks a server-side close; poll it
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
