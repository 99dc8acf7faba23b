"""Market list: ``GET /v1/market/all`` (with ``is_details=true``).

Upbit's documented example, keys annotated::

    [
      {
        "market": "KRW-BTC",                 # QUOTE-BASE code -> symbol, quote/base currency
        "korean_name": "비트코인",
        "english_name": "Bitcoin",
        "market_event": {                    # only with is_details=true
          "warning": false,                  # designated-warning flag -> warning
          "caution": {                       # alerts; the true ones -> caution
            "PRICE_FLUCTUATIONS": false,
            "TRADING_VOLUME_SOARING": false,
            "DEPOSIT_AMOUNT_SOARING": false,
            "GLOBAL_PRICE_DIFFERENCES": false,
            "CONCENTRATION_OF_SMALL_ACCOUNTS": false
          }
        }
      }
    ]

Before 2024-11-20, details came as ``"market_warning": "NONE" | "CAUTION"`` instead of
``market_event``; ``CAUTION`` there is read as the warning flag. The market list has no
WebSocket form (no SIMPLE variant).
"""

from __future__ import annotations

from typing import Final

import msgspec

from backbone.errors import ProtocolError
from backbone.models import Market
from backbone.upbit.protocol._wire import decode_body

__all__ = ["parse_rest_markets", "split_symbol"]

_LEGACY_WARNING: Final = {"NONE": False, "CAUTION": True}


class _MarketEvent(msgspec.Struct, kw_only=True):
    warning: bool = False
    caution: dict[str, bool] = {}


class _RestMarket(msgspec.Struct, kw_only=True):
    market: str
    korean_name: str
    english_name: str
    market_event: _MarketEvent | None = None
    market_warning: str | None = None


_DECODER: Final = msgspec.json.Decoder(list[_RestMarket])


def split_symbol(symbol: str, raw: object = None) -> tuple[str, str]:
    """``"KRW-BTC"`` -> ``("KRW", "BTC")``.

    Raises:
        ProtocolError: not of the QUOTE-BASE form.
    """
    quote, sep, base = symbol.partition("-")
    if not sep or not quote or not base:
        raise ProtocolError(f"market code {symbol!r} is not of the form QUOTE-BASE", raw)
    return quote, base


def _market(item: _RestMarket, raw: object) -> Market:
    quote, base = split_symbol(item.market, raw)
    if item.market_event is not None:
        warning = item.market_event.warning
        caution = tuple(name for name, on in item.market_event.caution.items() if on)
    else:
        legacy = item.market_warning or "NONE"
        if legacy not in _LEGACY_WARNING:
            raise ProtocolError(f"unknown market_warning value {legacy!r}", raw)
        warning, caution = _LEGACY_WARNING[legacy], ()
    return Market(
        symbol=item.market,
        korean_name=item.korean_name,
        english_name=item.english_name,
        quote_currency=quote,
        base_currency=base,
        warning=warning,
        caution=caution,
    )


def parse_rest_markets(body: object) -> list[Market]:
    """Decode a ``/v1/market/all`` body into :class:`~backbone.models.Market` records.

    Raises:
        ProtocolError: the body has another shape; ``raw`` is the body.
    """
    items: list[_RestMarket] = decode_body(_DECODER, body, "REST market list")
    return [_market(item, body) for item in items]
