"""The pure protocol tier: official payloads, SIMPLE and LIST variants built from the
reference's field tables, exact decimals, malformed input. No event loop, no sockets."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backbone import DataUnifier
from backbone.errors import InvalidArgumentError, ProtocolError, UpbitAPIError
from backbone.models import CandleData, OrderbookData, TickerData, TradeData
from backbone.upbit import protocol
from backbone.upbit.protocol import _wire
from tests.backbone.conftest import Num, dumps_wire, fixture_bytes, loads_wire, wire_text

# SIMPLE abbreviations, transcribed from the reference's field tables (not from our code, so
# a wrong abbreviation in backbone/upbit/protocol cannot hide here).
SIMPLE = {
    "ticker": {
        "type": "ty", "code": "cd", "opening_price": "op", "high_price": "hp",
        "low_price": "lp", "trade_price": "tp", "prev_closing_price": "pcp", "change": "c",
        "change_price": "cp", "signed_change_price": "scp", "change_rate": "cr",
        "signed_change_rate": "scr", "trade_volume": "tv", "acc_trade_volume": "atv",
        "acc_trade_volume_24h": "atv24h", "acc_trade_price": "atp",
        "acc_trade_price_24h": "atp24h", "trade_date": "tdt", "trade_time": "ttm",
        "trade_timestamp": "ttms", "ask_bid": "ab", "acc_ask_volume": "aav",
        "acc_bid_volume": "abv", "highest_52_week_price": "h52wp",
        "highest_52_week_date": "h52wdt", "lowest_52_week_price": "l52wp",
        "lowest_52_week_date": "l52wdt", "market_state": "ms", "is_trading_suspended": "its",
        "delisting_date": "dd", "market_warning": "mw", "timestamp": "tms",
        "stream_type": "st",
    },
    "trade": {
        "type": "ty", "code": "cd", "trade_price": "tp", "trade_volume": "tv", "ask_bid": "ab",
        "prev_closing_price": "pcp", "change": "c", "change_price": "cp", "trade_date": "td",
        "trade_time": "ttm", "trade_timestamp": "ttms", "timestamp": "tms",
        "sequential_id": "sid", "best_ask_price": "bap", "best_ask_size": "bas",
        "best_bid_price": "bbp", "best_bid_size": "bbs", "stream_type": "st",
    },
    "orderbook": {
        "type": "ty", "code": "cd", "total_ask_size": "tas", "total_bid_size": "tbs",
        "orderbook_units": "obu", "ask_price": "ap", "bid_price": "bp", "ask_size": "as",
        "bid_size": "bs", "timestamp": "tms", "level": "lv", "stream_type": "st",
    },
    "candle": {
        "type": "ty", "code": "cd", "candle_date_time_utc": "cdttmu",
        "candle_date_time_kst": "cdttmk", "opening_price": "op", "high_price": "hp",
        "low_price": "lp", "trade_price": "tp", "candle_acc_trade_volume": "catv",
        "candle_acc_trade_price": "catp", "timestamp": "tms", "stream_type": "st",
    },
}  # fmt: skip

# Wire key -> record field, for the numbers each record keeps (exactness checks).
TICKER_NUMBERS = {
    "trade_price": "current_price", "acc_trade_volume_24h": "volume_24h",
    "high_price": "high_24h", "low_price": "low_24h", "prev_closing_price": "prev_closing_price",
    "opening_price": "opening_price", "trade_volume": "trade_volume",
    "acc_trade_volume": "acc_trade_volume", "acc_trade_price": "acc_trade_price",
    "acc_trade_price_24h": "acc_trade_price_24h", "signed_change_price": "change_amount",
    "highest_52_week_price": "highest_52_week_price",
    "lowest_52_week_price": "lowest_52_week_price",
}  # fmt: skip
TRADE_NUMBERS = {
    "trade_price": "trade_price", "trade_volume": "trade_volume",
    "prev_closing_price": "prev_closing_price", "best_ask_price": "best_ask_price",
    "best_ask_size": "best_ask_size", "best_bid_price": "best_bid_price",
    "best_bid_size": "best_bid_size",
}  # fmt: skip
CANDLE_NUMBERS = {
    "opening_price": "open_price", "high_price": "high_price", "low_price": "low_price",
    "trade_price": "close_price", "candle_acc_trade_volume": "volume",
    "candle_acc_trade_price": "quote_volume",
}  # fmt: skip

WS_FIXTURES = {
    "ws_ticker.json": "ticker",
    "ws_trade.json": "trade",
    "ws_orderbook.json": "orderbook",
    "ws_candle.json": "candle",
    "ws_candle_15m.json": "candle",
}


def ms(value: str) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def to_simple(obj: Any, table: dict[str, str]) -> Any:
    if isinstance(obj, dict):
        return {table[k]: to_simple(v, table) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_simple(v, table) for v in obj]
    return obj


def assert_exact(value: Decimal | None, text: str) -> None:
    assert isinstance(value, Decimal)
    assert value == Decimal(text)
    assert str(value) == text  # digits and trailing zeros exactly as sent


def test_ws_ticker_official_payload() -> None:
    wire = wire_text("ws_ticker.json")
    rec = DataUnifier().unify_ws(fixture_bytes("ws_ticker.json"), received_ns=7)
    assert isinstance(rec, TickerData)
    for key, field in TICKER_NUMBERS.items():
        assert_exact(getattr(rec, field), wire[key])
    assert rec.change_rate == Decimal(wire["signed_change_rate"]) * 100
    assert rec.symbol == wire["code"] and rec.change == wire["change"]
    assert rec.timestamp == ms(wire["timestamp"])
    assert rec.trade_timestamp == ms(wire["trade_timestamp"])
    assert rec.highest_52_week_date == date.fromisoformat(wire["highest_52_week_date"])
    assert rec.lowest_52_week_date == date.fromisoformat(wire["lowest_52_week_date"])
    assert_exact(rec.acc_ask_volume, wire["acc_ask_volume"])
    assert_exact(rec.acc_bid_volume, wire["acc_bid_volume"])
    assert (rec.ask_bid, rec.market_state, rec.stream_type) == ("ASK", "ACTIVE", "REALTIME")
    assert rec.delisting_date is None
    assert (rec.source, rec.received_ns) == ("websocket", 7)


@pytest.mark.parametrize(
    "line", [*fixture_bytes("ws_trade_2024.jsonl").splitlines(), fixture_bytes("ws_trade.json")]
)
def test_ws_trade_official_payloads(line: bytes) -> None:
    wire = loads_wire(line)
    rec = DataUnifier().unify_ws(line, received_ns=1)
    assert isinstance(rec, TradeData)
    for key, field in TRADE_NUMBERS.items():
        assert_exact(getattr(rec, field), wire[key])
    sign = -1 if wire["change"] == "FALL" else 1
    assert rec.change_price == sign * Decimal(wire["change_price"])
    assert rec.sequential_id == int(wire["sequential_id"])
    assert rec.trade_side == wire["ask_bid"] and rec.change == wire["change"]
    assert rec.trade_timestamp == ms(wire["trade_timestamp"])
    assert rec.message_timestamp == ms(wire["timestamp"])
    assert rec.stream_type == wire["stream_type"]


def test_ws_trade_fall_is_signed_negative() -> None:
    line = next(x for x in fixture_bytes("ws_trade_2024.jsonl").splitlines() if b"FALL" in x)
    rec = DataUnifier().unify_ws(line)
    assert isinstance(rec, TradeData) and rec.change_price < 0


def test_ws_orderbook_official_payload() -> None:
    wire = wire_text("ws_orderbook.json")
    rec = DataUnifier().unify_ws(fixture_bytes("ws_orderbook.json"), received_ns=1)
    assert isinstance(rec, OrderbookData)
    units = wire["orderbook_units"]
    assert len(rec.ask_prices) == len(units) == len(rec.bid_volumes)
    for i, unit in enumerate(units):
        assert_exact(rec.ask_prices[i], unit["ask_price"])
        assert_exact(rec.bid_prices[i], unit["bid_price"])
        assert_exact(rec.ask_volumes[i], unit["ask_size"])
        assert_exact(rec.bid_volumes[i], unit["bid_size"])
    assert list(rec.ask_prices) == sorted(rec.ask_prices)
    assert list(rec.bid_prices) == sorted(rec.bid_prices, reverse=True)
    assert_exact(rec.total_ask_size, wire["total_ask_size"])
    assert rec.timestamp == ms(wire["timestamp"])


@pytest.mark.parametrize("name", ["ws_candle.json", "ws_candle_15m.json"])
def test_ws_candle_official_payloads(name: str) -> None:
    wire = wire_text(name)
    rec = DataUnifier().unify_ws(fixture_bytes(name), received_ns=1)
    assert isinstance(rec, CandleData)
    assert rec.timeframe == wire["type"].removeprefix("candle.")
    assert rec.open_time == datetime.fromisoformat(wire["candle_date_time_utc"]).replace(tzinfo=UTC)
    for key, field in CANDLE_NUMBERS.items():
        assert_exact(getattr(rec, field), wire[key])
    assert rec.timestamp == ms(wire["timestamp"])


@pytest.mark.parametrize("name", sorted(WS_FIXTURES))
def test_simple_format_equals_default(name: str) -> None:
    table = SIMPLE[WS_FIXTURES[name]]
    simple = dumps_wire(to_simple(wire_text(name), table))
    assert b'"ty"' in simple
    unifier = DataUnifier()
    assert unifier.unify_ws(simple, received_ns=5) == unifier.unify_ws(
        fixture_bytes(name), received_ns=5
    )


@pytest.mark.parametrize("simple", [False, True])
def test_list_formats_decode_every_entry(simple: bool) -> None:
    entries = [wire_text(name) for name in sorted(WS_FIXTURES)]
    if simple:
        entries = [
            to_simple(e, SIMPLE[WS_FIXTURES[n]])
            for e, n in zip(entries, sorted(WS_FIXTURES), strict=True)
        ]
    raw = dumps_wire(entries)
    unifier = DataUnifier()
    records = unifier.unify_ws(raw, received_ns=3)
    assert records == [
        unifier.unify_ws(fixture_bytes(n), received_ns=3) for n in sorted(WS_FIXTURES)
    ]


def test_text_frames_decode_like_binary() -> None:
    unifier = DataUnifier()
    raw = fixture_bytes("ws_trade.json")
    assert unifier.unify_ws(raw.decode(), received_ns=1) == unifier.unify_ws(raw, received_ns=1)


def test_control_messages_carry_no_record() -> None:
    unifier = DataUnifier()
    assert unifier.unify_ws(fixture_bytes("ws_status_up.json")) is None
    assert unifier.unify_ws(fixture_bytes("ws_list_subscriptions_response.json")) is None
    answer = protocol.decode_control(fixture_bytes("ws_list_subscriptions_response.json"))
    assert isinstance(answer, protocol.SubscriptionList)
    assert [s.type for s in answer.subscriptions] == ["ticker", "orderbook"]
    simple = dumps_wire(
        to_simple(
            wire_text("ws_list_subscriptions_response.json"),
            {
                "method": "mthd",
                "result": "rslt",
                "ticket": "tckt",
                "type": "ty",
                "codes": "cds",
                "level": "lv",
            },
        )
    )
    assert protocol.decode_control(simple) == answer


def test_ws_error_frame_raises_api_error() -> None:
    with pytest.raises(UpbitAPIError) as info:
        DataUnifier().unify_ws(fixture_bytes("ws_error_invalid_auth.json"))
    assert info.value.name == "INVALID_AUTH" and info.value.status is None
    assert not info.value.retryable


def test_rest_ticker_official_payload_and_exactness() -> None:
    wire = wire_text("rest_ticker.json")
    records = DataUnifier().unify_rest(
        "/v1/ticker", fixture_bytes("rest_ticker.json"), received_ns=9
    )
    assert [r.symbol for r in records] == [w["market"] for w in wire]
    for rec, item in zip(records, wire, strict=True):
        assert isinstance(rec, TickerData)
        for key, field in TICKER_NUMBERS.items():
            assert_exact(getattr(rec, field), item[key])
        assert rec.change_rate == Decimal(item["signed_change_rate"]).scaleb(2)
        assert rec.change_amount < 0 and rec.change == "FALL"
        assert (rec.ask_bid, rec.acc_ask_volume, rec.market_state, rec.stream_type) == (None,) * 4
        assert rec.source == "rest" and rec.received_ns == 9


def test_rest_trades_derive_change_from_sign() -> None:
    wire = wire_text("rest_trades.json")[0]
    (rec,) = DataUnifier().unify_rest(
        "/v1/trades/ticks?market=KRW-BTC", fixture_bytes("rest_trades.json")
    )
    assert isinstance(rec, TradeData)
    assert_exact(rec.change_price, wire["change_price"])
    assert rec.change == "RISE" and rec.message_timestamp is None and rec.best_ask_price is None
    assert rec.trade_timestamp == ms(wire["timestamp"])
    for sign, change in (("-", "FALL"), ("", "EVEN")):
        item = dict(
            wire, change_price=Num(sign + ("0" if change == "EVEN" else wire["change_price"]))
        )
        (other,) = DataUnifier().unify_rest("/v1/trades/ticks", dumps_wire([item]))
        assert isinstance(other, TradeData) and other.change == change


def test_rest_orderbook_and_candles() -> None:
    unifier = DataUnifier()
    wire = wire_text("rest_orderbook.json")[0]
    (book,) = unifier.unify_rest("/v1/orderbook", fixture_bytes("rest_orderbook.json"))
    assert isinstance(book, OrderbookData) and book.source == "rest" and book.stream_type is None
    assert [str(p) for p in book.ask_prices] == [u["ask_price"] for u in wire["orderbook_units"]]
    assert sum(book.ask_volumes) == Decimal(wire["total_ask_size"])
    for name, path, timeframe in (
        ("rest_candles_days.json", "/v1/candles/days", "1d"),
        ("rest_candles_minutes.json", "/v1/candles/minutes/1", "1m"),
        ("rest_candles_seconds.json", "/v1/candles/seconds", "1s"),
        ("rest_candles_months.json", "/v1/candles/months", "1mo"),
    ):
        item = wire_text(name)[0]
        (rec,) = unifier.unify_rest(path, fixture_bytes(name))
        assert isinstance(rec, CandleData) and rec.timeframe == timeframe
        for key, field in CANDLE_NUMBERS.items():
            assert_exact(getattr(rec, field), item[key])
        if "change_rate" in item:
            assert_exact(rec.change_rate, item["change_rate"])
            assert_exact(rec.change_price, item["change_price"])
        else:
            assert rec.change_rate is None


def test_rest_markets_and_instruments() -> None:
    markets = DataUnifier().unify_rest("/v1/market/all", fixture_bytes("rest_markets_details.json"))
    assert [(m.symbol, m.quote_currency, m.base_currency, m.warning) for m in markets] == [  # type: ignore[union-attr]
        ("KRW-BTC", "KRW", "BTC", False),
        ("KRW-ETH", "KRW", "ETH", True),
    ]
    legacy = [
        {
            "market": "BTC-XRP",
            "korean_name": "리플",
            "english_name": "Ripple",
            "market_warning": "CAUTION",
        }
    ]
    (m,) = protocol.parse_rest_markets(json.dumps(legacy))
    assert m.warning and m.caution == () and m.quote_currency == "BTC"
    with_caution = [
        {
            "market": "KRW-A",
            "korean_name": "a",
            "english_name": "a",
            "market_event": {"warning": False, "caution": {"PRICE_FLUCTUATIONS": True, "X": False}},
        }
    ]
    assert protocol.parse_rest_markets(with_caution)[0].caution == ("PRICE_FLUCTUATIONS",)
    inst = protocol.parse_rest_instruments(fixture_bytes("rest_orderbook_instruments.json"))
    assert inst[0].tick_size == Decimal("1000") and Decimal("10000") in inst[0].supported_levels


def test_rest_and_ws_records_agree_on_shared_fields() -> None:
    """A REST ticker/trade/orderbook built from the same state as a WS one unifies equal."""
    unifier = DataUnifier()
    ws_t = wire_text("ws_ticker.json")
    rest_t = {
        k: v
        for k, v in ws_t.items()
        if k
        not in {
            "type",
            "code",
            "ask_bid",
            "acc_ask_volume",
            "acc_bid_volume",
            "market_state",
            "delisting_date",
            "stream_type",
            "is_trading_suspended",
            "market_warning",
        }
    }
    rest_t = {"market": ws_t["code"], **rest_t}
    pairs = [
        (
            unifier.unify_ws(dumps_wire(ws_t), received_ns=1),
            unifier.unify_rest("/v1/ticker", dumps_wire([rest_t]), received_ns=2)[0],
        )
    ]
    ws_tr = wire_text("ws_trade.json")
    rest_tr = {
        "market": ws_tr["code"],
        "timestamp": ws_tr["trade_timestamp"],
        "trade_price": ws_tr["trade_price"],
        "trade_volume": ws_tr["trade_volume"],
        "prev_closing_price": ws_tr["prev_closing_price"],
        "change_price": ws_tr["change_price"],
        "ask_bid": ws_tr["ask_bid"],
        "sequential_id": ws_tr["sequential_id"],
    }
    pairs.append(
        (
            unifier.unify_ws(dumps_wire(ws_tr), received_ns=1),
            unifier.unify_rest("/v1/trades/ticks", dumps_wire([rest_tr]), received_ns=2)[0],
        )
    )
    ws_ob = wire_text("ws_orderbook.json")
    rest_ob = {
        "market": ws_ob["code"],
        **{k: v for k, v in ws_ob.items() if k not in {"type", "code", "stream_type"}},
    }
    pairs.append(
        (
            unifier.unify_ws(dumps_wire(ws_ob), received_ns=1),
            unifier.unify_rest("/v1/orderbook", dumps_wire([rest_ob]), received_ns=2)[0],
        )
    )
    for ws_rec, rest_rec in pairs:
        assert type(ws_rec) is type(rest_rec)
        shared = [
            f
            for f in ws_rec.__slots__
            if f not in {"source", "received_ns"}
            and getattr(ws_rec, f) is not None
            and getattr(rest_rec, f) is not None
        ]  # type: ignore[union-attr]
        assert len(shared) >= 8
        for f in shared:
            assert getattr(ws_rec, f) == getattr(rest_rec, f), f
        only_one = [
            f
            for f in ws_rec.__slots__
            if (getattr(ws_rec, f) is None) != (getattr(rest_rec, f) is None)
        ]  # type: ignore[union-attr]
        assert all(getattr(rest_rec, f) is None for f in only_one)


BAD_WS = [
    (b"not json", "malformed"),
    (b'{"type":"trade","code":"KRW-BTC"}', "missing required field"),
    (b'{"type":"teleport","code":"KRW-BTC"}', "malformed"),
    (b'{"hello":1}', "unknown kind"),
    (b"[1, 2]", "without typed entries"),
    (fixture_bytes("ws_trade.json").replace(b'"ASK"', b'"SELL"'), "ask_bid"),
    (fixture_bytes("ws_trade.json").replace(b'"RISE"', b'"UPWARD"'), "change"),
    (fixture_bytes("ws_trade.json").replace(b'"SNAPSHOT"', b'"LIVE"'), "stream_type"),
    (fixture_bytes("ws_trade.json").replace(b"0.00509799", b'"lots"'), "decimal"),
    (fixture_bytes("ws_ticker.json").replace(b'"2022-03-28"', b'"28/03/2022"'), "date"),
    (fixture_bytes("ws_ticker.json").replace(b'"ACTIVE"', b'"ZOMBIE"'), "market_state"),
    (fixture_bytes("ws_candle.json").replace(b'"2026-08-26T08:08:00"', b'"noon"'), "bad time"),
    (
        fixture_bytes("ws_candle.json").replace(
            b'"2026-08-26T08:08:00"', b'"2026-08-26T08:08:00+09:00"'
        ),
        "zone",
    ),
    (b'{"method":"LIST_SUBSCRIPTIONS","result":5}', "LIST_SUBSCRIPTIONS"),
]


@pytest.mark.parametrize(("raw", "needle"), BAD_WS)
def test_malformed_ws_raises_protocol_error_with_raw(raw: bytes, needle: str) -> None:
    with pytest.raises(ProtocolError, match=needle) as info:
        DataUnifier().unify_ws(raw, received_ns=1)
    assert info.value.raw == raw


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/ticker", b'{"error":1}'),
        ("/v1/trades/ticks", b"[{}]"),
        ("/v1/orderbook", b"[1]"),
        ("/v1/candles/days", b"oops"),
        ("/v1/market/all", b'[{"market":"BTCKRW","korean_name":"x","english_name":"x"}]'),
        (
            "/v1/market/all",
            b'[{"market":"KRW-X","korean_name":"x","english_name":"x","market_warning":"RED"}]',
        ),
    ],
)
def test_malformed_rest_raises_protocol_error(path: str, body: bytes) -> None:
    with pytest.raises(ProtocolError) as info:
        DataUnifier().unify_rest(path, body)
    assert info.value.raw == body


def test_instruments_with_bad_number_string() -> None:
    with pytest.raises(ProtocolError, match="bad decimal"):
        protocol.parse_rest_instruments(
            b'[{"market":"KRW-A","quote_currency":"KRW","tick_size":"one","supported_levels":[]}]'
        )


def test_unknown_rest_path_is_a_usage_error() -> None:
    with pytest.raises(InvalidArgumentError, match="no decoder"):
        DataUnifier().unify_rest("/v1/accounts", b"[]")


def test_already_decoded_rest_payloads_convert_exactly() -> None:
    import msgspec

    obj = msgspec.json.Decoder(float_hook=Decimal).decode(fixture_bytes("rest_ticker.json"))
    assert DataUnifier().unify_rest("/v1/ticker", obj, received_ns=1) == DataUnifier().unify_rest(
        "/v1/ticker", fixture_bytes("rest_ticker.json"), received_ns=1
    )


def test_received_ns_defaults_to_the_clock() -> None:
    unifier = DataUnifier(clock_ns=lambda: 424242)
    rec = unifier.unify_ws(fixture_bytes("ws_trade.json"))
    assert isinstance(rec, TradeData) and rec.received_ns == 424242
    assert (
        unifier.unify_rest("/v1/trades/ticks", fixture_bytes("rest_trades.json"))[0].received_ns
        == 424242
    )  # type: ignore[union-attr]


def test_error_bodies() -> None:
    err = protocol.error_from_body(
        404, fixture_bytes("rest_error_404_code_not_found.json"), path="/v1/ticker"
    )
    assert (err.status, err.name, err.message, err.retryable) == (
        404,
        "404",
        "Code not found",
        False,
    )
    assert "/v1/ticker" in str(err)
    for name in (
        "rest_error_400_invalid_parameter.json",
        "rest_error_400_missing_parameter.json",
        "rest_error_400_type_mismatch.json",
    ):
        assert (
            protocol.error_from_body(400, fixture_bytes(name)).message
            == wire_text(name)["error"]["message"]
        )
    plain = protocol.error_from_body(429, b"Too many API requests.")
    assert plain.message == "Too many API requests." and plain.status == 429
    assert protocol.error_from_body(503, "<html>down</html>").retryable


@pytest.mark.parametrize(
    ("header", "group", "sec"),
    [
        ("group=ticker; min=600; sec=9", "ticker", 9),
        ("group=crix-trades; min=600; sec=0", "crix-trades", 0),
        ("group=default; min=1800; sec=29", "default", 29),
        ("sec=3; group=candles", "candles", 3),
        ("group=origin;min=6;sec=0", "origin", 0),
    ],
)
def test_remaining_req(header: str, group: str, sec: int) -> None:
    quota = protocol.parse_remaining_req(header)
    assert (quota.group, quota.remaining_s) == (group, sec)


@pytest.mark.parametrize("header", ["", "group=ticker", "sec=4", "group=ticker; sec=many"])
def test_remaining_req_rejects_bad_headers(header: str) -> None:
    with pytest.raises(ProtocolError, match="Remaining-Req"):
        protocol.parse_remaining_req(header)


def test_subscribe_frame_matches_the_documented_request() -> None:
    documented = json.loads(fixture_bytes("ws_request_docs_trade_orderbook_simple.json"))
    frame = protocol.build_subscribe_frame(
        documented[0]["ticket"],
        [
            protocol.Subscription("trade", ("KRW-BTC", "BTC-BCH")),
            protocol.Subscription("orderbook", ("KRW-BTC", "BTC-BCH")),
        ],
        fmt="SIMPLE",
    )
    assert json.loads(frame) == documented
    flags = json.loads(
        protocol.build_subscribe_frame(
            "t",
            [
                protocol.Subscription(
                    "orderbook",
                    ("KRW-BTC.15",),
                    is_only_realtime=True,
                    is_only_snapshot=True,
                    level=Decimal("10000"),
                )
            ],
        )
    )
    assert flags[1] == {
        "type": "orderbook",
        "codes": ["KRW-BTC.15"],
        "level": 10000,
        "is_only_snapshot": True,
        "is_only_realtime": True,
    }
    assert json.loads(protocol.build_list_subscriptions_frame("t"))[1] == {
        "method": "LIST_SUBSCRIPTIONS"
    }


@pytest.mark.parametrize(
    ("subs", "fmt", "needle"),
    [
        ([], "DEFAULT", "at least one"),
        ([protocol.Subscription("trade", ())], "DEFAULT", "without codes"),
        ([protocol.Subscription("trade", ("krw-btc",))], "DEFAULT", "upper case"),
        ([protocol.Subscription("trade", ("KRW-BTC",))], "XML", "unknown format"),
    ],
)
def test_subscribe_frame_refuses_bad_requests(
    subs: list[protocol.Subscription], fmt: str, needle: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=needle):
        protocol.build_subscribe_frame("t", subs, fmt=fmt)


def test_rest_requests() -> None:
    when = datetime(2025, 6, 24, 13, 56, 53, tzinfo=UTC)
    req = protocol.trades_request("KRW-BTC", count=500, to=when, cursor=17, days_ago=2)
    assert (req.path, dict(req.params)) == (
        "/trades/ticks",
        {"market": "KRW-BTC", "count": "500", "to": "13:56:53", "cursor": "17", "days_ago": "2"},
    )
    assert req.group == "crix-trades" and req.target.startswith("/v1/trades/ticks?market=KRW-BTC")
    candles = protocol.candles_request("KRW-BTC", "5m", count=200, to=when)
    assert (candles.path, dict(candles.params)["to"], candles.group) == (
        "/candles/minutes/5",
        "2025-06-24T13:56:53Z",
        "candles",
    )
    assert protocol.ticker_request(["KRW-BTC", "KRW-ETH"]).params == (
        ("markets", "KRW-BTC,KRW-ETH"),
    )
    assert protocol.orderbook_request(["KRW-BTC"], count=15).group == "orderbook"
    assert protocol.markets_request().group == "market"
    assert protocol.group_of_path("/v1/ticker/all") == "ticker"
    assert protocol.group_of_path("/v1/status/wallet") == "default"


@pytest.mark.parametrize(
    "call",
    [
        lambda: protocol.trades_request("KRW-BTC", count=501),
        lambda: protocol.trades_request("KRW-BTC", days_ago=8),
        lambda: protocol.candles_request("KRW-BTC", "2m"),
        lambda: protocol.candles_request("KRW-BTC", "1m", count=0),
        lambda: protocol.candles_request("KRW-BTC", "1m", to=datetime(2025, 1, 1)),
        lambda: protocol.ticker_request([]),
        lambda: protocol.orderbook_request(["KRW-BTC"], count=31),
        lambda: protocol.ws_type("1d"),
    ],
)
def test_rest_requests_refuse_bad_arguments(call: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        call()


def test_timeframe_tables_cover_every_timeframe() -> None:
    from backbone.models import CANDLE_TIMEFRAMES

    for tf in CANDLE_TIMEFRAMES:
        path = protocol.rest_path(tf)
        (rec,) = DataUnifier().unify_rest(path, fixture_bytes("rest_candles_seconds.json"))
        assert isinstance(rec, CandleData) and rec.timeframe == tf
    assert [protocol.ws_type(tf) for tf in protocol.WS_TIMEFRAMES][1] == "candle.1m"


def test_fast_constructors_build_what_the_dataclass_would() -> None:
    from dataclasses import fields, replace

    from backbone.models import TickerData
    from backbone.upbit.protocol._wire import fast_constructor

    for name, cls in (
        ("ws_trade.json", TradeData),
        ("ws_ticker.json", TickerData),
        ("ws_orderbook.json", OrderbookData),
        ("ws_candle.json", CandleData),
    ):
        fast = DataUnifier().unify_ws(fixture_bytes(name), received_ns=1)
        assert type(fast) is cls
        slow = cls(**{f.name: getattr(fast, f.name) for f in fields(cls)})
        assert fast == slow and hash(fast) == hash(slow)
        assert replace(fast, received_ns=2) != fast
    with pytest.raises(TypeError):
        fast_constructor(int)


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("Too many API requests. Blocked for 5.0 seconds.", 5.0),
        ("blocked: retry in 30s", 30.0),
        ("I'm a teapot", None),
    ],
)
def test_block_seconds_from_a_418_message(message: str, seconds: float | None) -> None:
    assert protocol.block_seconds(message) == seconds


@settings(deadline=None, max_examples=200)
@given(st.lists(st.integers(-(10**13), 10**13), min_size=1, max_size=50))
def test_ms_to_datetime_is_exact(millis: list[int]) -> None:
    for ms in millis:
        # Against plain integer arithmetic, whatever the memo of whole seconds holds.
        expected = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
        assert _wire.ms_to_datetime(ms) == expected
        assert _wire.datetime_to_ms(expected) == ms


def test_ms_to_datetime_memo_stays_bounded() -> None:
    for second in range(5000):
        assert _wire.ms_to_datetime(second * 1000 + 999).microsecond == 999_000
    assert 0 < len(_wire._SECONDS) <= 4096
    assert _wire.ms_to_datetime(1_000) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
