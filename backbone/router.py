"""Which channel serves a request: decided from measured health, not fixed guesses.

The session feeds :class:`ChannelMetrics` as it runs (message arrival, latency samples,
errors, connection state); :class:`ChannelRouter` reads them to answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from backbone.config import BackboneConfig, ChannelStrategy
from backbone.errors import InvalidArgumentError
from backbone.models import Source

__all__ = [
    "REQUEST_TYPES",
    "ChannelHealth",
    "ChannelMetrics",
    "ChannelRouter",
    "ChannelStrategy",
    "FallbackPlan",
]

REQUEST_TYPES = ("ticker", "trade", "orderbook", "candle", "markets", "history")
"""What a caller can ask for; ``history`` is anything in the past (trades, candle pages)."""

_WS_TYPES = frozenset({"ticker", "trade", "orderbook", "candle"})


@dataclass(slots=True)
class ChannelMetrics:
    """Running measurements of one channel, updated by the session (cheap to update)."""

    up: bool = False
    last_message_monotonic: dict[str, float] = field(default_factory=dict)
    latency_s: float | None = None
    errors: int = 0
    consecutive_errors: int = 0
    last_error: str = ""

    def message(self, kind: str, now: float) -> None:
        """A message of ``kind`` arrived at ``now`` (monotonic seconds)."""
        self.last_message_monotonic[kind] = now

    def latency(self, sample_s: float) -> None:
        """Fold one latency sample into the moving average."""
        self.latency_s = (
            sample_s if self.latency_s is None else 0.9 * self.latency_s + 0.1 * sample_s
        )

    def success(self) -> None:
        """A request or connection succeeded: the error streak ends."""
        self.consecutive_errors = 0

    def failure(self, reason: str) -> None:
        """A request or connection failed."""
        self.errors += 1
        self.consecutive_errors += 1
        self.last_error = reason


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """One channel's health as measured now."""

    channel: Source
    healthy: bool
    up: bool
    last_message_age_s: dict[str, float]
    latency_s: float | None
    errors: int
    consecutive_errors: int
    last_error: str


@dataclass(frozen=True, slots=True)
class FallbackPlan:
    """What to do when ``failed`` stops serving: use ``use`` (polling every
    ``poll_interval_s`` when it is REST) and try ``failed`` again after ``retry_after_s``."""

    failed: Source
    use: Source | None
    poll_interval_s: float
    retry_after_s: float
    reason: str


class ChannelRouter:
    """Answers "WebSocket or REST?" for each request from the measured health of both."""

    def __init__(
        self,
        *,
        config: BackboneConfig | None = None,
        websocket: ChannelMetrics | None = None,
        rest: ChannelMetrics | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config or BackboneConfig()
        self.websocket = websocket or ChannelMetrics()
        self.rest = rest or ChannelMetrics(up=True)
        self._monotonic = monotonic

    def _health(self, channel: Source, metrics: ChannelMetrics, now: float) -> ChannelHealth:
        ages = {k: now - t for k, t in metrics.last_message_monotonic.items()}
        healthy = metrics.up and metrics.consecutive_errors < 3
        return ChannelHealth(
            channel,
            healthy,
            metrics.up,
            ages,
            metrics.latency_s,
            metrics.errors,
            metrics.consecutive_errors,
            metrics.last_error,
        )

    def evaluate_channel_health(self) -> dict[Source, ChannelHealth]:
        """Both channels' health now: up, message age per data kind, latency, errors."""
        now = self._monotonic()
        return {
            "websocket": self._health("websocket", self.websocket, now),
            "rest": self._health("rest", self.rest, now),
        }

    def should_use_websocket(self, request_type: str, realtime: bool = False) -> bool:
        """True if the WebSocket should serve ``request_type``.

        The socket only streams (ticker, trade, orderbook, candle); a one-off snapshot is
        REST's job unless ``realtime`` asks for the freshest value, which the socket gives when
        it is up and has been delivering.

        Raises:
            InvalidArgumentError: an unknown request type.
        """
        if request_type not in REQUEST_TYPES:
            raise InvalidArgumentError(
                f"unknown request type {request_type!r}; use one of {', '.join(REQUEST_TYPES)}"
            )
        if request_type not in _WS_TYPES or not realtime:
            return False
        return self.evaluate_channel_health()["websocket"].healthy

    def choose_optimal_channel(
        self,
        request_type: str,
        symbol: str,
        realtime: bool = False,
        strategy: ChannelStrategy = ChannelStrategy.AUTO,
    ) -> Source:
        """The channel that should serve ``request_type`` for ``symbol``.

        Raises:
            InvalidArgumentError: ``WEBSOCKET_ONLY`` for something the socket cannot serve,
                or an unknown request type.
        """
        del symbol  # health is measured per channel and kind; kept for the API's symmetry
        if strategy is ChannelStrategy.REST_ONLY:
            return "rest"
        if strategy is ChannelStrategy.WEBSOCKET_ONLY:
            if request_type not in _WS_TYPES:
                raise InvalidArgumentError(f"the WebSocket cannot serve {request_type!r}")
            return "websocket"
        if self.should_use_websocket(request_type, realtime):
            return "websocket"
        rest = self.evaluate_channel_health()["rest"]
        if not rest.healthy and request_type in _WS_TYPES and self.websocket.up:
            return "websocket"
        return "rest"

    def get_fallback_strategy(self, failed_channel: Source) -> FallbackPlan:
        """What to do while ``failed_channel`` is failing."""
        if failed_channel == "websocket":
            return FallbackPlan(
                "websocket",
                "rest",
                self.config.poll_interval_s,
                self.config.reconnect.initial_s,
                "stream from REST polling; reconnect with backoff; repair trades on return",
            )
        ws_up = self.websocket.up
        return FallbackPlan(
            "rest",
            "websocket" if ws_up else None,
            self.config.poll_interval_s,
            1.0,
            "serve streams from the WebSocket; retry REST after a pause"
            if ws_up
            else "no channel is up: retry both with backoff",
        )
