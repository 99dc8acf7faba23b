"""Bounded fan-out from the sources to each consumer, with an explicit overflow policy.

Every ``stream_*`` call gets its own :class:`Subscriber` with its own bounded buffer:

- ``BLOCK`` (trades, candles, events): when the buffer is full the producer waits until the
  consumer takes a record, and ``blocked`` counts the waits. Nothing is ever dropped; a
  consumer that stays too slow holds back the socket that feeds it.
- ``KEEP_NEWEST`` (tickers, orderbooks): when the buffer is full the oldest record is
  dropped and ``dropped`` counts it; the backbone turns unreported drops into
  ``records_dropped`` events about once a second.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from backbone.errors import ClosedError
from backbone.models import ConnectionEvent, MarketRecord

__all__ = ["Overflow", "StreamHub", "Subscriber", "SubscriberStats"]

T = TypeVar("T")


class Overflow(StrEnum):
    """What a full buffer does with the next record."""

    BLOCK = "block"
    KEEP_NEWEST = "keep_newest"


@dataclass(frozen=True, slots=True)
class SubscriberStats:
    """Counters of one consumer: records handed over, dropped (keep-newest), the times the
    producer had to wait (block), records in the buffer, and producers waiting now."""

    key: str
    symbols: tuple[str, ...]
    policy: Overflow
    delivered: int
    dropped: int
    blocked: int
    buffered: int
    waiting: int


class Subscriber(Generic[T]):
    """One consumer's bounded buffer. The producer calls :meth:`put_nowait` (or :meth:`put`
    when that refused), the consumer :meth:`get`, or :meth:`wait` once and then :meth:`take`
    while ``buffer`` (read it, never change it) holds records: one wake-up per burst.
    :meth:`close` wakes a waiting consumer with :class:`ClosedError`."""

    __slots__ = (
        "_closed",
        "_getter",
        "_putters",
        "blocked",
        "buffer",
        "capacity",
        "delivered",
        "dropped",
        "key",
        "policy",
        "reported_drops",
        "symbols",
    )

    def __init__(self, key: str, symbols: Iterable[str], capacity: int, policy: Overflow) -> None:
        self.key = key
        self.symbols = frozenset(symbols)
        self.capacity = capacity
        self.policy = policy
        self.buffer: deque[T] = deque()
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()
        self._closed = False
        self.delivered = 0
        self.dropped = 0
        self.blocked = 0
        self.reported_drops = 0

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def put(self, item: T) -> None:
        """Hand ``item`` over, waiting while a ``BLOCK`` buffer is full."""
        if self._closed:
            return
        buffer = self.buffer
        if len(buffer) >= self.capacity:
            if self.policy is Overflow.KEEP_NEWEST:
                buffer.popleft()
                self.dropped += 1
            else:
                self.blocked += 1
                while len(buffer) >= self.capacity and not self._closed:
                    waiter = asyncio.get_running_loop().create_future()
                    self._putters.append(waiter)
                    try:
                        await waiter
                    finally:
                        if waiter in self._putters:
                            self._putters.remove(waiter)
                if self._closed:
                    return
        buffer.append(item)
        self._wake_getter()

    def put_nowait(self, item: T) -> bool:
        """Hand ``item`` over if it fits (or the policy drops the oldest); False if a
        ``BLOCK`` buffer is full. Wakes a waiting consumer (once per burst: it takes
        everything buffered when it runs)."""
        if self._closed:
            return True
        buffer = self.buffer
        if len(buffer) >= self.capacity:
            if self.policy is Overflow.BLOCK:
                return False
            buffer.popleft()
            self.dropped += 1
        buffer.append(item)
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)
        return True

    async def wait(self) -> None:
        """Wait until the buffer holds a record (returns at once if it does).

        Raises:
            ClosedError: the subscriber was closed and its buffer is empty.
        """
        buffer = self.buffer
        while not buffer:
            if self._closed:
                raise ClosedError(f"stream {self.key} is closed")
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None

    def take(self) -> T:
        """Take the next record from a buffer that holds one (see :meth:`wait`); a waiting
        producer may then put its record."""
        item = self.buffer.popleft()
        self.delivered += 1
        if self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
        return item

    async def get(self) -> T:
        """Take the next item, waiting for one.

        Raises:
            ClosedError: the subscriber was closed and its buffer is empty.
        """
        if not self.buffer:
            await self.wait()
        return self.take()

    def close(self) -> None:
        """Stop accepting items; wake every waiter. Safe to call twice."""
        self._closed = True
        self._wake_getter()
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def stats(self) -> SubscriberStats:
        """A snapshot of the counters."""
        return SubscriberStats(
            self.key,
            tuple(sorted(self.symbols)),
            self.policy,
            self.delivered,
            self.dropped,
            self.blocked,
            len(self.buffer),
            len(self._putters),
        )


class StreamHub:
    """Routes each record to the subscribers of its stream key and symbol.

    Keys are ``"ticker"``, ``"trade"``, ``"orderbook"`` and ``"candle.<timeframe>"``.
    """

    def __init__(self) -> None:
        self._subs: dict[str, list[Subscriber[MarketRecord]]] = {}
        # key -> symbol -> subscribers; read it on the hot path, change it only via add/remove.
        self.routes: dict[str, dict[str, tuple[Subscriber[MarketRecord], ...]]] = {}
        self._event_subs: list[Subscriber[ConnectionEvent]] = []
        self.finished: list[SubscriberStats] = []

    def add(self, sub: Subscriber[MarketRecord]) -> None:
        """Start routing records of ``sub.key`` for ``sub.symbols`` to ``sub``."""
        self._subs.setdefault(sub.key, []).append(sub)
        self._reindex(sub.key)

    def remove(self, sub: Subscriber[MarketRecord]) -> None:
        """Stop routing to ``sub`` and close it. Safe to call twice."""
        subs = self._subs.get(sub.key, [])
        if sub in subs:
            subs.remove(sub)
            self.finished.append(sub.stats())
            if not subs:
                del self._subs[sub.key]
            self._reindex(sub.key)
        sub.close()

    def _reindex(self, key: str) -> None:
        index: dict[str, list[Subscriber[MarketRecord]]] = {}
        for sub in self._subs.get(key, []):
            for symbol in sub.symbols:
                index.setdefault(symbol, []).append(sub)
        if index:
            self.routes[key] = {symbol: tuple(subs) for symbol, subs in index.items()}
        else:
            self.routes.pop(key, None)

    def wanted(self, key: str) -> set[str]:
        """Every symbol some subscriber of ``key`` wants."""
        return set(self.routes.get(key, ()))

    def stream_keys(self) -> list[str]:
        """Every key with at least one subscriber."""
        return list(self.routes)

    def subscribers(self) -> list[Subscriber[MarketRecord]]:
        """Every live market-data subscriber."""
        return [sub for subs in self._subs.values() for sub in subs]

    def targets(self, key: str, symbol: str) -> tuple[Subscriber[MarketRecord], ...]:
        """The subscribers a record of ``key`` and ``symbol`` goes to."""
        by_symbol = self.routes.get(key)
        if by_symbol is None:
            return ()
        return by_symbol.get(symbol, ())

    async def publish(self, key: str, record: MarketRecord) -> int:
        """Hand ``record`` to every subscriber of ``key`` that wants its symbol; return how
        many. Waits on full ``BLOCK`` buffers."""
        targets = self.targets(key, record.symbol)
        for sub in targets:
            if not sub.put_nowait(record):
                await sub.put(record)
        return len(targets)

    def add_events(self, sub: Subscriber[ConnectionEvent]) -> None:
        """Start handing every event to ``sub``."""
        self._event_subs.append(sub)

    def remove_events(self, sub: Subscriber[ConnectionEvent]) -> None:
        """Stop handing events to ``sub`` and close it."""
        if sub in self._event_subs:
            self._event_subs.remove(sub)
        sub.close()

    def event_subscribers(self) -> list[Subscriber[ConnectionEvent]]:
        """Every ``stream_events`` consumer."""
        return list(self._event_subs)

    async def publish_event(self, event: ConnectionEvent) -> None:
        """Hand ``event`` to every events consumer (block-and-count)."""
        for sub in tuple(self._event_subs):
            if not sub.put_nowait(event):
                await sub.put(event)

    def close(self) -> None:
        """Close every subscriber (their consumers see the end of the stream)."""
        for sub in self.subscribers():
            self.remove(sub)
        for event_sub in list(self._event_subs):
            self.remove_events(event_sub)
