"""Fidelity: every official payload has a simulator counterpart with the same keys, JSON types
and formats; SIMPLE messages use exactly the abbreviations of the reference's field tables."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sim_helpers import (
    FIXTURES,
    SMALL,
    START_MS,
    Client,
    connect,
    fixture,
    get,
    json_type,
    subscribe,
)

from simulator import Exchange, ManualClock

DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DATE_COMPACT = re.compile(r"^\d{8}$")
TIME_COLON = re.compile(r"^\d{2}:\d{2}:\d{2}$")
TIME_COMPACT = re.compile(r"^\d{6}$")
CANDLE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
CODE = re.compile(r"^[A-Z]+-[A-Z0-9]+$")
FORMATS = {
    "trade_date_utc": DATE,
    "trade_time_utc": TIME_COLON,
    "highest_52_week_date": DATE,
    "lowest_52_week_date": DATE,
    "first_day_of_period": DATE,
    "candle_date_time_utc": CANDLE_TIME,
    "candle_date_time_kst": CANDLE_TIME,
    "market": CODE,
    "code": CODE,
}
REST_TICKER_FORMATS = {
    "trade_date": DATE_COMPACT,
    "trade_time": TIME_COMPACT,
    "trade_date_kst": DATE_COMPACT,
    "trade_time_kst": TIME_COMPACT,
}
WS_TRADE_FORMATS = {"trade_date": DATE, "trade_time": TIME_COLON}

# DEFAULT -> SIMPLE, copied from the reference's field tables (upbit-api.md sections 5.5-5.9).
SIMPLE_TICKER = {
    "type": "ty",
    "code": "cd",
    "opening_price": "op",
    "high_price": "hp",
    "low_price": "lp",
    "trade_price": "tp",
    "prev_closing_price": "pcp",
    "change": "c",
    "change_price": "cp",
    "signed_change_price": "scp",
    "change_rate": "cr",
    "signed_change_rate": "scr",
    "trade_volume": "tv",
    "acc_trade_volume": "atv",
    "acc_trade_volume_24h": "atv24h",
    "acc_trade_price": "atp",
    "acc_trade_price_24h": "atp24h",
    "trade_date": "tdt",
    "trade_time": "ttm",
    "trade_timestamp": "ttms",
    "ask_bid": "ab",
    "acc_ask_volume": "aav",
    "acc_bid_volume": "abv",
    "highest_52_week_price": "h52wp",
    "highest_52_week_date": "h52wdt",
    "lowest_52_week_price": "l52wp",
    "lowest_52_week_date": "l52wdt",
    "market_state": "ms",
    "is_trading_suspended": "its",
    "delisting_date": "dd",
    "market_warning": "mw",
    "timestamp": "tms",
    "stream_type": "st",
}
SIMPLE_TRADE = {
    "type": "ty",
    "code": "cd",
    "trade_price": "tp",
    "trade_volume": "tv",
    "ask_bid": "ab",
    "prev_closing_price": "pcp",
    "change": "c",
    "change_price": "cp",
    "trade_date": "td",
    "trade_time": "ttm",
    "trade_timestamp": "ttms",
    "timestamp": "tms",
    "sequential_id": "sid",
    "best_ask_price": "bap",
    "best_ask_size": "bas",
    "best_bid_price": "bbp",
    "best_bid_size": "bbs",
    "stream_type": "st",
}
SIMPLE_ORDERBOOK = {
    "type": "ty",
    "code": "cd",
    "total_ask_size": "tas",
    "total_bid_size": "tbs",
    "orderbook_units": "obu",
    "timestamp": "tms",
    "level": "lv",
    "stream_type": "st",
}
SIMPLE_UNIT = {"ask_price": "ap", "bid_price": "bp", "ask_size": "as", "bid_size": "bs"}
SIMPLE_CANDLE = {
    "type": "ty",
    "code": "cd",
    "candle_date_time_utc": "cdttmu",
    "candle_date_time_kst": "cdttmk",
    "opening_price": "op",
    "high_price": "hp",
    "low_price": "lp",
    "trade_price": "tp",
    "candle_acc_trade_volume": "catv",
    "candle_acc_trade_price": "catp",
    "timestamp": "tms",
    "stream_type": "st",
}
SIMPLE_LIST_SUBS = {"method": "mthd", "result": "rslt", "ticket": "tckt"}
SIMPLE_LIST_ITEM = {"type": "ty", "codes": "cds", "level": "lv"}


def assert_same_shape(
    ours: Any, official: Any, formats: dict[str, re.Pattern[str]], path: str = ""
) -> None:
    """Same keys, same JSON types, same formats, recursively (lists: every element)."""
    assert json_type(ours) == json_type(official), (
        f"{path}: {json_type(ours)} vs {json_type(official)}"
    )
    if isinstance(official, dict):
        assert set(ours) == set(official), f"{path}: keys differ: {set(ours) ^ set(official)}"
        for key, value in official.items():
            if value is None:
                assert ours[key] is None, f"{path}.{key}"
                continue
            assert_same_shape(ours[key], value, formats, f"{path}.{key}")
            pattern = formats.get(key, FORMATS.get(key))
            if pattern is not None and isinstance(value, str):
                assert pattern.match(value), (
                    f"the official {key} {value!r} does not match the test's format"
                )
                assert pattern.match(ours[key]), f"{path}.{key}: {ours[key]!r}"
    elif isinstance(official, list) and official:
        assert ours, f"{path}: empty list"
        for i, item in enumerate(ours):
            assert_same_shape(item, official[0], formats, f"{path}[{i}]")


def simple_of(
    default: dict[str, Any], table: dict[str, str], nested: dict[str, dict[str, str]] | None = None
) -> dict[str, Any]:
    """Translate a DEFAULT message with the reference's table (and nested tables by key)."""
    out: dict[str, Any] = {}
    for key, value in default.items():
        if nested and key in nested and isinstance(value, list):
            value = [simple_of(v, nested[key]) if isinstance(v, dict) else v for v in value]
        out[table[key]] = value
    return out


