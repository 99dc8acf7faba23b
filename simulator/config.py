"""The exchange's settings: frozen values with visible defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FIREHOSE_SHARES = {
    "trades": {"trade": 1.0},
    "mixed": {"trade": 0.5, "ticker": 0.25, "orderbook": 0.25},
}
"""Each mix's share of ``frames`` (and of ``rate``) by channel."""


@dataclass(frozen=True, slots=True)
class FirehoseConfig:
    """Firehose mode: WebSocket subscriptions get pre-encoded frames instead of the market.

    ``mix`` is ``"trades"`` (trade messages only) or ``"mixed"`` (half trades, a quarter
    tickers, a quarter 30-unit orderbooks). The mix holds per channel, so it holds however a
    client spreads its subscriptions over connections: every connection gets, of each channel
    it subscribes to, that channel's share of ``frames`` (mixed: trade ``frames // 2``, ticker
    ``frames // 4``, orderbook the rest), spread over the codes it subscribed to. One socket
    per data kind, or one socket for all three, both receive ``frames`` frames in the mix.

    ``rate`` (frames a second, real time) paces the frames instead of sending them as fast as
    the socket takes them; each channel gets its share of the rate, so a client subscribed to
    all three channels receives ``rate`` frames a second in the mix. Paced frames leave in
    small bursts (at most every millisecond) and carry the time they were made. Flat out,
    ``chunk_frames`` frames are written to the socket at a time.
    """

    mix: Literal["trades", "mixed"] = "trades"
    frames: int = 1_000_000
    chunk_frames: int = 512
    rate: float | None = None

    def __post_init__(self) -> None:
        if self.mix not in FIREHOSE_SHARES:
            raise ValueError(f"firehose mix must be 'trades' or 'mixed', not {self.mix!r}")
        if self.frames < 0:
            raise ValueError("firehose frames must not be negative")
        if self.chunk_frames < 1:
            raise ValueError("firehose chunk_frames must be at least 1")
        if self.rate is not None and not 0 < self.rate <= 1_000_000:
            raise ValueError("firehose rate must be above 0 and at most 1,000,000 frames/s")

    def budget(self, channel: str) -> int:
        """Return the frames of ``channel`` one subscribed connection gets (0 if not in the mix)."""
        shares = FIREHOSE_SHARES[self.mix]
        if channel not in shares:
            return 0
        *others, last = shares
        if channel != last:
            return int(self.frames * shares[channel])
        # the last channel takes what rounding left, so the budgets add up to ``frames``
        return self.frames - sum(int(self.frames * shares[c]) for c in others)


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
