"""The recorder's settings: one frozen value, built by ``tape record`` from flags or a file."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Final

from backbone.config import BackboneConfig
from recorder.parts import COMPRESSIONS

__all__ = ["CHANNELS", "REST_GROUP_LIMIT_PER_S", "RecorderConfig", "StorageConfig"]

CHANNELS: Final = ("ticker", "trade", "orderbook", "candle")
"""The stream channels the recorder can capture."""

REST_GROUP_LIMIT_PER_S: Final = 10
"""Upbit's quotation REST limit: requests per second per rate-limit group (and IP address)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageConfig:
    """How accepted records reach Parquet.

    Records are journaled (written and fsynced) every ``flush_interval_ms``. The journal is
    rotated into Parquet parts every ``rotation_interval_s``, when a segment reaches
    ``rotation_max_bytes``, and at 00:00 UTC; ``compression`` is the Parquet codec.
    ``max_pending_records`` bounds the records accepted but not yet journaled: beyond it
    :meth:`~recorder.sink.Sink.put` waits until the journal catches up (block and count).
    ``max_unpublished_segments`` bounds the rotated segments waiting for Parquet the same way.

    ``compact_days``: once a UTC day is over, each of its partitions is merged into one part
    (:func:`recorder.compaction.compact`, rows unchanged), so a capture of months stays a few
    files per partition and day instead of one per rotation. It runs on a thread of its
    own: at start for every earlier day, then after each midnight, once the first segment
    begun after it is published (records received before midnight but accepted after its
    rotation are then in), for that day and the one before it.
    """

    flush_interval_ms: int = 250
    rotation_interval_s: float = 300.0
    rotation_max_bytes: int = 32 * 1024 * 1024
    compression: str = "zstd"
    max_pending_records: int = 100_000
    max_unpublished_segments: int = 4
    compact_days: bool = True

    def __post_init__(self) -> None:
        if self.compression not in COMPRESSIONS:
            raise ValueError(
                f"unknown compression {self.compression!r}: choose from {', '.join(COMPRESSIONS)}"
            )
        _positive(
            flush_interval_ms=self.flush_interval_ms,
            rotation_interval_s=self.rotation_interval_s,
            rotation_max_bytes=self.rotation_max_bytes,
            max_pending_records=self.max_pending_records,
            max_unpublished_segments=self.max_unpublished_segments,
        )


def _positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecorderConfig:
    """What to record and how. Every field has a visible default.

    Symbols: ``symbols`` lists markets explicitly; otherwise ``quote`` (e.g. ``"KRW"``)
    records every market of that quote currency, re-reading the market list every
    ``market_refresh_interval_s`` so new listings join and delisted markets leave.
    ``channels`` are the streams recorded (candles in ``candle_timeframe``); ``raw`` keeps
    every raw frame and REST body too (build the backbone with the recorder's raw sink).

    Reference snapshots (``rest_snapshot_interval_s``; 0 turns them off): every interval the
    recorder fetches over REST the tickers and the orderbooks of every recorded symbol, up to
    50 symbols per request (Upbit's ``/v1/ticker`` and ``/v1/orderbook`` take a list), and the
    recent trades and candles of as many symbols, round-robin, as its budget allows (those
    endpoints take one market each). Its budget is a fixed share of Upbit's per-group rate
    limit, kept apart from the backbone's: the snapshots go through the recorder's own REST
    client, paced at ``rest_requests_per_s`` per rate-limit group, and the backbone must be
    given the rest (:attr:`backbone_rest_requests_per_s`; ``tape record`` does). However busy
    the backbone's REST fallback or reconciliation, the snapshots keep their share, and
    together the two never exceed :data:`REST_GROUP_LIMIT_PER_S`.

    Repairs: trades are de-duplicated on ``(symbol, sequential_id)`` over the last
    ``dedupe_window_s`` of deliveries. After the recorder's own downtime, ``backfill``
    fetches the trades missed since the last recorded one (or since the start of a trade gap
    the previous run left open), up to ``backfill_max_days`` back.
    """

    symbols: tuple[str, ...] = ()
    quote: str | None = None
    channels: tuple[str, ...] = CHANNELS
    candle_timeframe: str = "1m"
    market_refresh_interval_s: float = 300.0
    raw: bool = False
    rest_snapshot_interval_s: float = 10.0
    rest_requests_per_s: float = 1.0
    dedupe_window_s: float = 120.0
    backfill: bool = True
    backfill_max_days: int = 7
    storage: StorageConfig = field(default_factory=StorageConfig)

    def __post_init__(self) -> None:
        if self.symbols and self.quote:
            raise ValueError("give either symbols or a quote currency, not both")
        if not self.symbols and not self.quote:
            raise ValueError(
                "nothing to record: give symbols (e.g. KRW-BTC,KRW-ETH) or a quote currency "
                "(e.g. KRW)"
            )
        unknown = [c for c in self.channels if c not in CHANNELS]
        if unknown or not self.channels:
            raise ValueError(
                f"unknown channels {unknown or '(none given)'}: choose from {', '.join(CHANNELS)}"
            )
        _positive(
            market_refresh_interval_s=self.market_refresh_interval_s,
            rest_requests_per_s=self.rest_requests_per_s,
            dedupe_window_s=self.dedupe_window_s,
        )
        if self.rest_snapshot_interval_s < 0:
            raise ValueError("rest_snapshot_interval_s must be 0 (off) or positive")
        if self.rest_requests_per_s > REST_GROUP_LIMIT_PER_S - 1:
            raise ValueError(
                f"rest_requests_per_s must leave the backbone at least 1 of Upbit's "
                f"{REST_GROUP_LIMIT_PER_S} requests per second per group: give at most "
                f"{REST_GROUP_LIMIT_PER_S - 1}"
            )
        if not 0 <= self.backfill_max_days <= 7:
            raise ValueError("backfill_max_days must be between 0 and 7 (Upbit keeps 7 days)")

    @property
    def rest_share_per_s(self) -> int:
        """The whole requests per second per group the reference snapshots reserve (0 when
        they are off)."""
        if self.rest_snapshot_interval_s == 0:
            return 0
        return math.ceil(self.rest_requests_per_s)

    @property
    def backbone_rest_requests_per_s(self) -> int:
        """The ``BackboneConfig.rest_requests_per_s`` to give the recorded backbone: Upbit's
        per-group limit less the snapshots' share."""
        return REST_GROUP_LIMIT_PER_S - self.rest_share_per_s

    def backbone_config(self, **changes: Any) -> BackboneConfig:
        """Return the ``BackboneConfig`` (with ``changes``) for the backbone this recorder
        records: it gets what the reference snapshots leave of Upbit's REST budget."""
        return BackboneConfig(rest_requests_per_s=self.backbone_rest_requests_per_s, **changes)

    def as_settings(self) -> dict[str, Any]:
        """Return the settings as plain JSON values (for the session manifest)."""
        settings: dict[str, Any] = _plain(self)
        return settings


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {item.name: _plain(getattr(value, item.name)) for item in fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
