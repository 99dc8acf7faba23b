"""Which trades were delivered, per symbol: de-duplication on ``(symbol, sequential_id)``
and the horizon up to which REST has confirmed that nothing is missing.

Upbit's ``sequential_id`` is unique within a market but neither contiguous nor ordered, so it
cannot reveal a gap by itself; completeness comes from comparing against REST. The ledger
holds, per symbol:

- the ids delivered recently (their exchange times), to drop a trade seen a second time
  (a WebSocket re-snapshot after resubscribing, a REST page overlapping the socket);
- ``verified_ms``: every trade with an exchange time before it has been delivered (the socket
  delivered it, or a REST check found and delivered it). REST checks look back to it.

Ids older than both ``window_ms`` before the newest trade and the verified horizon are
forgotten, so memory stays bounded by the trade rate.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from backbone.models import TradeData
from backbone.upbit.protocol._wire import datetime_to_ms

__all__ = ["SymbolLedger", "TradeLedger"]

_PRUNE_MASK = 255  # prune every 256 admissions (and every quarter window)


@dataclass(slots=True)
class SymbolLedger:
    """The ledger of one symbol (see the module docstring)."""

    seen: set[int] = field(default_factory=set)
    order: deque[tuple[int, int]] = field(default_factory=deque)
    newest_ms: int | None = None
    verified_ms: int | None = None
    admitted: int = 0
    duplicates: int = 0
    pruned_ms: int = 0


class TradeLedger:
    """De-duplicates trades and tracks each symbol's verified horizon."""

    __slots__ = ("_prune_ms", "_symbols", "window_ms")

    def __init__(self, window_ms: int = 120_000) -> None:
        self.window_ms = window_ms
        self._prune_ms = window_ms // 4
        self._symbols: dict[str, SymbolLedger] = {}

    def get(self, symbol: str) -> SymbolLedger:
        """The symbol's ledger, created empty on first use."""
        ledger = self._symbols.get(symbol)
        if ledger is None:
            ledger = self._symbols[symbol] = SymbolLedger()
        return ledger

    def known(self, symbol: str) -> bool:
        """True once any trade of ``symbol`` went through the ledger."""
        ledger = self._symbols.get(symbol)
        return ledger is not None and ledger.newest_ms is not None

    def forget(self, symbol: str) -> None:
        """Drop everything about ``symbol`` (no stream wants it any more)."""
        self._symbols.pop(symbol, None)

    def admit(self, trade: TradeData) -> bool:
        """Record ``trade`` as delivered; False if it was already (a duplicate)."""
        return self.admit_id(
            trade.symbol, trade.sequential_id, datetime_to_ms(trade.trade_timestamp)
        )

    def admit_id(self, symbol: str, sequential_id: int, ts_ms: int) -> bool:
        """Record the trade ``(symbol, sequential_id)`` executed at ``ts_ms`` (exchange time,
        epoch milliseconds) as delivered; False if it was already (a duplicate)."""
        ledger = self._symbols.get(symbol)
        if ledger is None:
            ledger = self._symbols[symbol] = SymbolLedger()
        seen = ledger.seen
        if sequential_id in seen:
            ledger.duplicates += 1
            return False
        seen.add(sequential_id)
        ledger.order.append((ts_ms, sequential_id))
        ledger.admitted += 1
        newest = ledger.newest_ms
        if newest is None or ts_ms > newest:
            ledger.newest_ms = ts_ms
            if newest is None and ledger.verified_ms is None:
                # The first trade of a stream anchors it: nothing before it is owed.
                ledger.verified_ms = ts_ms
        if ledger.admitted & _PRUNE_MASK == 0 or ts_ms - ledger.pruned_ms > self._prune_ms:
            # Often enough that a quiet market's ids do not pile up either.
            ledger.pruned_ms = ts_ms
            self._prune(ledger)
        return True

    def is_duplicate(self, trade: TradeData) -> bool:
        """True if ``trade`` was already delivered (without recording anything)."""
        ledger = self._symbols.get(trade.symbol)
        return ledger is not None and trade.sequential_id in ledger.seen

    def confirm(self, symbol: str, verified_ms: int) -> None:
        """REST showed every trade before ``verified_ms`` was delivered (never moves back)."""
        ledger = self.get(symbol)
        if ledger.verified_ms is None or verified_ms > ledger.verified_ms:
            ledger.verified_ms = verified_ms

    def _prune(self, ledger: SymbolLedger) -> None:
        assert ledger.newest_ms is not None
        horizon = ledger.newest_ms - self.window_ms
        if ledger.verified_ms is not None:
            horizon = min(horizon, ledger.verified_ms - self.window_ms // 10)
        order, seen = ledger.order, ledger.seen
        # Arrival order is close to time order; stop at the first id still inside.
        while order and order[0][0] < horizon:
            seen.discard(order.popleft()[1])

    def symbols(self) -> list[str]:
        """Every symbol with a ledger."""
        return list(self._symbols)
