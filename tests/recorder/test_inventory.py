"""Which gaps a recording leaves open, and where a restart's backfill must reach back to."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from recorder_factories import BASE_NS, event

from backbone.models import EventKind
from recorder import write_recording
from recorder.backfill import open_trade_gap_starts
from recorder.inventory import open_gaps

SECOND = 1_000_000_000


def _detected(received_ns: int, symbol: str, exchange_start: datetime) -> object:
    return replace(
        event(received_ns, EventKind.GAP_DETECTED),
        symbols=(symbol,),
        end_ns=None,
        exchange_start=exchange_start,
    )


def test_a_restart_backfill_closes_only_the_gaps_detected_before_it_began(
    tmp_path: Path,
) -> None:
    # The previous run left a gap open; the new run's backfill (which ends where the new run
    # began) closes it, but not a gap the new run detected while the backfill was paging.
    old_start = datetime(2025, 11, 26, 0, 0, 1, tzinfo=UTC)
    new_start = datetime(2025, 11, 26, 0, 0, 20, tzinfo=UTC)
    left_open = _detected(BASE_NS, "KRW-BTC", old_start)
    write_recording(tmp_path, [left_open], session_id="s1")
    assert open_trade_gap_starts(tmp_path, ["KRW-BTC", "KRW-ETH"]) == {"KRW-BTC": old_start}
    restart_ns = BASE_NS + 10 * SECOND
    during_backfill = _detected(restart_ns + 2 * SECOND, "KRW-BTC", new_start)
    backfill_done = replace(
        event(restart_ns + 5 * SECOND, EventKind.GAP_REPAIRED),
        symbols=("KRW-BTC",),
        start_ns=BASE_NS,
        end_ns=restart_ns,
    )
    write_recording(tmp_path, [during_backfill, backfill_done], session_id="s2")
    (still,) = open_gaps(tmp_path)
    assert (still.kind, still.symbols, still.exchange_start) == (
        "gap_detected",
        ("KRW-BTC",),
        new_start,
    )
    assert open_trade_gap_starts(tmp_path, ["KRW-BTC"]) == {"KRW-BTC": new_start}
    # the backbone's own closer (its interval ends when it closes) closes the new one
    repaired = replace(event(restart_ns + 9 * SECOND, EventKind.GAP_REPAIRED), symbols=("KRW-BTC",))
    write_recording(tmp_path, [repaired], session_id="s3")
    assert open_gaps(tmp_path) == []
    assert open_trade_gap_starts(tmp_path, ["KRW-BTC"]) == {}
