"""The exchange's settings: frozen values with visible defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True, slots=True)
class FirehoseConfig:
    """Firehose mode: every WebSocket subscription gets ``frames`` pre-encoded frames, flat out.

    ``mix`` is ``"trades"`` (trade messages only) or ``"mixed"`` (half trades, a quarter
    tickers, a quarter 30-unit orderbooks), drawn from the types and codes the connection
    subscribed to. ``chunk_frames`` frames are written to the socket at a time.
    """

    mix: Literal["trades", "mixed"] = "trades"
    frames: int = 1_000_000
    chunk_frames: int = 512


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """Everything about the exchange's behaviour except its seed, markets, address and clock.

    Rate limits count on real monotonic time; set a limit to ``None`` to disable it.
    """

    idle_timeout_s: float = 120.0
    """A WebSocket with no frame in either direction for this long (exchange clock) is closed."""
    rest_limit_per_s: int | None = 10
    """REST requests a second per group (market, ticker, crix-trades, orderbook, candles)."""
    rest_429s_before_block: int = 10
    """429 answers within 10 s after which the client is blocked with 418."""
    rest_block_s: float = 5.0
    """First 418 block; each further block in the same run doubles, up to ``rest_block_max_s``."""
    rest_block_max_s: float = 60.0
    ws_connect_limit_per_s: int | None = 5
    """New WebSocket connections a second (further attempts get HTTP 429)."""
    ws_message_limit_per_s: int | None = 5
    ws_message_limit_per_min: int | None = 100
    ws_violations_before_close: int = 10
    """Requests over the message limits after which the socket gets ``I'm a teapot`` and closes."""
    activity_scale: float = 1.0
    """Multiplies every market's trade rate (history included); at most 100."""
    orderbook_depth: int = 30
    """Units in an orderbook unless the request asks for fewer."""
    history_days: int = 400
    """How far back before the trade-history window (7 days) candles reach."""
    ws_queue_frames: int = 65_536
    """Frames a connection may have waiting; beyond it the connection is closed (slow consumer)."""
    firehose: FirehoseConfig | None = None
    """Set to run in firehose mode (WebSocket data comes from the firehose, not the market)."""

    def __post_init__(self) -> None:
        if self.idle_timeout_s <= 0:
            raise ValueError("idle_timeout_s must be positive")
        if not 0 < self.activity_scale <= 100:
            raise ValueError("activity_scale must be above 0 and at most 100")
        if not 1 <= self.orderbook_depth <= 30:
            raise ValueError("orderbook_depth must be between 1 and 30")
        if self.history_days < 0:
            raise ValueError("history_days must not be negative")
        if self.ws_queue_frames < 16:
            raise ValueError("ws_queue_frames must be at least 16")
