"""Firehose mode: pre-encoded frames as fast as the socket takes them, every trade unique.

Each frame is a valid message in the connection's format, shaped like the real payloads. A
trade frame is a pre-encoded template with its ``sequential_id`` spliced in: ids are
``trade_timestamp * 10000 + n``, unique per (code, sequential_id) across the whole exchange.
Tickers and orderbooks repeat one pre-encoded state per code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulator.clock import Clock
from simulator.config import FirehoseConfig
from simulator.connection import Connection, frame_bytes
from simulator.model import Book, MarketModel, Trade
from simulator.wire import ws_orderbook, ws_ticker, ws_trade

_SID_MARK = 99_999_999_999_999_999
_MIXED = ("trade", "ticker", "trade", "orderbook")


class _TradeTemplate:
    __slots__ = ("head", "header", "next_n", "tail", "ts")

    def __init__(self, ts: int, head: bytes, tail: bytes, header: bytes) -> None:
        self.ts = ts
        self.next_n = 0
        self.head = header + head
        self.tail = tail
        self.header = header


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

    def stream_for(self, conn: Connection) -> FirehoseStream:
        return FirehoseStream(self, conn)

    def _state(self, code: str) -> tuple[Trade, Book, Any]:
        model = self.model_of(code)
        now = self.clock.now_ms()
        found = model.last_trade_index(now - model.lag)
        if found is None:
            raise LookupError(code)
        block, i = found
        return model.trade(block, i), model.book_for(block, i), model.ticker_for(block, i)

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
        length = len(head) + len(tail) + len(str(ts * 10_000))
        header = frame_bytes(b"x" * length)[:-length]
        tpl = _TradeTemplate(ts, head.encode(), tail.encode(), header)
        self._templates[key] = tpl
        return tpl

    def trade_frames(self, code: str, simple: bool, listed: bool, count: int) -> list[bytes]:
        out: list[bytes] = []
        while len(out) < count:
            tpl = self._template(code, simple, listed)
            take = min(count - len(out), 10_000 - tpl.next_n)
            base = tpl.ts * 10_000 + tpl.next_n
            head, tail = tpl.head, tpl.tail
            out.extend([head + b"%d" % sid + tail for sid in range(base, base + take)])
            tpl.next_n += take
        self.trades_by_code[code] = self.trades_by_code.get(code, 0) + count
        return out

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

    def next_chunk(self) -> bytes:
        """Return the next chunk of frames (empty once the firehose is done)."""
        channels = self._channels()
        if not channels or self.remaining <= 0:
            return b""
        simple, listed = self.conn.simple, self.conn.listed
        budget = min(self.hub.config.chunk_frames, self.remaining)
        parts: list[bytes] = []
        hub = self.hub
        if channels == ["trade"]:
            code = self._next_code("trade")
            parts = hub.trade_frames(code, simple, listed, budget)
            self.sent["trade"] += budget
            hub.sent["trade"] += budget
        else:
            for _ in range(budget):
                channel = channels[self._step % len(channels)]
                self._step += 1
                code = self._next_code(channel)
                if channel == "trade":
                    parts.extend(hub.trade_frames(code, simple, listed, 1))
                else:
                    parts.append(hub.static_frame(channel, code, simple, listed))
                self.sent[channel] += 1
                hub.sent[channel] += 1
        self.remaining -= budget
        return b"".join(parts)
