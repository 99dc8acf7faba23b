"""Live tier: the backbone against the simulator over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

import pytest

from backbone import (
    BackboneConfig,
    ChannelStrategy,
    InvalidArgumentError,
    MarketDataBackbone,
    UnknownSymbolError,
)
from backbone.memory import can_release, release_freed_memory
from backbone.models import CandleData, EventKind, OrderbookData, TickerData, TradeData
from tests.backbone.conftest import (
    Collector,
    backbone_on,
    events_of,
    fast_config,
    running_exchange,
)


async def test_every_stream_flows_from_the_websocket() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        streams = {
            "ticker": Collector(bb.stream_ticker(["KRW-BTC", "KRW-ETH"])),
            "trade": Collector(bb.stream_trade("KRW-BTC")),
            "orderbook": Collector(bb.stream_orderbook(["KRW-BTC"])),
            "candle": Collector(bb.stream_candle(["KRW-BTC"], "1m")),
        }
        types = {
            "ticker": TickerData,
            "trade": TradeData,
            "orderbook": OrderbookData,
            "candle": CandleData,
        }
        for name, collector in streams.items():
            await collector.wait_for(
                lambda items: sum(r.source == "websocket" for r in items) >= 3, 15
            )
            assert all(isinstance(r, types[name]) for r in collector.items)
        books = [r for r in streams["orderbook"].items if r.source == "websocket"]
        assert all(len(b.ask_prices) == 30 and b.ask_prices[0] > b.bid_prices[0] for b in books)
        assert all(sum(b.ask_volumes) == b.total_ask_size for b in books)
        assert {r.symbol for r in streams["ticker"].items} == {"KRW-BTC", "KRW-ETH"}
        assert all(c.timeframe == "1m" for c in streams["candle"].items)
        trades = streams["trade"].items
        assert len({t.sequential_id for t in trades}) == len(trades)
        stats = bb.statistics()
        assert stats.records["trade"]["websocket"] >= 3 and stats.connects >= 4
        assert set(stats.live) >= {"ticker", "trade", "orderbook", "candle.1m"}
        assert all(s.delivered > 0 for s in stats.streams)
        for collector in streams.values():
            await collector.aclose()


async def test_unknown_symbols_raise_value_errors_naming_them_on_every_channel() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        for stream in (
            bb.stream_ticker(["KRW-BTC", "KRW-NOPE"]),
            bb.stream_trade("KRW-NOPE"),
            bb.stream_orderbook("KRW-NOPE"),
            bb.stream_candle("KRW-NOPE", "1m"),
        ):
            with pytest.raises(UnknownSymbolError, match="KRW-NOPE") as info:
                await anext(stream)
            assert isinstance(info.value, ValueError) and info.value.symbol == "KRW-NOPE"
        calls = [
            bb.get_ticker("KRW-NOPE"),
            bb.get_trades("KRW-NOPE"),
            bb.get_orderbook("KRW-NOPE"),
            bb.get_candles("KRW-NOPE", "1m"),
            bb.fetch_trades_since("KRW-NOPE", bb_now(ex)),
        ]
        for call in calls:
            with pytest.raises(ValueError, match="KRW-NOPE"):
                await call
        with pytest.raises(InvalidArgumentError, match="timeframe"):
            await anext(bb.stream_candle("KRW-BTC", "2h"))
        with pytest.raises(InvalidArgumentError):
            await anext(bb.stream_trade([]))


def bb_now(ex: object) -> object:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ex.clock.now_ms() / 1000, UTC)  # type: ignore[attr-defined]


async def test_reconnects_and_resubscribes_after_disconnect() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        events = Collector(bb.stream_events())
        trades = Collector(bb.stream_trade(["KRW-BTC", "KRW-ETH"]))
        await events.wait_for(lambda e: events_of(e, EventKind.CONNECTED), 10)
        for round_ in range(2):
            ex.faults.apply("disconnect")
            await events.wait_for(
                lambda e, n=round_ + 1: len(events_of(e, EventKind.RECONNECTED)) >= n, 10
            )
        before = len(trades.items)
        await trades.wait_for(lambda t: sum(x.source == "websocket" for x in t[before:]) >= 3, 10)
        disconnected = events_of(events.items, EventKind.DISCONNECTED)
        assert len(disconnected) >= 2 and all(e.channel == "trade" for e in disconnected)
        reconnected = events_of(events.items, EventKind.RECONNECTED)
        assert all(
            e.start_ns is not None and e.end_ns is not None and e.start_ns <= e.end_ns
            for e in reconnected
        )
        assert bb.statistics().reconnects >= 2
        await trades.aclose()
        await events.aclose()


async def test_a_stalled_socket_is_replaced_within_three_seconds() -> None:
    # Default keep-alive settings: the stall must be caught by pings, whatever the traffic.
    config = fast_config(
        ping_interval_s=BackboneConfig().ping_interval_s,
        stall_timeout_s=BackboneConfig().stall_timeout_s,
    )
    async with running_exchange(speed=1.0, activity=0.01) as ex, backbone_on(ex, config) as bb:
        events = Collector(bb.stream_events())
        ticker = Collector(bb.stream_ticker("BTC-ETH"))  # a quiet market: silence is normal
        await events.wait_for(lambda e: events_of(e, EventKind.CONNECTED), 10)
        started = time.monotonic()
        ex.faults.apply("stall", seconds=60)
        await events.wait_for(lambda e: events_of(e, EventKind.DISCONNECTED), 6)
        detected_s = time.monotonic() - started
        (down,) = events_of(events.items, EventKind.DISCONNECTED)
        assert "silent" in down.cause
        assert detected_s < 3.0
        await events.wait_for(lambda e: events_of(e, EventKind.RECONNECTED), 6)
        assert bb.statistics().stalls == 1
        await ticker.aclose()
        await events.aclose()


async def test_falls_back_to_rest_while_refused_and_returns_to_the_websocket() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        events = Collector(bb.stream_events())
        tickers = Collector(bb.stream_ticker(["KRW-BTC", "KRW-ETH"]))
        trades = Collector(bb.stream_trade("KRW-BTC"))
        books = Collector(bb.stream_orderbook("KRW-BTC"))
        await events.wait_for(lambda e: len(events_of(e, EventKind.CONNECTED)) >= 3, 10)
        refuse = ex.faults.apply("refuse_ws", seconds=30)  # 3 s real at speed 10
        ex.faults.apply("disconnect")
        for collector in (tickers, trades, books):
            await collector.wait_for(lambda items: any(r.source == "rest" for r in items), 5)
        switched = events_of(events.items, EventKind.SOURCE_SWITCHED)
        assert any(e.source == "rest" and e.channel == "trade" for e in switched)
        assert not bb.session.router.websocket.up
        health = bb.session.router.evaluate_channel_health()
        assert not health["websocket"].healthy and health["rest"].healthy
        # Once the exchange accepts sockets again the streams go back to the WebSocket.
        await ex.clock.sleep_until(refuse["end_ms"])
        accepted = time.monotonic()
        n = len(trades.items), len(tickers.items)
        await trades.wait_for(lambda t: any(x.source == "websocket" for x in t[n[0] :]), 5)
        await tickers.wait_for(lambda t: any(x.source == "websocket" for x in t[n[1] :]), 5)
        assert time.monotonic() - accepted < 2.0 + 0.5  # + the time to the next trade
        await events.wait_for(lambda e: events_of(e, EventKind.GAP_REPAIRED), 5)
        assert any(
            e.source == "websocket" for e in events_of(events.items, EventKind.SOURCE_SWITCHED)
        )
        sids = [t.sequential_id for t in trades.items]
        assert len(sids) == len(set(sids))
        for collector in (tickers, trades, books, events):
            await collector.aclose()


async def test_websocket_only_never_polls_and_rest_only_never_connects() -> None:
    async with running_exchange() as ex:
        async with backbone_on(ex, fast_config(stream_strategy=ChannelStrategy.REST_ONLY)) as bb:
            trades = Collector(bb.stream_trade("KRW-BTC"))
            tickers = Collector(bb.stream_ticker("KRW-BTC"))
            await trades.wait_for(lambda t: len(t) >= 5, 10)
            await tickers.wait_for(lambda t: len(t) >= 2, 10)
            assert {r.source for r in trades.items + tickers.items} == {"rest"}
            assert bb.statistics().connects == 0
            await trades.aclose()
            await tickers.aclose()
        async with backbone_on(
            ex, fast_config(stream_strategy=ChannelStrategy.WEBSOCKET_ONLY)
        ) as bb:
            trades = Collector(bb.stream_trade("KRW-BTC"))
            await trades.wait_for(lambda t: len(t) >= 5, 10)
            calls = bb.statistics().rest_calls
            assert {r.source for r in trades.items} == {"websocket"}
            assert calls == 1  # the market list, nothing else
            await trades.aclose()


async def test_cancellation_mid_stream_unsubscribes_and_leaves_the_backbone_usable() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        got_one = asyncio.Event()

        async def consume() -> None:
            async for _ in bb.stream_trade(["KRW-BTC", "KRW-XRP"]):
                got_one.set()

        task = asyncio.create_task(consume())
        async with asyncio.timeout(10):
            await got_one.wait()
        assert bb.session.ws.subscriptions("trade") == {"trade": {"KRW-BTC", "KRW-XRP"}}
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert bb.session.ws.subscriptions("trade") == {}
        assert bb.session.hub.subscribers() == []
        # break out of an async for: the generator closes and unsubscribes too
        stream = bb.stream_ticker("KRW-BTC")
        async for ticker in stream:
            assert ticker.current_price > Decimal(0)
            break
        await stream.aclose()
        assert bb.session.hub.subscribers() == []
        assert (await bb.get_orderbook("KRW-ETH")).symbol == "KRW-ETH"
    with pytest.raises(Exception, match="not open"):
        await anext(bb.stream_trade("KRW-BTC"))


async def test_closing_the_backbone_ends_every_stream() -> None:
    async with running_exchange() as ex:
        bb = MarketDataBackbone(ex.rest_url, ex.ws_url, config=fast_config())
        async with bb:
            trades = Collector(bb.stream_trade("KRW-BTC"))
            await trades.wait_for(lambda t: len(t) >= 1, 10)
        async with asyncio.timeout(5):
            await trades.task  # ended by itself, no cancellation needed
        await bb.aclose()  # idempotent
        with pytest.raises(Exception, match="create a new"):
            async with bb:
                pass


async def test_many_consumers_spread_over_connections_within_message_limits() -> None:
    config = fast_config(max_codes_per_connection=2)
    async with running_exchange() as ex, backbone_on(ex, config) as bb:
        collectors = [
            Collector(bb.stream_trade(symbol)) for symbol in ["KRW-BTC", "KRW-ETH", "KRW-XRP"]
        ]
        collectors += [
            Collector(bb.stream_ticker(s)) for s in ["KRW-BTC", "KRW-ETH", "KRW-XRP", "BTC-ETH"]
        ]
        for collector in collectors:
            await collector.wait_for(lambda items: any(r.source == "websocket" for r in items), 15)
        labels = {s.label for s in bb.session.ws.slot_states()}
        assert labels == {"trade-0", "trade-1", "ticker-0", "ticker-1"}
        stats = bb.statistics()
        assert stats.ws_error_frames == 0 and stats.reconnects == 0
        assert ex.stats["ws_rate_limited"] == 0
        for collector in collectors:
            await collector.aclose()


async def test_day_candles_stream_from_rest_and_minute_candles_from_the_socket() -> None:
    async with running_exchange() as ex, backbone_on(ex) as bb:
        days = Collector(bb.stream_candle("KRW-BTC", "1d"))
        minutes = Collector(bb.stream_candle("KRW-BTC", "1m"))
        await days.wait_for(lambda c: len(c) >= 2, 10)
        await minutes.wait_for(lambda c: any(x.source == "websocket" for x in c), 10)
        assert {c.source for c in days.items} == {"rest"} and all(
            c.timeframe == "1d" for c in days.items
        )
        assert days.items[-1].open_time >= days.items[0].open_time
        await days.aclose()
        await minutes.aclose()


async def test_get_ticker_simple_and_realtime_choice() -> None:
    from backbone import get_ticker_simple

    async with running_exchange() as ex:
        ticker = await get_ticker_simple("KRW-ETH", rest_url=ex.rest_url, ws_url=ex.ws_url)
        assert ticker.symbol == "KRW-ETH" and ticker.source == "rest"
        async with backbone_on(ex) as bb:
            live = Collector(bb.stream_ticker("KRW-BTC"))
            await live.wait_for(lambda t: any(x.source == "websocket" for x in t), 10)
            fresh = await bb.get_ticker("KRW-BTC", realtime=True)
            assert fresh.source == "websocket"
            assert (
                await bb.get_ticker("KRW-BTC", ChannelStrategy.REST_ONLY, realtime=True)
            ).source == "rest"
            assert (
                await bb.get_ticker("KRW-BTC", ChannelStrategy.WEBSOCKET_ONLY)
            ).source == "websocket"
            await live.aclose()


@pytest.mark.parametrize("fmt", ["JSON_LIST", "SIMPLE_LIST"])
async def test_list_formats_stream_and_a_full_trade_buffer_holds_the_socket_back(
    fmt: str,
) -> None:
    config = fast_config(
        ws_format=fmt, trade_buffer=2, stream_strategy=ChannelStrategy.WEBSOCKET_ONLY
    )
    async with running_exchange() as ex, backbone_on(ex, config) as bb:
        tickers = Collector(bb.stream_ticker(["KRW-BTC", "KRW-ETH"]))
        trades = bb.stream_trade(["KRW-BTC", "KRW-ETH"])
        first = await anext(trades)  # subscribed; nobody reads on while the buffer fills

        def trade_stats() -> tuple[int, int, int]:
            (stats,) = [s for s in bb.statistics().streams if s.key == "trade"]
            return stats.blocked, stats.buffered, stats.waiting

        async with asyncio.timeout(15):
            # A counter has no event to wait on: look again every 20 ms until it moves.
            while trade_stats()[2] < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert trade_stats() == (1, 2, 1)  # full, never more: the socket's reader waits
        later = [await anext(trades) for _ in range(20)]
        await tickers.wait_for(lambda items: len({r.symbol for r in items}) == 2, 15)
        received = [first, *later]
        assert all(t.source == "websocket" for t in received)
        keys = [(t.symbol, t.sequential_id) for t in received]
        assert len(set(keys)) == len(keys)
        assert all(isinstance(r, TickerData) and r.source == "websocket" for r in tickers.items)
        await trades.aclose()
        await tickers.aclose()


@pytest.mark.skipif(not can_release(), reason="malloc_trim is glibc's")
def test_freed_heap_memory_is_handed_back() -> None:
    # 20 MB in blocks below glibc's mmap threshold come from the heap; once freed, malloc
    # keeps them until a trim returns them.
    blocks = [bytearray(100_000) for _ in range(200)]
    del blocks
    assert release_freed_memory()


@pytest.mark.skipif(not can_release(), reason="malloc_trim is glibc's")
async def test_freed_memory_is_handed_back_while_streaming_and_never_when_disabled() -> None:
    async with running_exchange() as ex:
        config = fast_config(memory_release_s=0.05)
        async with MarketDataBackbone(ex.rest_url, ex.ws_url, config=config) as bb:
            trades = Collector(bb.stream_trade("KRW-BTC"))
            await trades.wait_for(lambda t: len(t) >= 1, 10)
            # Checked as each trade arrives: three releases while the stream flows.
            await trades.wait_for(lambda _: bb.statistics().memory_releases >= 3, 10)
            await trades.aclose()
        config = fast_config(memory_release_s=None)
        async with MarketDataBackbone(ex.rest_url, ex.ws_url, config=config) as bb:
            trades = Collector(bb.stream_trade("KRW-BTC"))
            await trades.wait_for(lambda t: len(t) >= 1, 10)
            # Streaming for as long as the first backbone needed for three releases.
            started = time.monotonic()
            await trades.wait_for(lambda t: time.monotonic() - started > 0.2 and len(t) > 1, 10)
            assert bb.statistics().memory_releases == 0
            await trades.aclose()
