"""Firehose mode: pre-encoded frames, flat out or paced, every trade unique, the mix per channel.

Each frame is a valid message in the connection's format, shaped like the real payloads. A
trade frame is a pre-encoded template with its ``sequential_id`` spliced in: ids are
``trade_timestamp * 10000 + n``, unique per (code, sequential_id) across the whole exchange.
Tickers and orderbooks repeat one pre-encoded state per code; paced, their ``timestamp`` is
spliced in too, so every frame carries the millisecond it was made.

A connection's budget is per channel (``FirehoseConfig.budget``): the mix holds however a
client spreads its subscriptions over connections.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from functools import lru_cache
from typing import Any

from simulator.clock import Clock
from simulator.config import FIREHOSE_SHARES, FirehoseConfig
from simulator.connection import Connection, frame_bytes
from simulator.model import DAY_MS, Book, MarketModel, Trade
from simulator.wire import ws_orderbook, ws_ticker, ws_trade

CHANNELS = ("trade", "ticker", "orderbook")
_SID_MARK = 99_999_999_999_999_999
_TS_MARK = 1_111_111_111_111  # 13 digits, like every epoch millisecond until 2286
_MIXED = ("trade", "ticker", "trade", "orderbook")
_FLAT_TEMPLATE = 10_000  # trade frames per template flat out (one timestamp each)
_PACED_TEMPLATE = 100  # paced: a fresh template (and timestamp) at least every millisecond


@lru_cache(maxsize=1)
def _four_digits() -> list[bytes]:
    return [b"%04d" % n for n in range(10_000)]


class _TradeTemplate:
    """``size`` consecutive trade frames of one code and format, built once, served as slices."""

    __slots__ = ("blob", "frame_len", "next_n", "size", "ts")

    def __init__(self, ts: int, head: bytes, tail: bytes, size: int) -> None:
        self.ts = ts
        self.size = size
        self.next_n = 0
        # sequential_id = ts * 10000 + n: the ts digits join the head, n is four digits.
        head += b"%d" % ts
        payload_len = len(head) + 4 + len(tail)
        head = frame_bytes(b"x" * payload_len)[:-payload_len] + head
        self.frame_len = len(head) + 4 + len(tail)
        digits = _four_digits()[:size]
        ends = [head + digits[0], *digits[1:-1], digits[-1] + tail] if size > 1 else []
        self.blob = memoryview((tail + head).join(ends) if ends else head + digits[0] + tail)

    def take(self, count: int) -> memoryview:
        start = self.next_n * self.frame_len
        self.next_n += count
        return self.blob[start : self.next_n * self.frame_len]


class FirehoseHub:
    """Exchange-wide firehose state: per-code trade ids and counts of everything sent."""

    def __init__(
        self, config: FirehoseConfig, clock: Clock, model_of: Callable[[str], MarketModel]
    ) -> None:
        self.config = config
        self.clock = clock
        self.model_of = model_of
        self.paced = config.rate is not None
        self.sent: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.trades_by_code: dict[str, int] = {}
        self._last_ts: dict[str, int] = {}
        self._templates: dict[tuple[str, bool, bool], _TradeTemplate] = {}
        self._static: dict[tuple[str, str, bool, bool], tuple[bytes, bytes, bytes]] = {}
        self._stamped: dict[tuple[str, str, bool, bool], tuple[int, bytes]] = {}
        self._states: dict[str, tuple[Trade, Book, Any]] = {}

    def stream_for(self, conn: Connection) -> FirehoseStream:
        return FirehoseStream(self, conn)

    def _state(self, code: str) -> tuple[Trade, Book, Any]:
        # The market's state when the firehose first needs it; the frames repeat it.
        state = self._states.get(code)
        if state is None:
            model = self.model_of(code)
            found = model.last_trade_index(self.clock.now_ms() - model.lag)
            if found is None:
                raise LookupError(code)
            block, i = found
            state = (model.trade(block, i), model.book_for(block, i), model.ticker_for(block, i))
            self._states[code] = state
        return state

    def _template(self, code: str, simple: bool, listed: bool) -> _TradeTemplate:
        key = (code, simple, listed)
        tpl = self._templates.get(key)
        now = self.clock.now_ms()
        if (
            tpl is not None
            and tpl.next_n < tpl.size
            and tpl.ts == self._last_ts.get(code)
            and (not self.paced or tpl.ts >= now)
        ):
            return tpl
        ts = max(now, self._last_ts.get(code, 0) + 1)
        self._last_ts[code] = ts
        trade, book, _ = self._state(code)
        fake = Trade(ts, _SID_MARK, trade.price, trade.volume, trade.side, trade.bid)
        prev = self.model_of(code).prev_close(ts - ts % DAY_MS)
        text = ws_trade(code, fake, prev, Book(ts, book.units, 0), "REALTIME", 0, simple)
        if listed:
            text = "[" + text + "]"
        head, _, tail = text.partition(str(_SID_MARK))
        size = _PACED_TEMPLATE if self.paced else _FLAT_TEMPLATE
        tpl = _TradeTemplate(ts, head.encode(), tail.encode(), size)
        self._templates[key] = tpl
        return tpl

    def trade_blob(self, code: str, simple: bool, listed: bool, count: int) -> list[memoryview]:
        """Return ``count`` consecutive trade frames of ``code`` as a few buffers."""
        out: list[memoryview] = []
        while count > 0:
            tpl = self._template(code, simple, listed)
            take = min(count, tpl.size - tpl.next_n)
            out.append(tpl.take(take))
            count -= take
            self.trades_by_code[code] = self.trades_by_code.get(code, 0) + take
        return out

    def trade_frames(self, code: str, simple: bool, listed: bool, count: int) -> list[memoryview]:
        """Return ``count`` consecutive trade frames of ``code``, one buffer each."""
        out: list[memoryview] = []
        for piece in self.trade_blob(code, simple, listed, count):
            step = self._templates[(code, simple, listed)].frame_len
            out.extend(piece[k : k + step] for k in range(0, len(piece), step))
        return out

    def static_frame(self, channel: str, code: str, simple: bool, listed: bool) -> bytes:
        """Return a ticker or orderbook frame of ``code``, stamped now when paced."""
        key = (channel, code, simple, listed)
        parts = self._static.get(key)
        if parts is None:
            _, book, ticker = self._state(code)
            spec = self.model_of(code).spec
            if channel == "ticker":
                marked = replace(ticker, timestamp=_TS_MARK)
                text = ws_ticker(spec, marked, "REALTIME", 0, simple)
                stamp = ticker.timestamp
            else:
                text = ws_orderbook(code, Book(_TS_MARK, book.units, 0), 30, "REALTIME", 0, simple)
                stamp = book.timestamp
            if listed:
                text = "[" + text + "]"
            head, _, tail = (part.encode() for part in text.partition(str(_TS_MARK)))
            parts = self._static[key] = (head, tail, frame_bytes(head + b"%d" % stamp + tail))
        if not self.paced:
            return parts[2]
        now = self.clock.now_ms()
        stamped = self._stamped.get(key)
        if stamped is None or stamped[0] != now:
            stamped = self._stamped[key] = (now, frame_bytes(parts[0] + b"%d" % now + parts[1]))
        return stamped[1]

    def stats(self) -> dict[str, Any]:
        return {
            "mix": self.config.mix,
            "frames_per_connection": self.config.frames,
            "budget_per_connection": {c: self.config.budget(c) for c in CHANNELS},
            "rate_per_s": self.config.rate,
            "frames_sent": dict(self.sent),
            "frames_total": sum(self.sent.values()),
            "trades_by_code": dict(self.trades_by_code),
        }


class FirehoseStream:
    """The firehose of one connection, following its current subscriptions.

    Flat out, ``next_chunk`` returns up to ``chunk_frames`` frames at once. Paced, it returns
    the frames due by now (real monotonic time since each channel started) and ``wait_s``
    says how long until the next one is due.
    """

    def __init__(self, hub: FirehoseHub, conn: Connection) -> None:
        self.hub = hub
        self.conn = conn
        config = hub.config
        self.budget = {c: config.budget(c) for c in CHANNELS}
        self.sent: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        rate = config.rate or 0.0
        self._rate = {c: rate * FIREHOSE_SHARES[config.mix].get(c, 0.0) for c in CHANNELS}
        self._started: dict[str, float] = {}
        self._step = 0
        self._code_index: dict[str, int] = {}

    def _channels(self) -> list[str]:
        # The subscribed channels with frames left, in the mix's interleaving order.
        kinds = {r.kind for r in self.conn.routes}
        pattern = ("trade",) if self.hub.config.mix == "trades" else _MIXED
        return [c for c in pattern if c in kinds and self.sent[c] < self.budget[c]]

    @property
    def done(self) -> bool:
        return not self._channels()

    def planned(self) -> dict[str, int]:
        """Return the frames this connection gets in all, by channel it subscribes to."""
        kinds = {r.kind for r in self.conn.routes}
        return {c: self.budget[c] for c in CHANNELS if c in kinds and self.budget[c]}

    def _due(self, now: float) -> dict[str, int]:
        # Frames due by ``now`` per channel (flat out: everything left).
        due = {}
        for channel in dict.fromkeys(self._channels()):
            left = self.budget[channel] - self.sent[channel]
            if not self.hub.paced:
                due[channel] = left
                continue
            started = self._started.setdefault(channel, now)
            owed = math.floor(self._rate[channel] * (now - started)) + 1 - self.sent[channel]
            due[channel] = max(0, min(left, owed))
        return due

    def wait_s(self) -> float:
        """Return the seconds until the next frame is due (0: one is due now)."""
        if not self.hub.paced:
            return 0.0
        now = time.monotonic()
        waits = []
        for channel in dict.fromkeys(self._channels()):
            started = self._started.setdefault(channel, now)
            rate = self._rate[channel]
            waits.append(max(0.0, started + self.sent[channel] / rate - now) if rate else 1.0)
        return min(waits, default=1.0)

    def _next_code(self, channel: str) -> str:
        codes = [r.market for r in self.conn.routes if r.kind == channel]
        i = self._code_index.get(channel, 0)
        self._code_index[channel] = i + 1
        return codes[i % len(codes)]

    def next_chunk(self) -> list[bytes | memoryview]:
        """Return the next frames as buffers (empty when none is due or the firehose is done)."""
        due = self._due(time.monotonic())
        total = min(sum(due.values()), self.hub.config.chunk_frames)
        if not total:
            return []
        simple, listed = self.conn.simple, self.conn.listed
        hub = self.hub
        if list(due) == ["trade"]:
            self._count("trade", total)
            return list(hub.trade_blob(self._next_code("trade"), simple, listed, total))
        # Interleave in the mix's order; each chunk serves one code per channel.
        pattern = [c for c in ("trade", "ticker", "trade", "orderbook") if due.get(c)]
        slots: list[str] = []
        left = dict(due)
        step = self._step
        while len(slots) < total:
            channel = pattern[step % len(pattern)]
            step += 1
            if left[channel] > 0:
                slots.append(channel)
                left[channel] -= 1
            elif not any(left[c] > 0 for c in pattern):
                break
        self._step = step % len(pattern)
        frames: dict[str, list[Any]] = {}
        for channel in dict.fromkeys(slots):
            count = slots.count(channel)
            code = self._next_code(channel)
            if channel == "trade":
                frames[channel] = hub.trade_frames(code, simple, listed, count)
            else:
                frames[channel] = [hub.static_frame(channel, code, simple, listed)] * count
            self._count(channel, count)
        cursors = {c: iter(f) for c, f in frames.items()}
        return [b"".join(next(cursors[c]) for c in slots)]

    def _count(self, channel: str, count: int) -> None:
        self.sent[channel] += count
        self.hub.sent[channel] += count
