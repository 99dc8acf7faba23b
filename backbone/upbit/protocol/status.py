"""Messages that carry no market data: the keep-alive answer, error envelopes, and the
``LIST_SUBSCRIPTIONS`` answer.

Keep-alive: the text message ``PING`` (or a ping frame's pong) is answered by::

    {"status": "UP"}                         # the connection is healthy

Error envelope, the same over REST (``name`` is the HTTP status as a number) and the
WebSocket (``name`` is a code string)::

    {"error": {"name": 404, "message": "Code not found"}}
    {"error": {"name": "INVALID_AUTH", "message": "..."}}   # WebSocket: WRONG_FORMAT, NO_TICKET,
                                                          # NO_TYPE, NO_CODES, INVALID_PARAM, ...

``LIST_SUBSCRIPTIONS`` answer, DEFAULT format (Upbit's documented example)::

    {"method": "LIST_SUBSCRIPTIONS",         # SIMPLE: "mthd"
     "result": [                             # SIMPLE: "rslt"
       {"type": "ticker", "codes": ["KRW-BTC", "KRW-ETH"]},          # "ty", "cds"
       {"type": "orderbook", "codes": ["KRW-BTC", "KRW-ETH"], "level": 0}],   # "lv"
     "ticket": "unique uuid"}                # SIMPLE: "tckt"

In SIMPLE format: ``{"mthd": "LIST_SUBSCRIPTIONS", "rslt": [{"ty": "ticker", "cds":
["KRW-BTC"]}], "tckt": "unique uuid"}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import msgspec

from backbone.errors import ProtocolError, UpbitAPIError
from backbone.upbit.protocol._wire import simple_variant

__all__ = [
    "ActiveSubscription",
    "ErrorBody",
    "Status",
    "SubscriptionList",
    "block_seconds",
    "decode_control",
    "error_from_body",
]


@dataclass(frozen=True, slots=True)
class Status:
    """``{"status": ...}``; ``"UP"`` while the connection is healthy."""

    status: str


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    """One entry of a LIST_SUBSCRIPTIONS answer."""

    type: str
    codes: tuple[str, ...]
    level: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SubscriptionList:
    """The subscriptions the server holds for this connection."""

    ticket: str
    subscriptions: tuple[ActiveSubscription, ...]


class _ErrorDetail(msgspec.Struct):
    name: int | str
    message: str = ""


class ErrorBody(msgspec.Struct):
    """An error envelope, REST or WebSocket."""

    error: _ErrorDetail


class _Sub(msgspec.Struct, kw_only=True):
    type: str
    codes: list[str] = []
    level: Decimal | None = None


_SubSimple = simple_variant(_Sub, {"type": "ty", "codes": "cds", "level": "lv"})


class _ListAnswer(msgspec.Struct, kw_only=True):
    method: str
    result: list[_Sub] = []
    ticket: str = ""


_ListAnswerSimple = simple_variant(
    _ListAnswer,
    {"method": "mthd", "result": "rslt", "ticket": "tckt"},
    types={"result": list[_SubSimple]},  # type: ignore[valid-type]
)


class _Control(msgspec.Struct, kw_only=True):
    # Every control key either format may use; decoded in one pass.
    status: str | None = None
    error: _ErrorDetail | None = None
    method: str | None = None
    mthd: str | None = None


_CONTROL: Final = msgspec.json.Decoder(_Control)
_LIST: Final = msgspec.json.Decoder(_ListAnswer)
_LIST_SIMPLE: Final = msgspec.json.Decoder(_ListAnswerSimple)
_ERROR: Final = msgspec.json.Decoder(ErrorBody)


def error_from_body(status: int | None, body: bytes | str, *, path: str = "") -> UpbitAPIError:
    """Build the :class:`UpbitAPIError` an error body describes.

    A body that is not Upbit's envelope (e.g. a proxy's HTML page or the plain-text 429 body)
    still gives an error, whose message is the start of the body.
    """
    try:
        envelope = _ERROR.decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
        return UpbitAPIError(status, str(status or "error"), text.strip()[:200], path=path)
    return UpbitAPIError(status, str(envelope.error.name), envelope.error.message, path=path)


_BLOCK: Final = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s\b|sec|second)", re.IGNORECASE)


def block_seconds(message: str) -> float | None:
    """The block duration a 418 message states (e.g. "Blocked for 5.0 seconds."), if any.

    Upbit documents that the 418 answer carries the block time but not its format; ``None``
    when no duration is found.
    """
    found = _BLOCK.search(message)
    return float(found.group(1)) if found else None


def decode_control(raw: bytes | str) -> Status | SubscriptionList:
    """Decode a WebSocket message that is not market data.

    Returns:
        ``Status`` for ``{"status": ...}``; ``SubscriptionList`` for a LIST_SUBSCRIPTIONS
        answer.

    Raises:
        UpbitAPIError: the message is an error envelope (``status`` is ``None``).
        ProtocolError: anything else; ``raw`` is the message.
    """
    try:
        control = _CONTROL.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ProtocolError(f"malformed websocket message: {exc}", raw) from exc
    if control.error is not None:
        raise UpbitAPIError(None, str(control.error.name), control.error.message)
    if control.status is not None:
        return Status(control.status)
    if control.method is not None or control.mthd is not None:
        try:
            answer = (_LIST if control.method is not None else _LIST_SIMPLE).decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ProtocolError(f"malformed LIST_SUBSCRIPTIONS answer: {exc}", raw) from exc
        return SubscriptionList(
            answer.ticket,
            tuple(ActiveSubscription(s.type, tuple(s.codes), s.level) for s in answer.result),
        )
    raise ProtocolError("websocket message of unknown kind (no type, status or error)", raw)
