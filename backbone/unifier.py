"""One model whatever the source: WebSocket messages and REST bodies into records."""

from __future__ import annotations

import time
from collections.abc import Callable

from backbone.models import Market, MarketRecord
from backbone.upbit.protocol.messages import decode_rest, decode_ws
from backbone.upbit.protocol.status import Status, SubscriptionList

__all__ = ["DataUnifier"]


class DataUnifier:
    """Turn what Upbit sends, on either channel, into :mod:`backbone.models` records.

    For the same market state, a record unified from REST and one unified from the WebSocket
    agree on every field both channels carry; a field only one channel sends is ``None`` in
    the other's record, and ``source`` / ``received_ns`` differ by nature.

    ``clock_ns`` stamps ``received_ns`` when the caller gives none; pass the time the bytes
    arrived when you have it.
    """

    __slots__ = ("_clock_ns",)

    def __init__(self, *, clock_ns: Callable[[], int] = time.time_ns) -> None:
        self._clock_ns = clock_ns

    def unify_ws(
        self, raw: bytes | str, *, received_ns: int | None = None
    ) -> MarketRecord | list[MarketRecord] | None:
        """Unify one WebSocket message (DEFAULT, SIMPLE, JSON_LIST or SIMPLE_LIST).

        Returns:
            The record; a list of records for the LIST formats; ``None`` for a message that
            carries no market data (``{"status":"UP"}``, a LIST_SUBSCRIPTIONS answer).

        Raises:
            ProtocolError: malformed or unknown input, with ``raw`` attached. Count it, log
                it, and keep reading: one bad frame must not end a stream.
            UpbitAPIError: the message is Upbit's error envelope (e.g. ``WRONG_FORMAT``).
        """
        result = decode_ws(
            raw, received_ns=self._clock_ns() if received_ns is None else received_ns
        )
        if type(result) is Status or type(result) is SubscriptionList:
            return None
        return result  # type: ignore[return-value]

    def unify_rest(
        self, path: str, payload: object, *, received_ns: int | None = None
    ) -> list[MarketRecord] | list[Market]:
        """Unify the body REST ``path`` answered, e.g. ``"/v1/ticker"``,
        ``"/v1/trades/ticks"``, ``"/v1/orderbook"``, ``"/v1/candles/minutes/1"``,
        ``"/v1/market/all"``.

        ``payload`` is the body as bytes or text, or already decoded (lists and dicts with
        Decimal or int numbers; a float would already have lost exactness).

        Returns:
            The records in Upbit's order (trades and candles newest first).

        Raises:
            ProtocolError: the body does not match the path; ``raw`` is the body.
            InvalidArgumentError: a path tape has no decoder for.
        """
        stamp = self._clock_ns() if received_ns is None else received_ns
        records = decode_rest(path, payload, received_ns=stamp)
        return records  # type: ignore[return-value]
