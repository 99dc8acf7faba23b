"""The pieces on their own: stream buffers, the trade ledger, the router, slot assignment."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backbone import (
    BackboneConfig,
    ChannelRouter,
    ChannelStrategy,
    ClosedError,
    InvalidArgumentError,
    WebSocketManager,
)
from backbone.ledger import TradeLedger
from backbone.models import ConnectionEvent, EventKind, TradeData
from backbone.router import ChannelMetrics
from backbone.streams import Overflow, StreamHub, Subscriber

T0 = datetime(2026, 11, 26, tzinfo=UTC)
B = int(T0.timestamp() * 1000)  # T0 in epoch ms


def trade(symbol: str, sid: int, ms: int) -> TradeData:
    d = Decimal(1)
    return TradeData(
        symbol=symbol, trade_price=d, trade_volume=d, trade_side="BID",
        trade_timestamp=T0 + timedelta(milliseconds=ms), sequential_id=sid, source="websocket",
        received_ns=0, prev_closing_price=d, change="EVEN", change_price=Decimal(0),
    )  # fmt: skip


async def test_block_buffer_makes_the_producer_wait_and_counts_it() -> None:
    sub: Subscriber[int] = Subscriber("trade", ["A"], 2, Overflow.BLOCK)
    await sub.put(1)
    await sub.put(2)
    assert not sub.put_nowait(3)
    producer = asyncio.create_task(sub.put(3))
    await asyncio.sleep(0)
    assert not producer.done() and sub.blocked == 1
    assert await sub.get() == 1
    await asyncio.wait_for(producer, 1)
    assert [await sub.get(), await sub.get()] == [2, 3]
    stats = sub.stats()
    assert (stats.delivered, stats.dropped, stats.blocked, stats.buffered) == (3, 0, 1, 0)


async def test_keep_newest_buffer_drops_the_oldest() -> None:
    sub: Subscriber[int] = Subscriber("ticker", ["A"], 2, Overflow.KEEP_NEWEST)
    for i in range(5):
        await sub.put(i)
    assert sub.put_nowait(5)
    assert [await sub.get(), await sub.get()] == [4, 5]
    assert sub.dropped == 4


async def test_close_wakes_consumer_and_producer() -> None:
    sub: Subscriber[int] = Subscriber("trade", ["A"], 1, Overflow.BLOCK)
    consumer = asyncio.create_task(sub.get())
    await asyncio.sleep(0)
    sub.close()
    with pytest.raises(ClosedError):
        await consumer
    full: Subscriber[int] = Subscriber("trade", ["A"], 1, Overflow.BLOCK)
    await full.put(1)
    producer = asyncio.create_task(full.put(2))
    await asyncio.sleep(0)
    full.close()
    await asyncio.wait_for(producer, 1)
    assert full.closed and await full.get() == 1
    await full.put(3)  # ignored once closed
    assert full.put_nowait(4)
    with pytest.raises(ClosedError):
        await full.get()


async def test_hub_routes_by_key_and_symbol() -> None:
    hub = StreamHub()
    a: Subscriber = Subscriber("trade", ["KRW-A"], 10, Overflow.BLOCK)
    ab: Subscriber = Subscriber("trade", ["KRW-A", "KRW-B"], 10, Overflow.BLOCK)
    hub.add(a)
    hub.add(ab)
    assert hub.wanted("trade") == {"KRW-A", "KRW-B"} and hub.stream_keys() == ["trade"]
    assert await hub.publish("trade", trade("KRW-B", 1, 0)) == 1
    assert await hub.publish("trade", trade("KRW-A", 2, 0)) == 2
    assert await hub.publish("ticker", trade("KRW-A", 3, 0)) == 0
    hub.remove(a)
    hub.remove(a)
    assert hub.wanted("trade") == {"KRW-A", "KRW-B"} and a.closed
    events: Subscriber[ConnectionEvent] = Subscriber("events", (), 4, Overflow.BLOCK)
    hub.add_events(events)
    await hub.publish_event(
        ConnectionEvent(kind=EventKind.CONNECTED, source="websocket", received_ns=1)
    )
    assert (await events.get()).kind == EventKind.CONNECTED
    hub.close()
    assert hub.subscribers() == [] and hub.event_subscribers() == [] and ab.closed
    assert [s.key for s in hub.finished] == ["trade", "trade"]


def test_ledger_deduplicates_per_symbol_and_tracks_the_horizon() -> None:
    ledger = TradeLedger(window_ms=1_000)
    assert ledger.admit(trade("A", 1, 100)) and not ledger.admit(trade("A", 1, 100))
    assert ledger.admit(trade("B", 1, 100))  # ids are unique per market only
    first = ledger.get("A")
    assert (first.verified_ms, first.newest_ms, first.duplicates) == (B + 100, B + 100, 1)
    ledger.confirm("A", B + 50)
    assert ledger.get("A").verified_ms == B + 100  # never moves back
    ledger.confirm("A", B + 5_000)
    for i in range(2, 600):
        ledger.admit(trade("A", i, 100 + i * 10))
    assert 1 not in ledger.get("A").seen  # pruned: older than the window and the horizon
    assert ledger.is_duplicate(trade("A", 599, 0)) and not ledger.is_duplicate(trade("C", 1, 0))
    assert ledger.known("A") and not ledger.known("C")
    ledger.forget("A")
    assert ledger.symbols() == ["B"]


def test_router_chooses_from_measured_health() -> None:
    now = [100.0]
    ws, rest = ChannelMetrics(), ChannelMetrics(up=True)
    router = ChannelRouter(
        config=BackboneConfig(), websocket=ws, rest=rest, monotonic=lambda: now[0]
    )
    assert router.choose_optimal_channel("ticker", "KRW-BTC", realtime=True) == "rest"  # ws down
    ws.up = True
    ws.message("ticker", 99.5)
    assert router.should_use_websocket("ticker", realtime=True)
    assert router.choose_optimal_channel("ticker", "KRW-BTC", realtime=True) == "websocket"
    assert router.choose_optimal_channel("ticker", "KRW-BTC") == "rest"  # a snapshot: REST
    assert router.choose_optimal_channel("history", "KRW-BTC", True) == "rest"
    for _ in range(3):
        rest.failure("503")
    assert router.choose_optimal_channel("trade", "KRW-BTC") == "websocket"  # REST failing
    health = router.evaluate_channel_health()
    assert health["websocket"].last_message_age_s == {"ticker": pytest.approx(0.5)}
    assert not health["rest"].healthy and health["rest"].last_error == "503"
    rest.success()
    rest.latency(0.2)
    rest.latency(0.4)
    assert router.evaluate_channel_health()["rest"].latency_s == pytest.approx(0.22)
    assert router.choose_optimal_channel("ticker", "X", True, ChannelStrategy.REST_ONLY) == "rest"
    assert (
        router.choose_optimal_channel("ticker", "X", False, ChannelStrategy.WEBSOCKET_ONLY)
        == "websocket"
    )
    with pytest.raises(InvalidArgumentError):
        router.choose_optimal_channel("markets", "X", False, ChannelStrategy.WEBSOCKET_ONLY)
    with pytest.raises(InvalidArgumentError, match="request type"):
        router.should_use_websocket("weather")
    plan = router.get_fallback_strategy("websocket")
    assert plan.use == "rest" and plan.poll_interval_s == BackboneConfig().poll_interval_s
    assert router.get_fallback_strategy("rest").use == "websocket"
    ws.up = False
    assert router.get_fallback_strategy("rest").use is None


async def test_slots_spread_pairs_and_keep_them_in_place() -> None:
    def on_frame(label: str, payload: bytes, received_ns: int) -> None:
        del label, payload, received_ns

    manager = WebSocketManager(
        "ws://127.0.0.1:9/none",
        on_frame=on_frame,
        config=BackboneConfig(max_codes_per_connection=2),
    )
    manager.set_subscriptions("trade", {"trade": {"A", "B", "C", "D", "E"}})
    slots = {s.label: s.codes["trade"] for s in manager.slot_states()}
    assert sorted(slots) == ["trade-0", "trade-1", "trade-2"]
    assert sorted(c for codes in slots.values() for c in codes) == ["A", "B", "C", "D", "E"]
    where = {c: label for label, codes in slots.items() for c in codes}
    manager.set_subscriptions("trade", {"trade": {"A", "B", "C", "D", "F"}})
    after = {c: s.label for s in manager.slot_states() for c in s.codes["trade"]}
    assert all(after[c] == where[c] for c in "ABCD") and after["F"] == where["E"]
    manager.subscribe_orderbook(["A"])
    manager.subscribe_ticker(["A"])
    manager.subscribe_trade(["G"])
    assert manager.subscriptions() == {
        "trade": {"A", "B", "C", "D", "F", "G"},
        "orderbook": {"A"},
        "ticker": {"A"},
    }
    manager.set_subscriptions("trade", {})
    assert manager.subscriptions("trade") == {}
    await manager.aclose()
    with pytest.raises(ClosedError):
        manager.subscribe_trade(["A"])
