"""The backbone's settings: one frozen value with visible defaults, passed down.

Only ``tape/`` builds these from flags and files; everything else receives one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from backbone.errors import InvalidArgumentError
from backbone.policy import Backoff
from backbone.upbit.protocol.subscribe import FORMATS

__all__ = ["UPBIT_REST_URL", "UPBIT_WS_URL", "BackboneConfig", "ChannelStrategy"]

UPBIT_REST_URL = "https://api.upbit.com/v1"
UPBIT_WS_URL = "wss://api.upbit.com/websocket/v1"


class ChannelStrategy(StrEnum):
    """How requests and streams may be served: ``AUTO`` lets the router choose from measured
    health (WebSocket first, REST when it fails or cannot serve); ``REST_ONLY`` never opens a
    socket; ``WEBSOCKET_ONLY`` never polls or repairs from REST."""

    AUTO = "auto"
    REST_ONLY = "rest_only"
    WEBSOCKET_ONLY = "websocket_only"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackboneConfig:
    """Every knob of the backbone. The defaults suit api.upbit.com.

    ``stream_strategy``: how the ``stream_*`` methods are served (see
    :class:`ChannelStrategy`).

    WebSocket:
        ``ws_format``: the message format requested (all four decode; SIMPLE is smallest).
        ``ping_interval_s``: a ping frame this often, whatever the traffic.
        ``stall_timeout_s``: no frame and no pong for this long means the socket stalled; it
        is replaced. With the default ping interval a stall is detected within 3 s.
        ``connect_timeout_s``: opening handshake limit.
        ``reconnect``: backoff between attempts (capped at 1 s for the first ones).
        ``ws_connects_per_s``: new connections per second across the backbone (Upbit: 5).
        ``ws_messages_per_s`` / ``ws_messages_per_min``: requests sent per connection
        (Upbit: 5 and 100).
        ``max_codes_per_connection``: (type, code) pairs on one connection; more spread over
        further connections.
        ``ws_startup_grace_s``: a newly wanted symbol waits this long for its socket before
        REST serves it (so a stream does not start with a REST record when the socket is
        about to deliver).

    REST:
        ``rest_requests_per_s``: per rate-limit group (Upbit: 10).
        ``rest_timeout_s``: per request. ``rest_retries``: attempts after a 5xx, a 429 or a
        transport error before the error reaches the caller.
        ``poll_interval_s``: how often a channel the WebSocket cannot serve is polled.
        ``reconcile_interval_s``: how often each WebSocket-served trade stream is checked
        against REST for trades the socket never delivered; ``reconcile_grace_ms``
        (exchange time) leaves the newest trades to the socket; ``reconcile_max_pages``
        bounds one check (500 trades a page); what it cannot reach is reported as a gap.
        ``reconcile_share``: fraction of the trade group's budget the checks may use.
        ``market_refresh_s``: how often the market list (used to reject unknown symbols)
        is refreshed.

    Streams:
        ``trade_buffer``, ``candle_buffer``: records held per consumer; when full the
        producer waits (block-and-count, nothing is dropped).
        ``ticker_buffer``, ``orderbook_buffer``: records held per consumer; when full the
        oldest is dropped, counted and reported by a ``records_dropped`` event.
        ``event_buffer``: events held per ``stream_events`` consumer (block-and-count).
        ``dedup_window_ms``: how far back (exchange time) delivered trade ids are kept for
        de-duplication.

    Memory:
        ``memory_release_s``: how often memory the C allocator holds freed is handed back to
        the operating system (glibc ``malloc_trim``, in a worker thread), so the resident
        set follows what the backbone really holds; ``None``: never.
    """

    stream_strategy: ChannelStrategy = ChannelStrategy.AUTO
    ws_format: str = "DEFAULT"
    ping_interval_s: float = 0.8
    stall_timeout_s: float = 2.0
    connect_timeout_s: float = 5.0
    reconnect: Backoff = field(default_factory=Backoff)
    ws_connects_per_s: int = 5
    ws_messages_per_s: int = 5
    ws_messages_per_min: int = 100
    max_codes_per_connection: int = 300
    ws_startup_grace_s: float = 1.0

    rest_requests_per_s: int = 10
    rest_timeout_s: float = 5.0
    rest_retries: int = 3
    poll_interval_s: float = 0.25
    reconcile_interval_s: float = 5.0
    reconcile_grace_ms: int = 3000
    reconcile_max_pages: int = 4
    reconcile_share: float = 0.5
    market_refresh_s: float = 600.0

    trade_buffer: int = 1_000
    candle_buffer: int = 1_000
    ticker_buffer: int = 500
    orderbook_buffer: int = 256
    event_buffer: int = 1_000
    dedup_window_ms: int = 120_000

    memory_release_s: float | None = 60.0

    def __post_init__(self) -> None:
        if not isinstance(self.stream_strategy, ChannelStrategy):
            raise InvalidArgumentError(
                f"stream_strategy must be a ChannelStrategy, not {self.stream_strategy!r}"
            )
        if self.ws_format not in FORMATS:
            raise InvalidArgumentError(
                f"ws_format {self.ws_format!r} unknown; use one of {', '.join(FORMATS)}"
            )
        if self.ping_interval_s <= 0 or self.stall_timeout_s <= self.ping_interval_s:
            raise InvalidArgumentError("need 0 < ping_interval_s < stall_timeout_s")
        positive = {
            "ws_connects_per_s": self.ws_connects_per_s,
            "ws_messages_per_s": self.ws_messages_per_s,
            "ws_messages_per_min": self.ws_messages_per_min,
            "max_codes_per_connection": self.max_codes_per_connection,
            "rest_requests_per_s": self.rest_requests_per_s,
            "reconcile_max_pages": self.reconcile_max_pages,
            "trade_buffer": self.trade_buffer,
            "candle_buffer": self.candle_buffer,
            "ticker_buffer": self.ticker_buffer,
            "orderbook_buffer": self.orderbook_buffer,
            "event_buffer": self.event_buffer,
        }
        for name, value in positive.items():
            if value < 1:
                raise InvalidArgumentError(f"{name} must be at least 1, not {value}")
        if not 0 < self.reconcile_share <= 1:
            raise InvalidArgumentError("reconcile_share must be in (0, 1]")
        if min(self.poll_interval_s, self.reconcile_interval_s, self.rest_timeout_s) <= 0:
            raise InvalidArgumentError("intervals and timeouts must be positive")
        if self.memory_release_s is not None and self.memory_release_s <= 0:
            raise InvalidArgumentError(
                f"memory_release_s must be positive (or None: never), not {self.memory_release_s}"
            )
