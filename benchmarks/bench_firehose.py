"""How fast the simulator's firehose delivers frames, and that it outruns any client.

Starts ``tape exchange --firehose ...`` in its own process, then for each mix (``trades``:
trade messages only; ``mixed``: half trades, a quarter tickers, a quarter 30-unit orderbooks)
measures frames per second received by:

- ``raw``: a bare TCP reader that only splits WebSocket frame headers (the baseline: about the
  most a Python process can take off the socket, so the rate the exchange can deliver);
- ``websockets``: a receive-and-discard loop over the websockets client (``async for``);
- ``aiohttp``: the same loop over aiohttp's WebSocket client.

and prints each rate with its ratio to ``raw`` measured in the same run. Every run checks that
the frames received equal the frames the exchange reports sent (``/_sim/connections``).

    python benchmarks/bench_firehose.py [--frames 300000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from urllib.parse import urlparse

import aiohttp
import websockets

MARKETS = "KRW-BTC,KRW-ETH,KRW-XRP"
SUBSCRIBE = json.dumps(
    [
        {"ticket": "bench"},
        {"type": "trade", "codes": MARKETS.split(",")},
        {"type": "ticker", "codes": MARKETS.split(",")},
        {"type": "orderbook", "codes": MARKETS.split(",")},
    ]
)


def _masked_text_frame(payload: bytes) -> bytes:
    # Client frames must be masked; a zero mask keeps the payload as is.
    n = len(payload)
    head = bytes((0x81, 0x80 | 126)) + n.to_bytes(2, "big") if n >= 126 else bytes((0x81, 0x80 | n))
    return head + b"\x00\x00\x00\x00" + payload


async def raw_reader(ws_url: str, frames: int) -> int:
    url = urlparse(ws_url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {url.path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    writer.write(_masked_text_frame(SUBSCRIBE.encode()))
    buf = b""
    count = 0
    while count < frames:
        data = await reader.read(1 << 20)
        if not data:
            break
        buf = buf + data if buf else data
        pos, end = 0, len(buf)
        while pos + 2 <= end:
            length = buf[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if pos + 4 > end:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if pos + 10 > end:
                    break
                length = int.from_bytes(buf[pos + 2 : pos + 10], "big")
                head = 10
            if pos + head + length > end:
                break
            pos += head + length
            count += 1
        buf = buf[pos:]
    writer.close()
    return count


async def websockets_loop(ws_url: str, frames: int) -> int:
    count = 0
    async with websockets.connect(ws_url, max_size=None, compression=None) as ws:
        await ws.send(SUBSCRIBE)
        async for _ in ws:
            count += 1
            if count >= frames:
                break
    return count


async def aiohttp_loop(ws_url: str, frames: int) -> int:
    count = 0
    async with aiohttp.ClientSession() as session, session.ws_connect(ws_url, max_msg_size=0) as ws:
        await ws.send_str(SUBSCRIBE)
        async for _ in ws:
            count += 1
            if count >= frames:
                break
    return count


CLIENTS: dict[str, Callable[[str, int], Awaitable[int]]] = {
    "raw": raw_reader,
    "websockets": websockets_loop,
    "aiohttp": aiohttp_loop,
}


def _sent_to_newest(admin_url: str) -> int:
    with urllib.request.urlopen(admin_url + "/connections") as resp:
        connections = json.load(resp)
    return int(max(connections, key=lambda c: c["id"])["frames_total"])


def run_mix(mix: str, frames: int, repeat: int) -> dict[str, float]:
    cmd = [
        sys.executable, "-m", "tape", "exchange", "--markets", MARKETS, "--no-rate-limits",
        "--firehose", mix, "--firehose-frames", str(frames), "--duration", "1h",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        urls = json.loads(proc.stdout.readline())
        asyncio.run(raw_reader(urls["ws_url"], 1000))  # warm-up: the exchange builds its state
        best: dict[str, float] = {}
        for _ in range(repeat):
            for name, client in CLIENTS.items():
                started = time.perf_counter()
                got = asyncio.run(client(urls["ws_url"], frames))
                elapsed = time.perf_counter() - started
                sent = _sent_to_newest(urls["admin_url"])
                if got != frames or sent != frames:
                    raise SystemExit(
                        f"{mix}/{name}: received {got}, exchange sent {sent}, expected {frames}"
                    )
                best[name] = max(best.get(name, 0.0), frames / elapsed)
        return best
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300_000, help="frames per connection")
    parser.add_argument("--repeat", type=int, default=2, help="runs per client (best is kept)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"firehose: {args.frames} frames a connection, best of {args.repeat}, load {load:.1f}")
    for mix in ("trades", "mixed"):
        rates = run_mix(mix, args.frames, args.repeat)
        for name, rate in rates.items():
            ratio = rate / rates["raw"]
            print(f"  {mix:7s} {name:11s} {rate:12,.0f} frames/s   ratio to raw {ratio:.2f}")


if __name__ == "__main__":
    main()
