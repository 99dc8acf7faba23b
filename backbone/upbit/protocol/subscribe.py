"""What we send over the WebSocket: subscription requests, LIST_SUBSCRIPTIONS, PING.

A request is one JSON array sent as one text message::

    [{"ticket": "tape-3f2a..."},                              # any unique id
     {"type": "trade", "codes": ["KRW-BTC", "KRW-ETH"]},      # one object per data type
     {"type": "orderbook", "codes": ["KRW-BTC.15"], "level": 0},
     {"type": "ticker", "codes": ["KRW-BTC"], "is_only_realtime": true},
     {"format": "DEFAULT"}]                                   # or SIMPLE, JSON_LIST, SIMPLE_LIST

Upbit replaces a connection's whole subscription set with each request: to add a code, send
the full set again. Codes must be upper case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import msgspec

from backbone.errors import InvalidArgumentError

__all__ = [
    "FORMATS",
    "PING",
    "Subscription",
    "build_list_subscriptions_frame",
    "build_subscribe_frame",
]

FORMATS: Final = ("DEFAULT", "SIMPLE", "JSON_LIST", "SIMPLE_LIST")
"""The message formats Upbit offers."""

PING: Final = "PING"
"""Text keep-alive; Upbit answers ``{"status":"UP"}``. It counts toward the message limit."""

_ENCODER: Final = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True, slots=True)
class Subscription:
    """One data type object of a request: ``type`` for ``codes``."""

    type: str
    codes: tuple[str, ...]
    is_only_snapshot: bool = False
    is_only_realtime: bool = False
    level: Decimal | None = None


def _type_object(sub: Subscription) -> dict[str, Any]:
    if not sub.codes:
        raise InvalidArgumentError(f"subscription to {sub.type!r} without codes")
    for code in sub.codes:
        if code != code.upper():
            raise InvalidArgumentError(f"code {code!r} must be upper case")
    obj: dict[str, Any] = {"type": sub.type, "codes": list(sub.codes)}
    if sub.level is not None:
        obj["level"] = sub.level
    if sub.is_only_snapshot:
        obj["is_only_snapshot"] = True
    if sub.is_only_realtime:
        obj["is_only_realtime"] = True
    return obj


def build_subscribe_frame(
    ticket: str, subscriptions: Iterable[Subscription], *, fmt: str = "DEFAULT"
) -> bytes:
    """Build the request that makes ``subscriptions`` a connection's whole set.

    Send it as a *text* message (decode the bytes as UTF-8).

    Raises:
        InvalidArgumentError: no subscription, a subscription without codes, a lower-case
            code, or an unknown format.
    """
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    objects = [_type_object(sub) for sub in subscriptions]
    if not objects:
        raise InvalidArgumentError("a subscription request needs at least one data type")
    return _ENCODER.encode([{"ticket": ticket}, *objects, {"format": fmt}])


def build_list_subscriptions_frame(ticket: str, *, fmt: str = "DEFAULT") -> bytes:
    """Build a LIST_SUBSCRIPTIONS request (answered by a
    :class:`~backbone.upbit.protocol.status.SubscriptionList`)."""
    return _ENCODER.encode([{"ticket": ticket}, {"method": "LIST_SUBSCRIPTIONS"}, {"format": fmt}])