@pytest.fixture
async def ex() -> AsyncIterator[Exchange]:
    async with Exchange(seed=3, markets=SMALL, clock=ManualClock(START_MS)) as exchange:
        yield exchange


@pytest.mark.parametrize(
    ("path", "sample", "formats"),
    [
        ("/ticker?markets=KRW-BTC,KRW-ETH", "rest_ticker.json", REST_TICKER_FORMATS),
        ("/ticker/all?quote_currencies=KRW", "rest_ticker.json", REST_TICKER_FORMATS),
        ("/trades/ticks?market=KRW-BTC&count=5", "rest_trades.json", {}),
        ("/orderbook?markets=KRW-BTC", "rest_orderbook.json", {}),
        ("/orderbook?markets=KRW-BTC&level=10000", "rest_orderbook.json", {}),
        (
            "/orderbook/instruments?markets=KRW-BTC,KRW-ETH,BTC-ETH",
            "rest_orderbook_instruments.json",
            {},
        ),
        ("/market/all?is_details=true", "rest_markets_details.json", {}),
        ("/candles/seconds?market=KRW-BTC&count=3", "rest_candles_seconds.json", {}),
        ("/candles/minutes/1?market=KRW-BTC&count=3", "rest_candles_minutes.json", {}),
        ("/candles/days?market=KRW-BTC&count=3", "rest_candles_days.json", {}),
        ("/candles/months?market=KRW-IMX&count=2", "rest_candles_months.json", {}),
    ],
)
async def test_rest_payload_matches_official(
    ex: Exchange,
    session: aiohttp.ClientSession,
    path: str,
    sample: str,
    formats: dict[str, re.Pattern[str]],
) -> None:
    status, body, headers = await get(session, ex.rest_url + path)
    assert status == 200
    assert isinstance(body, list) and body
    assert_same_shape(body, fixture(sample), formats)
    assert re.fullmatch(r"group=[a-z\-]+; min=\d+; sec=\d+", headers["Remaining-Req"])


