"""Helpers for the simulator tests: a plain aiohttp client, written here, not the backbone."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "upbit"
START_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z
SMALL = ["KRW-BTC", "KRW-ETH", "BTC-ETH", "USDT-BTC", "KRW-SHIB", "KRW-IMX"]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def decode(raw: bytes | str) -> Any:
    """Parse a frame or body with every float as an exact Decimal."""
    return json.loads(raw, parse_float=Decimal)


async def get(
    session: aiohttp.ClientSession, url: str
) -> tuple[int, Any, aiohttp.typedefs.LooseHeaders]:
    async with session.get(url) as resp:
        body = await resp.read()
        return resp.status, decode(body), resp.headers


async def get_raw(session: aiohttp.ClientSession, url: str) -> bytes:
    async with session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def subscribe(ws: aiohttp.ClientWebSocketResponse, *objects: dict[str, Any]) -> None:
    await ws.send_str(json.dumps([{"ticket": "test"}, *objects]))


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout_s: float = 10.0) -> Any:
    """Return the next data frame parsed (binary frames only; fails on anything else)."""
    msg = await ws.receive(timeout=timeout_s)
    assert msg.type == aiohttp.WSMsgType.BINARY, msg
    return decode(msg.data)


async def recv_n(ws: aiohttp.ClientWebSocketResponse, n: int, timeout_s: float = 10.0) -> list[Any]:
    return [await recv(ws, timeout_s) for _ in range(n)]


class Client:
    """A WebSocket client that knows how many frames the exchange says it sent it."""

    def __init__(self, exchange: Any, ws: aiohttp.ClientWebSocketResponse, conn_id: int) -> None:
        self.ex = exchange
        self.ws = ws
        self.conn_id = conn_id
        self.received = 0

    async def recv(self, timeout_s: float = 10.0) -> Any:
        frame = await recv(self.ws, timeout_s)
        self.received += 1
        return frame

    def sent(self) -> int:
        info = [c for c in self.ex.connections() if c["id"] == self.conn_id]
        return int(info[0]["frames_total"]) if info else 0

    async def pending(self) -> list[Any]:
        """Settle the exchange and return every frame it has sent this client and not yet read."""
        await self.ex.settle()
        return [await self.recv() for _ in range(self.sent() - self.received)]


async def connect(exchange: Any, session: aiohttp.ClientSession, **kwargs: Any) -> Client:
    """Open a WebSocket and return a Client once the exchange has registered it."""
    before = {c["id"] for c in exchange.connections()}
    ws = await session.ws_connect(exchange.ws_url, **kwargs)
    async with asyncio.timeout(10):
        while True:
            new = [c["id"] for c in exchange.connections() if c["id"] not in before]
            if new:
                return Client(exchange, ws, max(new))
            await asyncio.sleep(0)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
