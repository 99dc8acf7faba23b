"""Firehose mode: pre-encoded frames as fast as the socket takes them, every trade unique.

Each frame is a valid message in the connection's format, shaped like the real payloads. A
trade frame is a pre-encoded template with its ``sequential_id`` spliced in: ids are
``trade_timestamp * 10000 + n``, unique per (code, sequential_id) across the whole exchange.
Tickers and orderbooks repeat one pre-encoded state per code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from simulator.clock import Clock
from simulator.config import FirehoseConfig
from simulator.connection import Connection, frame_bytes
from simulator.model import Book, MarketModel, Trade
from simulator.wire import ws_orderbook, ws_ticker, ws_trade

_SID_MARK = 99_999_999_999_999_999
_MIXED = ("trade", "ticker", "trade", "orderbook")


@lru_cache(maxsize=1)
def _four_digits() -> list[bytes]:
    return [b"%04d" % n for n in range(10_000)]


class _TradeTemplate:
    """10,000 consecutive trade frames of one code and format, built once, served as slices."""

    __slots__ = ("blob", "frame_len", "next_n", "ts")

    def __init__(self, ts: int, head: bytes, tail: bytes) -> None:
        self.ts = ts
        self.next_n = 0
        # sequential_id = ts * 10000 + n: the ts digits join the head, n is four digits.
        head += b"%d" % ts
        payload_len = len(head) + 4 + len(tail)
        head = frame_bytes(b"x" * payload_len)[:-payload_len] + head
        self.frame_len = len(head) + 4 + len(tail)
        digits = _four_digits()
        ends = [head + digits[0], *digits[1:-1], digits[-1] + tail]
        self.blob = memoryview((tail + head).join(ends))

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
        self.sent: dict[str, int] = {"trade": 0, "ticker": 0, "orderbook": 0}
        self.trades_by_code: dict[str, int] = {}
        self._last_ts: dict[str, int] = {}
        self._templates: dict[tuple[str, bool, bool], _TradeTemplate] = {}
        self._static: dict[tuple[str, str, bool, bool], bytes] = {}
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
        if tpl is not None and tpl.next_n < 10_000 and tpl.ts == self._last_ts.get(code):
            return tpl
        ts = max(self.clock.now_ms(), self._last_ts.get(code, 0) + 1)
        self._last_ts[code] = ts
        trade, book, _ = self._state(code)
        fake = Trade(ts, _SID_MARK, trade.price, trade.volume, trade.side, trade.bid)
        model = self.model_of(code)
        prev = model.prev_close(ts - ts % 86_400_000)
        text = ws_trade(code, fake, prev, Book(ts, book.units, 0), "REALTIME", 0, simple)
        if listed:
            text = "[" + text + "]"
        head, _, tail = text.partition(str(_SID_MARK))
        tpl = _TradeTemplate(ts, head.encode(), tail.encode())
        self._templates[key] = tpl
        return tpl

    def trade_blob(self, code: str, simple: bool, listed: bool, count: int) -> list[memoryview]:
        """Return ``count`` consecutive trade frames of ``code`` as a few buffers."""
        out: list[memoryview] = []
        while count > 0:
            tpl = self._template(code, simple, listed)
            take = min(count, 10_000 - tpl.next_n)
            out.append(tpl.take(take))
            count -= take
            self.trades_by_code[code] = self.trades_by_code.get(code, 0) + take
        return out

    def trade_frames(self, code: str, simple: bool, listed: bool, count: int) -> list[memoryview]:
        """Return ``count`` consecutive trade frames of ``code``, one buffer each."""
        out: list[memoryview] = []
        for piece in self.trade_blob(code, simple, listed, count):
            step = len(piece) // (len(piece) // self._frame_len(code, simple, listed) or 1)
            out.extend(piece[k : k + step] for k in range(0, len(piece), step))
        return out

    def _frame_len(self, code: str, simple: bool, listed: bool) -> int:
        return self._templates[(code, simple, listed)].frame_len

    def static_frame(self, channel: str, code: str, simple: bool, listed: bool) -> bytes:
        key = (channel, code, simple, listed)
        frame = self._static.get(key)
        if frame is None:
            _, book, ticker = self._state(code)
            model = self.model_of(code)
            if channel == "ticker":
                text = ws_ticker(model.spec, ticker, "REALTIME", 0, simple)
            else:
                text = ws_orderbook(code, book, 30, "REALTIME", 0, simple)
            if listed:
                text = "[" + text + "]"
            frame = self._static[key] = frame_bytes(text.encode())
        return frame

    def stats(self) -> dict[str, Any]:
        return {
            "mix": self.config.mix,
            "frames_per_connection": self.config.frames,
            "frames_sent": dict(self.sent),
            "frames_total": sum(self.sent.values()),
            "trades_by_code": dict(self.trades_by_code),
        }


class FirehoseStream:
    """The firehose of one connection, following its current subscriptions."""

    def __init__(self, hub: FirehoseHub, conn: Connection) -> None:
        self.hub = hub
        self.conn = conn
        self.remaining = hub.config.frames
        self.sent: dict[str, int] = {"trade": 0, "ticker": 0, "orderbook": 0}
        self._step = 0
        self._code_index: dict[str, int] = {}

    @property
    def done(self) -> bool:
        return self.remaining <= 0 or not self._channels()

    def _channels(self) -> list[str]:
        kinds = {r.kind for r in self.conn.routes}
        pattern = ("trade",) if self.hub.config.mix == "trades" else _MIXED
        return [c for c in pattern if c in kinds]

    def _next_code(self, channel: str) -> str:
        codes = [r.market for r in self.conn.routes if r.kind == channel]
        i = self._code_index.get(channel, 0)
        self._code_index[channel] = i + 1
        return codes[i % len(codes)]

    def next_chunk(self) -> list[bytes | memoryview]:
        """Return the next chunk of frames as buffers (empty once the firehose is done)."""
        channels = self._channels()
        if not channels or self.remaining <= 0:
            return []
        simple, listed = self.conn.simple, self.conn.listed
        budget = min(self.hub.config.chunk_frames, self.remaining)
        hub = self.hub
        self.remaining -= budget
        if channels == ["trade"]:
            self.sent["trade"] += budget
            hub.sent["trade"] += budget
            return list(hub.trade_blob(self._next_code("trade"), simple, listed, budget))
        # One pattern position per frame; each chunk serves one code per channel.
        period = len(channels)
        slots: list[bytes | memoryview] = [b""] * budget
        for offset, channel in enumerate(channels):
            first = (offset - self._step) % period
            count = len(range(first, budget, period))
            if not count:
                continue
            code = self._next_code(channel)
            if channel == "trade":
                frames = hub.trade_frames(code, simple, listed, count)
            else:
                frames = [memoryview(hub.static_frame(channel, code, simple, listed))] * count
            slots[first::period] = frames
            self.sent[channel] += count
            hub.sent[channel] += count
        self._step = (self._step + budget) % period
        return [b"".join(slots)]
