"""Rate-limit bookkeeping Upbit sends with every REST response.

``Remaining-Req: group=ticker; min=600; sec=9``

- ``group``: the rate-limit group the request counted against (``market``, ``candles``,
  ``crix-trades``, ``ticker``, ``orderbook``, ``origin``, ...);
- ``sec``: requests still allowed in the current second (10-per-second groups say 9 after the
  first call);
- ``min``: deprecated, a fixed value kept for compatibility; tape ignores it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from backbone.errors import ProtocolError

__all__ = ["Quota", "parse_remaining_req"]

_FIELD: Final = re.compile(r"\s*([a-z_]+)\s*=\s*([^;]*?)\s*(?:;|$)")


@dataclass(frozen=True, slots=True)
class Quota:
    """What a ``Remaining-Req`` header said: ``remaining_s`` more calls this second."""

    group: str
    remaining_s: int
    remaining_min: int | None = None


def parse_remaining_req(header: str) -> Quota:
    """Parse a ``Remaining-Req`` header value.

    Raises:
        ProtocolError: no ``group`` or no integer ``sec`` field; ``raw`` is the header.
    """
    fields = {m.group(1): m.group(2) for m in _FIELD.finditer(header)}
    group = fields.get("group")
    sec = fields.get("sec")
    if not group or sec is None or not sec.isdigit():
        raise ProtocolError(
            f"Remaining-Req header {header!r} lacks a group or an integer sec", header
        )
    minute = fields.get("min")
    return Quota(group, int(sec), int(minute) if minute and minute.isdigit() else None)
