"""One WebSocket connection's outbound side: a bounded frame queue and its single sender loop.

Frames are written straight to the transport as unmasked binary WebSocket frames, many per
write. Overflow policy: a connection with more than ``ExchangeConfig.ws_queue_frames`` frames
waiting is a slow consumer and is closed (close code 1008); nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from simulator.clock import Clock

if TYPE_CHECKING:
    from simulator.firehose import FirehoseStream

OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8


def frame_bytes(payload: bytes, opcode: int = OP_BINARY) -> bytes:
    """Return one final, unmasked server frame carrying ``payload``."""
    n = len(payload)
    first = 0x80 | opcode
    if n < 126:
        return bytes((first, n)) + payload
    if n < 65536:
        return bytes((first, 126)) + n.to_bytes(2, "big") + payload
    return bytes((first, 127)) + n.to_bytes(8, "big") + payload


def close_frame(code: int, reason: str) -> bytes:
    return frame_bytes(code.to_bytes(2, "big") + reason.encode()[:120], OP_CLOSE)


@dataclass(slots=True)
class Route:
    """One subscribed (type, code) of a connection: ``code`` as the client wrote it."""

    kind: str
    code: str
    market: str
    depth: int
    level: int


class Connection:
    """The exchange's view of one WebSocket: its subscriptions, its queue and its counters."""

    def __init__(
        self,
        connection_id: int,
        ws: web.WebSocketResponse,
        request: web.Request,
        clock: Clock,
        max_frames: int,
        opened_ms: int,
        stats: dict[str, int] | None = None,
    ) -> None:
        self.id = connection_id
        self.ws = ws
        self.request = request
        self.clock = clock
        self.max_frames = max_frames
        self.opened_ms = opened_ms
        self.last_activity_ms = opened_ms
        self.format = "DEFAULT"
        self.routes: list[Route] = []
        self.list_items: list[tuple[str, list[str], int | None]] = []
        self.ticket = ""
        self.closed = False
        self.close_reason = ""
        self.frames_sent: dict[str, int] = {}
        self.bytes_sent = 0
        self.frames_withheld = 0
        self.requests = 0
        self.violations = 0
        self.firehose: FirehoseStream | None = None
        self._stats = stats if stats is not None else {}
        self._queue: deque[tuple[int, bytes, str]] = deque()
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()

    @property
    def simple(self) -> bool:
        return self.format in ("SIMPLE", "SIMPLE_LIST")

    @property
    def listed(self) -> bool:
        return self.format in ("JSON_LIST", "SIMPLE_LIST")

    def enqueue(
        self, payload: bytes, channel: str, not_before_ms: int = 0, event_ms: int = 0
    ) -> None:
        """Queue one binary frame (sent once the exchange clock reaches ``not_before_ms``).

        ``event_ms`` is when the exchange produced it: the connection is active then.
        """
        if self.closed:
            return
        if event_ms > self.last_activity_ms:
            self.last_activity_ms = event_ms
        self._queue.append((not_before_ms, payload, channel))
        if len(self._queue) > self.max_frames:
            self._stats["ws_slow_closed"] = self._stats.get("ws_slow_closed", 0) + 1
            self.close(1008, "slow consumer: too many frames waiting")
            return
        self._flushed.clear()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def _transport(self) -> asyncio.Transport | None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            return None
        return transport

    def write_raw(self, data: bytes | memoryview) -> bool:
        transport = self._transport()
        if transport is None:
            return False
        transport.write(data)
        return True

    def close(self, code: int, reason: str) -> None:
        """Send a close frame and close the socket once what is buffered has been written."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._queue.clear()
        transport = self._transport()
        if transport is not None:
            transport.write(close_frame(code, reason))
            transport.close()
        self._flushed.set()
        self._wake.set()

    def abort(self, reason: str) -> None:
        """Drop the TCP connection without a close frame (the client sees an abnormal close)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._queue.clear()
        transport = self._transport()
        if transport is not None:
            transport.abort()
        self._flushed.set()
        self._wake.set()

    async def flushed(self) -> None:
        """Wait until every frame that is due has been written to the socket."""
        await self._flushed.wait()

    async def _drain(self) -> None:
        # aiohttp's own flow control: wait while the transport has paused writing.
        protocol: Any = self.request.protocol
        if getattr(protocol, "_paused", False):
            await protocol._drain_helper()

    async def run_sender(self) -> None:
        """Write queued frames until the connection closes; the only writer of data frames."""
        queue = self._queue
        while not self.closed:
            firehose = (
                self.firehose if self.firehose is not None and not self.firehose.done else None
            )
            if firehose is not None:
                buffers = firehose.next_chunk()
                if buffers and all(self.write_raw(b) for b in buffers):
                    self.bytes_sent += sum(len(b) for b in buffers)
                    await self._drain()
                    continue
            if not queue:
                self._flushed.set()
                self._wake.clear()
                if firehose is None:
                    await self._wake.wait()
                else:  # paced: sleep until the next frame is due, or until woken
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(firehose.wait_s()):
                            await self._wake.wait()
                continue
            now = self.clock.now_ms()
            due = queue[0][0]
            if due > now:
                self._flushed.set()
                self._wake.clear()
                sleeper = asyncio.ensure_future(self.clock.sleep_until(due))
                waker = asyncio.ensure_future(self._wake.wait())
                try:
                    await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
                finally:
                    sleeper.cancel()
                    waker.cancel()
                continue
            parts: list[bytes] = []
            while queue and queue[0][0] <= now and len(parts) < 512:
                _, payload, channel = queue.popleft()
                parts.append(frame_bytes(payload))
                self.frames_sent[channel] = self.frames_sent.get(channel, 0) + 1
            data = b"".join(parts)
            if not self.write_raw(data):
                self.closed = True
                break
            self.bytes_sent += len(data)
            self.last_activity_ms = max(self.last_activity_ms, now)
            await self._drain()
        self._flushed.set()

    def info(self) -> dict[str, Any]:
        """Return what this connection was sent and what it is subscribed to (admin view)."""
        fh = self.firehose
        return {
            "id": self.id,
            "opened_ms": self.opened_ms,
            "closed": self.closed,
            "close_reason": self.close_reason,
            "format": self.format,
            "subscriptions": [[r.kind, r.code] for r in self.routes],
            "frames_sent": dict(self.frames_sent) if fh is None else dict(fh.sent),
            "firehose_planned": None if fh is None else fh.planned(),
            "frames_total": sum(self.frames_sent.values()) if fh is None else sum(fh.sent.values()),
            "bytes_sent": self.bytes_sent,
            "frames_withheld": self.frames_withheld,
            "queued": len(self._queue),
            "requests": self.requests,
        }
