"""Every error the backbone raises, grouped by what the caller does next.

::

    BackboneError
    ├── TransportError            the network failed (refused, reset, timed out): retry
    │   └── StallError            an open socket went silent past the stall timeout: reconnect
    ├── RateLimited               Upbit said 429 / 418: wait ``retry_after_s``, then retry
    ├── UpbitAPIError             Upbit answered with an error body
    │                             (``retryable``: 5xx retry, 4xx fix the request)
    ├── ProtocolError             a payload we cannot understand; ``raw`` holds it as received
    └── UsageError                the caller asked for something impossible: fix the call
        ├── UnknownSymbolError    (also a ValueError) a symbol Upbit does not list
        ├── InvalidArgumentError  (also a ValueError) a bad timeframe, count, time, ...
        └── ClosedError           the resource is closed, or was never opened

Third-party exceptions (aiohttp, msgspec) are translated at the boundary with
``raise ... from exc``; callers never need to import those libraries to handle an error.
"""

from __future__ import annotations

__all__ = [
    "BackboneError",
    "ClosedError",
    "InvalidArgumentError",
    "ProtocolError",
    "RateLimited",
    "StallError",
    "TransportError",
    "UnknownSymbolError",
    "UpbitAPIError",
    "UsageError",
]


class BackboneError(Exception):
    """Base of every error the backbone raises."""


class TransportError(BackboneError):
    """The connection failed, was reset or timed out. Retry; the backbone does so itself."""


class StallError(TransportError):
    """An open WebSocket sent nothing, not even a pong, for ``silent_s`` seconds."""

    def __init__(self, silent_s: float) -> None:
        super().__init__(f"websocket silent for {silent_s:.2f} s (no data, no pong)")
        self.silent_s = silent_s


class RateLimited(BackboneError):
    """Upbit refused the request for exceeding its rate limit (429) or blocked us (418).

    Wait ``retry_after_s`` seconds before the next request of the same group.
    """

    def __init__(
        self, status: int, group: str | None, retry_after_s: float, message: str = ""
    ) -> None:
        what = "blocked (418)" if status == 418 else "rate limited (429)"
        super().__init__(
            f"Upbit {what} on group {group or '?'}: retry after {retry_after_s:.2f} s"
            + (f" ({message})" if message else "")
        )
        self.status = status
        self.group = group
        self.retry_after_s = retry_after_s


class UpbitAPIError(BackboneError):
    """Upbit answered with an error body ``{"error": {"name": ..., "message": ...}}``.

    ``status`` is the HTTP status (``None`` for an error sent over the WebSocket). A 4xx is
    the request's fault: fix it, retrying will not help. A 5xx (``retryable``) is Upbit's:
    retry later.
    """

    def __init__(self, status: int | None, name: str, message: str, *, path: str = "") -> None:
        where = f" on {path}" if path else ""
        super().__init__(
            f"Upbit error {status if status is not None else 'ws'} {name}{where}: {message}"
        )
        self.status = status
        self.name = name
        self.message = message
        self.path = path

    @property
    def retryable(self) -> bool:
        """True for server-side errors (5xx): the same request may succeed later."""
        return self.status is not None and self.status >= 500


class ProtocolError(BackboneError):
    """A frame or body that does not match Upbit's protocol. ``raw`` is it, as received.

    The backbone counts and logs these and keeps the stream running; a caller of the
    protocol functions should do the same, or report ``raw`` as a bug.
    """

    def __init__(self, message: str, raw: object) -> None:
        super().__init__(message)
        self.raw = raw


class UsageError(BackboneError):
    """The call itself is wrong; change the call."""


class UnknownSymbolError(UsageError, ValueError):
    """``symbol`` is not in Upbit's market list. Check the spelling (e.g. ``KRW-BTC``)."""

    def __init__(self, symbol: str, known: int | None = None) -> None:
        hint = f" (of {known} listed markets)" if known is not None else ""
        super().__init__(
            f"unknown symbol {symbol!r}: Upbit does not list it{hint}; "
            "use the QUOTE-BASE form, upper case, e.g. 'KRW-BTC'"
        )
        self.symbol = symbol


class InvalidArgumentError(UsageError, ValueError):
    """An argument out of range or of the wrong form; the message says which and why."""


class ClosedError(UsageError):
    """The resource was used before it was opened, or after it was closed."""
