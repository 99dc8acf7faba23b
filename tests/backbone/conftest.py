"""Shared helpers for the backbone tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

import simulator
from backbone import BackboneConfig, Backoff, MarketDataBackbone
from backbone.models import ConnectionEvent

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "upbit"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class Num(str):
    """A JSON number kept as its wire text."""

    __slots__ = ()


def wire_text(name: str) -> Any:
    """The fixture with every number kept as its wire text (:class:`Num`), to check
    exactness and to write variants back with the numbers untouched."""
    return loads_wire(fixture_bytes(name))


def loads_wire(raw: bytes | str) -> Any:
    return json.loads(raw, parse_float=Num, parse_int=Num)


def dumps_wire(obj: Any) -> bytes:
    """Serialize a :func:`wire_text` structure back, numbers as their original text."""
    if isinstance(obj, dict):
        items = (json.dumps(k).encode() + b":" + dumps_wire(v) for k, v in obj.items())
        return b"{" + b",".join(items) + b"}"
    if isinstance(obj, list):
        return b"[" + b",".join(dumps_wire(v) for v in obj) + b"]"
    if isinstance(obj, Num):
        return obj.encode()
    return json.dumps(obj, ensure_ascii=False).encode()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


# -- live tier helpers (real sockets against the simulator on 127.0.0.1:0) ------------------


MARKETS = ["KRW-BTC", "KRW-ETH", "KRW-XRP", "BTC-ETH"]
SPEED = 10.0
# The simulator's activity follows the UTC hour (Korean daytime is busiest): a fixed start
# makes every run see the same market whatever time the tests run.
START_MS = 1_795_230_000_000  # 2026-11-21T03:00:00Z


def fast_config(**overrides: Any) -> BackboneConfig:
    """Short intervals so failures and repairs show within a second or two."""
    settings: dict[str, Any] = {
        "ping_interval_s": 0.3,
        "stall_timeout_s": 1.0,
        "poll_interval_s": 0.1,
        "reconcile_interval_s": 0.4,
        "reconcile_grace_ms": 1500,
        "ws_startup_grace_s": 0.5,
        "reconnect": Backoff(initial_s=0.02, fast_cap_s=0.3, max_s=1.0),
    }
    settings.update(overrides)
    return BackboneConfig(**settings)


@contextlib.asynccontextmanager
async def running_exchange(
    *,
    speed: float = SPEED,
    activity: float = 1.0,
    markets: list[str] | None = None,
    start_ms: int | None = None,
    **config: Any,
) -> AsyncIterator[simulator.Exchange]:
    clock = simulator.ScaledClock(speed, start_ms=START_MS if start_ms is None else start_ms)
    exchange_config = simulator.ExchangeConfig(activity_scale=activity, **config)
    async with simulator.Exchange(
        seed=7, markets=markets or MARKETS, clock=clock, config=exchange_config
    ) as ex:
        yield ex


def exchange_clock_ns(ex: simulator.Exchange) -> Callable[[], int]:
    return lambda: int(ex.clock.now_ms()) * 1_000_000


class Collector:
    """Consumes an async iterator in a task; lets a test wait for a condition on what came."""

    def __init__(self, source: AsyncIterator[Any]) -> None:
        self.items: list[Any] = []
        self._source = source
        self._cond = asyncio.Condition()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for item in self._source:
            async with self._cond:
                self.items.append(item)
                self._cond.notify_all()

    async def wait_for(
        self, predicate: Callable[[list[Any]], bool], timeout_s: float = 10.0
    ) -> None:
        async with asyncio.timeout(timeout_s), self._cond:
            await self._cond.wait_for(lambda: predicate(self.items))

    async def aclose(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


def events_of(items: list[ConnectionEvent], kind: str) -> list[ConnectionEvent]:
    return [e for e in items if e.kind == kind]


@contextlib.asynccontextmanager
async def backbone_on(
    ex: simulator.Exchange, config: BackboneConfig | None = None, **kw: Any
) -> AsyncIterator[MarketDataBackbone]:
    async with MarketDataBackbone(
        ex.rest_url, ex.ws_url, config=config or fast_config(), clock_ns=exchange_clock_ns(ex), **kw
    ) as bb:
        yield bb
