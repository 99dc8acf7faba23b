"""Live tier: nothing lost, nothing repeated, values equal across channels and to the truth."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal

import simulator
from backbone import MarketDataBackbone, UpbitAPIError
from backbone.models import EventKind, OrderbookData, RawFrame, TickerData, TradeData
from backbone.upbit.protocol import RestRequest
from backbone.upbit.protocol._wire import datetime_to_ms
from tests.backbone.conftest import Collector, backbone_on, events_of, fast_config, running_exchange

SYMBOLS = ["KRW-BTC", "KRW-XRP", "KRW-ETH"]


def drained(bb: MarketDataBackbone) -> bool:
    """Every record published so far has reached its consumer."""
    return all(s.buffered == 0 and s.waiting == 0 for s in bb.statistics().streams)


async def wait_verified(
    bb: MarketDataBackbone, trades: Collector, symbols: list[str], until_ms: int, timeout_s: float
) -> None:
    """Wait until REST reconciliation has confirmed every symbol up to ``until_ms`` and the
    consumer holds every trade delivered so far."""
    async with asyncio.timeout(timeout_s):
        await bb.session.wait_verified(symbols, until_ms)
    await trades.wait_for(lambda _: drained(bb), timeout_s)


def assert_matches_truth(
    ex: simulator.Exchange, trades: list[TradeData], symbol: str, lo: int, hi: int
) -> int:
    mine = [
        t for t in trades if t.symbol == symbol and lo <= datetime_to_ms(t.trade_timestamp) < hi
    ]
    sids = [t.sequential_id for t in mine]
    assert len(sids) == len(set(sids)), f"{symbol}: duplicated trades"
    truth = ex.truth_trades(symbol, lo, hi)
    by_sid = {t.sequential_id: t for t in mine}
    missing = [t.sequential_id for t in truth if t.sequential_id not in by_sid]
    assert not missing, f"{symbol}: {len(missing)} of {len(truth)} trades never delivered"
    assert len(mine) == len(truth), f"{symbol}: delivered trades the exchange never made"
    for t in truth:
        got = by_sid[t.sequential_id]
        assert (got.trade_price, got.trade_volume, got.trade_side) == (
            t.trade_price,
            t.trade_volume,
            t.ask_bid,
        )
        assert datetime_to_ms(got.trade_timestamp) == t.trade_timestamp
    return len(truth)


async def test_no_trade_lost_or_repeated_across_disconnect_and_drop_ws() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        events = Collector(bb.stream_events())
        trades = Collector(bb.stream_trade(SYMBOLS))
        await trades.wait_for(lambda t: {x.symbol for x in t} == set(SYMBOLS), 15)
        start_ms = (
            max(
                datetime_to_ms(min(x.trade_timestamp for x in trades.items if x.symbol == s))
                for s in SYMBOLS
            )
            + 1
        )
        ex.faults.apply("disconnect")
        await events.wait_for(lambda e: events_of(e, EventKind.RECONNECTED), 30)
        drop = ex.faults.apply("drop_ws", channel="trade", fraction=0.5, seconds=20)
        ex.faults.apply("disconnect")  # a second outage inside the drop window
        end_ms = drop["end_ms"] + 2_000
        await wait_verified(bb, trades, SYMBOLS, end_ms, 20)
        total = sum(assert_matches_truth(ex, trades.items, s, start_ms, end_ms) for s in SYMBOLS)
        assert total > 10  # the claim is the equality above; this only rules out a vacuous pass
        sources = {t.source for t in trades.items}
        assert sources == {"websocket", "rest"}
        repaired = events_of(events.items, EventKind.GAP_REPAIRED)
        reconciled = [e for e in repaired if "reconciliation" in e.cause]
        assert reconciled and all(e.rows_recovered and e.rows_recovered > 0 for e in reconciled)
        outages = [e for e in repaired if "outage" in e.cause]
        assert outages and all(e.exchange_start is not None for e in outages)
        assert events_of(events.items, EventKind.GAP_DETECTED)
        assert not events_of(events.items, EventKind.GAP_UNREPAIRED)
        assert bb.statistics().trades_repaired >= sum(e.rows_recovered or 0 for e in reconciled)
        await trades.aclose()
        await events.aclose()


async def test_a_blocked_trade_consumer_loses_nothing() -> None:
    config = fast_config(trade_buffer=4)
    async with running_exchange() as ex, backbone_on(ex, config) as bb:
        got: list[TradeData] = []
        symbols = ["KRW-BTC", "KRW-XRP"]
        stream = bb.stream_trade(symbols)
        async with asyncio.timeout(20):
            async for trade in stream:
                got.append(trade)
                if len(got) == 1:
                    start_ms = datetime_to_ms(trade.trade_timestamp) + 1
                    end_ms = start_ms + 15_000
                    await asyncio.sleep(1.5)  # a deliberately slow consumer, not a wait
                ledgers = [bb.session.ledger.get(s).verified_ms or 0 for s in symbols]
                if min(ledgers) >= end_ms and drained(bb):
                    break
        stats = {s.key: s for s in bb.statistics().streams}
        assert stats["trade"].blocked >= 1 and stats["trade"].dropped == 0
        await stream.aclose()
        for symbol in symbols:
            assert_matches_truth(ex, got, symbol, start_ms, end_ms)


async def test_a_slow_ticker_consumer_keeps_the_newest_and_reports_drops() -> None:
    config = fast_config(orderbook_buffer=2)
    async with running_exchange() as ex, backbone_on(ex, config) as bb:
        events = Collector(bb.stream_events())
        stream = bb.stream_orderbook(["KRW-BTC", "KRW-ETH", "KRW-XRP"])
        first = await anext(stream)
        assert isinstance(first, OrderbookData)
        await events.wait_for(lambda e: events_of(e, EventKind.RECORDS_DROPPED), 10)
        (drop, *_) = events_of(events.items, EventKind.RECORDS_DROPPED)
        assert drop.channel == "orderbook" and drop.rows_missing and drop.rows_missing > 0
        stats = {s.key: s for s in bb.statistics().streams}
        assert stats["orderbook"].dropped >= drop.rows_missing and stats["orderbook"].buffered <= 2
        newest = [await anext(stream), await anext(stream)]
        assert all(b.timestamp >= first.timestamp for b in newest)
        await stream.aclose()
        await events.aclose()


async def test_malformed_frames_are_counted_and_survived() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        trades = Collector(bb.stream_trade(["KRW-BTC", "KRW-XRP"]))
        await trades.wait_for(lambda t: len(t) >= 2, 10)
        ex.faults.apply("malformed_ws", count=5)
        (fault,) = [f for f in ex.faults.list() if f["kind"] == "malformed_ws"]
        n = len(trades.items)
        await trades.wait_for(lambda t: len(t) >= n + 10, 10)
        sent = next(f for f in ex.faults.list() if f["id"] == fault["id"])["effects"][
            "frames_malformed"
        ]
        assert sent >= 1
        assert bb.statistics().malformed_frames == sent
        assert bb.statistics().reconnects == 0
        await trades.aclose()


async def test_no_429_in_a_burst_of_100_rest_calls() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        calls = (
            [bb.get_ticker(s) for s in SYMBOLS * 12]
            + [bb.get_trades("KRW-BTC", 5) for _ in range(32)]
            + [bb.get_orderbook("KRW-ETH") for _ in range(32)]
        )
        assert len(calls) == 100
        results = await asyncio.gather(*calls)
        assert len(results) == 100 and all(results)
        assert ex.stats["rest_429"] == 0 and ex.stats["rest_418"] == 0
        assert bb.statistics().rest_rate_limited == 0


async def test_rest_errors_are_retried_then_reported_clearly() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        await bb.get_markets()
        ex.faults.apply("rest_error", status=500, seconds=2)  # 0.2 s real: retries ride it out
        ticker = await bb.get_ticker("KRW-BTC")
        assert ticker.symbol == "KRW-BTC" and bb.statistics().rest_retries >= 1
        ex.faults.apply("rest_error", status=503, seconds=600)
        try:
            await bb.get_orderbook("KRW-BTC")
        except UpbitAPIError as exc:
            assert exc.status == 503 and exc.retryable
        else:
            raise AssertionError("a persistent 503 must reach the caller")
        ex.faults.clear()
        calls = bb.statistics().rest_calls
        for params, status in (
            ((("market", "KRW-BTC"), ("count", "lots")), 400),
            ((("market", "KRW-NOPE"),), 404),
        ):
            try:
                await bb.session.rest.request(RestRequest("/trades/ticks", params))
            except UpbitAPIError as exc:
                assert exc.status == status and not exc.retryable and "/v1/trades/ticks" in str(exc)
            else:
                raise AssertionError(f"{params} must be refused")
        assert bb.statistics().rest_calls == calls + 2  # a 4xx is not retried


async def test_rest_and_websocket_records_of_one_state_are_equal() -> None:
    clock = simulator.ManualClock(1_795_600_000_000)
    async with simulator.Exchange(seed=3, markets=SYMBOLS, clock=clock) as ex:
        clock.advance(60_000)
        await ex.settle()
        async with MarketDataBackbone(
            ex.rest_url,
            ex.ws_url,
            config=fast_config(),
            clock_ns=lambda: clock.now_ms() * 1_000_000,
        ) as bb:
            pairs = []
            for stream, rest in (
                (bb.stream_ticker("KRW-BTC"), bb.get_ticker("KRW-BTC")),
                (bb.stream_orderbook("KRW-BTC"), bb.get_orderbook("KRW-BTC")),
                (bb.stream_trade("KRW-BTC"), bb.get_trades("KRW-BTC", 1)),
            ):
                ws_record = await anext(stream)
                await stream.aclose()
                rest_record = await rest
                rest_record = rest_record[0] if isinstance(rest_record, list) else rest_record
                assert ws_record.source == "websocket" and rest_record.source == "rest"
                pairs.append((ws_record, rest_record))
        for ws_record, rest_record in pairs:
            shared = [
                f.name
                for f in fields(ws_record)
                if f.name not in {"source", "received_ns"}
                and getattr(rest_record, f.name) is not None
                and getattr(ws_record, f.name) is not None
            ]
            assert len(shared) >= 8
            differing = {
                n: (getattr(ws_record, n), getattr(rest_record, n))
                for n in shared
                if getattr(ws_record, n) != getattr(rest_record, n)
            }
            assert differing == {}, type(ws_record).__name__
            assert ws_record.received_ns == rest_record.received_ns == clock.now_ms() * 1_000_000


async def test_raw_sink_sees_every_frame_and_body() -> None:
    raw: list[RawFrame] = []
    async with running_exchange() as ex, backbone_on(ex, raw_sink=raw.append) as bb:
        trades = Collector(bb.stream_trade("KRW-BTC"))
        await trades.wait_for(lambda t: len(t) >= 3, 10)
        await bb.get_ticker("KRW-ETH")
        await trades.aclose()
    ws = [f for f in raw if f.source == "websocket"]
    rest = [f for f in raw if f.source == "rest"]
    assert len(ws) >= 3 and all(b'"trade"' in f.payload for f in ws)
    assert any(f.endpoint.startswith("/v1/ticker?markets=KRW-ETH") for f in rest)
    assert any(f.endpoint.startswith("/v1/market/all") for f in rest)


async def test_history_paging_and_backfill_match_the_truth() -> None:
    async with running_exchange(speed=1.0) as ex, backbone_on(ex) as bb:
        trades = await bb.get_trades("KRW-BTC", 1_200)
        assert len(trades) == 1_200 and len({t.sequential_id for t in trades}) == 1_200
        assert trades == sorted(
            trades, key=lambda t: (t.trade_timestamp, t.sequential_id), reverse=True
        )
        candles = await bb.get_candles("KRW-BTC", "1m", 450)
        opens = [c.open_time for c in candles]
        assert len(candles) == 450 and opens == sorted(set(opens), reverse=True)
        since = datetime.fromtimestamp((ex.clock.now_ms() - 3 * 3_600_000) / 1000, UTC)
        backfill = await bb.fetch_trades_since("KRW-BTC", since)
        now_ms = datetime_to_ms(backfill[-1].trade_timestamp) + 1
        truth = ex.truth_trades("KRW-BTC", datetime_to_ms(since), now_ms)
        assert [t.sequential_id for t in backfill] == [t.sequential_id for t in truth]
        assert all(t.trade_price == u.trade_price for t, u in zip(backfill, truth, strict=True))
        after = await bb.fetch_trades_since(
            "KRW-BTC", backfill[0].trade_timestamp, after_sequential_id=backfill[0].sequential_id
        )
        assert backfill[0].sequential_id not in {t.sequential_id for t in after}
        assert isinstance(await bb.get_ticker("KRW-BTC", realtime=True), TickerData)
        assert (await bb.get_candles("KRW-BTC", "1d", 3))[0].change_rate is not None
        assert all(c.close_price > Decimal(0) for c in candles)


async def test_a_client_configured_too_fast_backs_off_on_429_and_reports_418() -> None:
    from backbone import BackboneConfig, RateLimited, RestClient

    async with running_exchange(rest_429s_before_block=6, rest_block_s=2.0) as ex:
        eager = BackboneConfig(rest_requests_per_s=30, rest_retries=6)
        async with RestClient(ex.rest_url, config=eager) as rest:
            answers = await asyncio.gather(
                *(rest.ticker(["KRW-BTC"]) for _ in range(20)), return_exceptions=True
            )
            limited = [a for a in answers if isinstance(a, RateLimited)]
            assert rest.stats.rate_limited >= 1 and ex.stats["rest_429"] >= 1
            assert all(isinstance(a, list) for a in answers if not isinstance(a, RateLimited))
            if ex.stats["rest_418"]:
                blocked = [e for e in limited if e.status == 418]
                assert blocked and all(0 < e.retry_after_s <= 2.0 for e in blocked)
            else:
                assert not limited  # every 429 was waited out and retried


async def test_backfill_crosses_utc_midnight_with_days_ago() -> None:
    two_am = int(datetime(2026, 11, 20, 2, 0, tzinfo=UTC).timestamp() * 1000)
    async with (
        running_exchange(speed=1.0, markets=["KRW-ETH", "KRW-BTC"], start_ms=two_am) as ex,
        backbone_on(ex) as bb,
    ):
        since = datetime(2026, 11, 19, 23, 0, tzinfo=UTC)
        backfill = await bb.fetch_trades_since("KRW-ETH", since)
        assert backfill[0].trade_timestamp.day == 19 and backfill[-1].trade_timestamp.day == 20
        end_ms = datetime_to_ms(backfill[-1].trade_timestamp) + 1
        truth = ex.truth_trades("KRW-ETH", datetime_to_ms(since), end_ms)
        assert [t.sequential_id for t in backfill] == [t.sequential_id for t in truth]


async def test_a_trade_made_between_the_catch_up_sync_and_the_new_socket_is_repaired() -> None:
    # The periodic reconciliation is off, and REST answers stale (as of the fault's start)
    # while the socket goes down and comes back: the catch-up sync after the reconnect
    # confirms only up to that stale time, and the new socket starts at its snapshot, the
    # newest trade. The trades between the two reach neither unless the backbone syncs again
    # until REST has confirmed past the socket's first trade.
    config = fast_config(reconcile_interval_s=3600.0)
    async with running_exchange(activity=3.0) as ex, backbone_on(ex, config) as bb:
        events = Collector(bb.stream_events())
        trades = Collector(bb.stream_trade(SYMBOLS))
        await trades.wait_for(lambda t: {x.symbol for x in t} == set(SYMBOLS), 15)
        start_ms = max(
            datetime_to_ms(min(x.trade_timestamp for x in trades.items if x.symbol == s))
            for s in SYMBOLS
        )
        stale = ex.faults.apply("rest_stale", seconds=60)

        def streamed_past(ms: int) -> Callable[[list[TradeData]], bool]:
            return lambda t: all(
                any(x.symbol == s and datetime_to_ms(x.trade_timestamp) > ms for x in t)
                for s in SYMBOLS
            )

        # seconds of trades that only the socket delivers, then seconds of outage
        await trades.wait_for(streamed_past(stale["start_ms"] + 3_000), 15)
        ex.faults.apply("refuse_ws", seconds=5)
        ex.faults.apply("disconnect")
        await events.wait_for(lambda e: events_of(e, EventKind.RECONNECTED), 30)
        back_ms = int(ex.clock.now_ms())
        assert back_ms < stale["end_ms"], "the socket came back after REST was fresh: void"
        await trades.wait_for(streamed_past(back_ms), 15)

        def complete(t: list[TradeData]) -> bool:
            have = {(x.symbol, x.sequential_id) for x in t}
            return all(
                (s, x.sequential_id) in have
                for s in SYMBOLS
                for x in ex.truth_trades(s, start_ms, back_ms)
            )

        try:
            await trades.wait_for(complete, 20)
        except TimeoutError:
            raise AssertionError(
                "trades made between the catch-up sync and the new socket's first trade were "
                "never delivered"
            ) from None
        total = sum(assert_matches_truth(ex, trades.items, s, start_ms, back_ms) for s in SYMBOLS)
        late = [
            t
            for t in trades.items
            if t.source == "rest" and datetime_to_ms(t.trade_timestamp) > stale["start_ms"]
        ]
        assert total > 10 and late, "REST repaired nothing made after it went stale: void"
        await trades.aclose()
        await events.aclose()
