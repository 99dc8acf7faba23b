"""Which gaps a recording leaves open, where a restart's backfill must reach back to, and
what a restart reads of the recorded trades."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from recorder_factories import BASE_NS, at_ms, event, trade

from backbone.models import EventKind
from recorder import write_recording
from recorder.backfill import open_trade_gap_starts, recorded_tail, recorded_trade_ids
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


def test_a_restart_reads_only_the_newest_parts_of_each_symbol(tmp_path: Path) -> None:
    # Parts rotated through the day: the newest trade is in the latest part but one (a late
    # REST repair landed last), and the ids to remember span two parts. A part from hours
    # before cannot hold any of them: it is not even opened (here it is not Parquet at all).
    minute = 60 * SECOND
    hour_ns = BASE_NS + 10 * 60 * minute
    write_recording(tmp_path, [trade("KRW-BTC", 1, hour_ns)], session_id="s1")
    write_recording(
        tmp_path,
        [trade("KRW-BTC", 2, hour_ns + 30 * SECOND), trade("KRW-BTC", 3, hour_ns + minute)],
        session_id="s2",
    )
    late = replace(trade("KRW-BTC", 4, hour_ns + 50 * SECOND), received_ns=hour_ns + 2 * minute)
    write_recording(tmp_path, [late], session_id="s3")
    (directory,) = (tmp_path / "trade").glob("date=*/symbol=KRW-BTC")
    stale = directory / f"part-{BASE_NS}-{BASE_NS + minute}.parquet"
    stale.write_bytes(b"not parquet: reading it would fail")
    tails = recorded_tail(tmp_path, ["KRW-BTC", "KRW-ETH"], timedelta(seconds=45))
    assert list(tails) == ["KRW-BTC"]
    last = tails["KRW-BTC"].last
    assert (last.sequential_id, last.trade_timestamp) == (
        3,
        at_ms(hour_ns + minute),
    )
    assert tails["KRW-BTC"].ids == {2, 3, 4}
    assert recorded_trade_ids(tmp_path, "KRW-BTC", at_ms(hour_ns + 40 * SECOND)) == {3, 4}


def _three_sessions(root: Path, gap_start: datetime) -> None:
    # Three sessions: each partition holds three parts, which a compaction merges.
    for n in range(3):
        records: list[object] = [
            trade("KRW-BTC", n * 10 + i, BASE_NS + (n * 10 + i) * SECOND) for i in range(3)
        ]
        records.append(_detected(BASE_NS + n, "KRW-ETH", gap_start))
        write_recording(root, records, session_id=f"s{n}")


@pytest.mark.parametrize("what", ["open_gaps", "recorded_tail", "recorded_trade_ids"])
def test_restart_reads_list_again_when_a_compaction_replaces_their_parts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str
) -> None:
    # The read meets a compaction between its listing and its first part read (the
    # recorder's compactor runs beside it): it lists again and answers as before.
    from recorder import backfill, compact, inventory

    gap_start = datetime(2025, 11, 26, 0, 0, 1, tzinfo=UTC)
    _three_sessions(tmp_path, gap_start)
    read, module = {
        "open_gaps": (lambda: open_gaps(tmp_path), inventory),
        "recorded_tail": (
            lambda: recorded_tail(tmp_path, ["KRW-BTC"], timedelta(minutes=1)),
            backfill,
        ),
        "recorded_trade_ids": (
            lambda: recorded_trade_ids(tmp_path, "KRW-BTC", gap_start),
            backfill,
        ),
    }[what]
    expected = read()
    original = module.read_part
    merged: list[int] = []

    def compacting_first(*args: Any, **kwargs: Any) -> Any:
        if not merged:
            merged.append(len([c for c in compact(tmp_path) if c.output is not None]))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, "read_part", compacting_first)
    assert read() == expected
    assert merged and merged[0] > 0