async def test_market_all_without_details_has_only_names(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    for flag in ("", "?is_details=false", "?isDetails=false"):
        status, body, _ = await get(session, ex.rest_url + "/market/all" + flag)
        assert status == 200
        assert [m["market"] for m in body] == SMALL
        assert all(set(m) == {"market", "korean_name", "english_name"} for m in body)
    _, detailed, _ = await get(session, ex.rest_url + "/market/all?isDetails=true")
    assert all("market_event" in m for m in detailed)


async def test_weeks_and_years_candles_carry_first_day_of_period(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    for kind in ("weeks", "years"):
        status, body, _ = await get(
            session, ex.rest_url + f"/candles/{kind}?market=KRW-BTC&count=2"
        )
        assert status == 200
        month = fixture("rest_candles_months.json")
        assert_same_shape(body, month, {})
        assert body[0]["first_day_of_period"] == body[0]["candle_date_time_utc"][:10]


@pytest.mark.parametrize(
    ("name", "status", "path"),
    [
        ("rest_error_404_code_not_found.json", 404, "/ticker?markets=KRW-NOPE"),
        ("rest_error_400_missing_parameter.json", 400, "/ticker"),
        ("rest_error_400_invalid_parameter.json", 400, "/trades/ticks?market=KRW-BTC&days_ago=9"),
        ("rest_error_400_type_mismatch.json", 400, "/candles/days?market=KRW-BTC&count=abc"),
    ],
)
async def test_rest_errors_match_official(
    ex: Exchange, session: aiohttp.ClientSession, name: str, status: int, path: str
) -> None:
    got_status, body, headers = await get(session, ex.rest_url + path)
    assert got_status == status
    assert body == fixture(name)
    assert "Remaining-Req" in headers


async def _first_of_each(client: Client, kinds: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    while set(found) != kinds:
        frame = await client.recv()
        items = frame if isinstance(frame, list) else [frame]
        for item in items:
            kind = item.get("type", item.get("ty"))
            found.setdefault(kind, item)
    return found


WS_SAMPLES = {
    "trade": ("ws_trade.json", WS_TRADE_FORMATS, SIMPLE_TRADE, None),
    "ticker": ("ws_ticker.json", REST_TICKER_FORMATS, SIMPLE_TICKER, None),
    "orderbook": ("ws_orderbook.json", {}, SIMPLE_ORDERBOOK, {"orderbook_units": SIMPLE_UNIT}),
    "candle.1m": ("ws_candle.json", {}, SIMPLE_CANDLE, None),
    "candle.15m": ("ws_candle_15m.json", {}, SIMPLE_CANDLE, None),
}


@pytest.mark.parametrize("fmt", ["DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST"])
async def test_websocket_messages_match_official(
    ex: Exchange, session: aiohttp.ClientSession, fmt: str
) -> None:
    client = await connect(ex, session)
    objects: list[dict[str, Any]] = [{"format": fmt}]  # the format object first: any position works
    objects += [{"type": kind, "codes": ["KRW-BTC"]} for kind in WS_SAMPLES]
    await subscribe(client.ws, *objects)
    snapshots = await _first_of_each(client, set(WS_SAMPLES))
    ex.clock.advance(120_000)
    realtime = await client.pending()
    for kind, (sample, formats, table, nested) in WS_SAMPLES.items():
        official = fixture(sample)
        if fmt in ("SIMPLE", "SIMPLE_LIST"):
            official = simple_of(official, table, nested)
            formats = {table.get(k, k): v for k, v in formats.items()}
            formats |= {table[k]: v for k, v in FORMATS.items() if k in table}
        assert_same_shape(snapshots[kind], official, formats)
        st = "st" if "st" in official else "stream_type"
        assert snapshots[kind][st] == "SNAPSHOT"
        later = [
            item
            for f in realtime
            for item in (f if isinstance(f, list) else [f])
            if item.get("type", item.get("ty")) == kind
        ]
        assert later, f"no realtime {kind}"
        for item in later:
            assert_same_shape(item, official, formats)
            assert item[st] == "REALTIME"
    assert all(isinstance(f, list) == fmt.endswith("_LIST") for f in realtime)


async def test_status_list_subscriptions_and_errors_match_official(
    ex: Exchange, session: aiohttp.ClientSession
) -> None:
    client = await connect(ex, session)
    await client.ws.send_str("PING")
    assert await client.recv() == fixture("ws_status_up.json")
    await subscribe(
        client.ws,
        {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"], "is_only_realtime": True},
        {"type": "orderbook", "codes": ["KRW-BTC", "KRW-ETH"], "isOnlyRealtime": True},
    )
    await client.ws.send_str('[{"ticket":"unique uuid"},{"method":"LIST_SUBSCRIPTIONS"}]')
    listing = await client.recv()
    assert listing == fixture("ws_list_subscriptions_response.json")
    await client.ws.send_str('[{"ticket":"t"},{"method":"LIST_SUBSCRIPTIONS"},{"format":"SIMPLE"}]')
    simple = await client.recv()
    official = fixture("ws_list_subscriptions_response.json")
    expected = simple_of(official, SIMPLE_LIST_SUBS)
    expected["rslt"] = [simple_of(r, SIMPLE_LIST_ITEM) for r in official["result"]]
    expected["tckt"] = "t"
    assert simple == expected
    await client.ws.send_str("[{}]")
    error = await client.recv()
    assert_same_shape(error, fixture("ws_error_invalid_auth.json"), {})
    assert error["error"]["name"] == "NO_TICKET"


async def test_docs_request_example_is_served(ex: Exchange, session: aiohttp.ClientSession) -> None:
    client = await connect(ex, session)
    request = (FIXTURES / "ws_request_docs_trade_orderbook_simple.json").read_text()
    await client.ws.send_str(request)
    frames = [await client.recv(), await client.recv()]
    # BTC-BCH is not listed on this exchange: silently ignored, like Upbit's unknown codes.
    assert sorted((f["ty"], f["cd"], f["st"]) for f in frames) == [
        ("orderbook", "KRW-BTC", "SNAPSHOT"),
        ("trade", "KRW-BTC", "SNAPSHOT"),
    ]
    assert await client.pending() == []
