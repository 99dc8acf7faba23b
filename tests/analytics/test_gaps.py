"""Gap measures: the events ledger and silent periods found in the data."""

from __future__ import annotations

from pathlib import Path

import pytest
from analytics_synth import MS, T0_NS, S, Synth, at

from analytics import MeasureConfig, Recording, run_checks
from analytics.gaps import EVENT_KINDS
from backbone.models import EventKind

A, B = "KRW-BTC", "KRW-ETH"
HOLE = (10 * S, 15 * S)  # no trade of A arrived in between


def build(root: Path) -> Path:
    synth = Synth(root)
    for i in range(300):
        offset = i * 100 * MS
        if not HOLE[0] <= offset < HOLE[1]:
            synth.add("trade", received_ns=T0_NS + offset, symbol=A, sequential_id=i)
        synth.add("orderbook", received_ns=T0_NS + offset + MS, symbol=B)
    start, end = T0_NS + HOLE[0], T0_NS + HOLE[1]
    synth.add("events", received_ns=start, kind="disconnected", cause="socket closed")
    synth.add("events", received_ns=start, kind="source_switched", channel="trade", symbols=(A,))
    synth.add(
        "events",
        received_ns=end,
        kind="reconnected",
        start_ns=start,
        end_ns=end,
    )
    synth.add(
        "events",
        received_ns=end + MS,
        kind="gap_repaired",
        channel="trade",
        symbols=(A,),
        start_ns=start,
        end_ns=end,
        exchange_start=at(start),
        exchange_end=at(end),
        rows_recovered=48,
    )
    synth.add(
        "events",
        received_ns=end + 2 * MS,
        kind="gap_unrepaired",
        channel="trade",
        symbols=(B,),
        rows_missing=2,
    )
    return synth.write(by_receive_time=True)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("gaps"))


def test_event_kinds_are_the_contract_kinds() -> None:
    assert tuple(kind.value for kind in EventKind) == EVENT_KINDS


def test_the_ledger_in_delivery_order(root: Path) -> None:
    with Recording(root) as recording:
        ledger = recording.rows("events_ledger", order="seq")
        by_kind = {(r["kind"], r["channel"]): r for r in recording.rows("events_by_kind")}
    assert [row["kind"] for row in ledger] == [
        "disconnected",
        "source_switched",
        "reconnected",
        "gap_repaired",
        "gap_unrepaired",
    ]
    assert ledger[2]["duration_s"] == 5.0
    assert by_kind[("gap_repaired", "trade")]["rows_recovered"] == 48
    assert by_kind[("gap_unrepaired", "trade")]["rows_missing"] == 2


def test_the_silence_is_found_where_it_was(root: Path) -> None:
    with Recording(root) as recording:
        silences = recording.rows("silences")
        rhythm = {(r["dataset"], r["symbol"]): r for r in recording.rows("stream_rhythm")}
    assert [(s["dataset"], s["symbol"]) for s in silences] == [("trade", A)]
    assert silences[0]["start_ns"] == T0_NS + HOLE[0] - 100 * MS
    assert silences[0]["end_ns"] == T0_NS + HOLE[1]
    assert silences[0]["silent_ms"] == 5100
    assert rhythm[("trade", A)]["usual_ms"] == 100
    assert rhythm[("trade", A)]["threshold_ms"] == 2000  # the floor, above 5 x 100 ms


def test_the_rhythm_scales_the_threshold(root: Path) -> None:
    # with no floor, 60 x the usual 100 ms is 6 s: the 5.1 s hole is not a silence any more
    config = MeasureConfig(silence_floor_ms=0, silence_factor=60)
    with Recording(root, config=config) as recording:
        assert recording.rows("silences") == []
    config = MeasureConfig(silence_floor_ms=0, silence_factor=2)
    with Recording(root, config=config) as recording:
        assert len(recording.rows("silences")) == 1


def test_gaps_section(root: Path) -> None:
    with Recording(root) as recording:
        section = run_checks(recording)["gaps"]
    assert section["events"] == {
        "connected": 0,
        "disconnected": 1,
        "reconnected": 1,
        "source_switched": 1,
        "gap_detected": 0,
        "gap_repaired": 1,
        "gap_unrepaired": 1,
        "records_dropped": 0,
    }
    assert (section["rows_recovered"], section["rows_missing"]) == (48, 2)
    assert section["silences"] == 1
    assert section["longest_silence_s"] == 5.1
    assert section["silent_periods"][0]["start"] == "2025-11-26T01:00:09.900000Z"
    assert section["ledger"][2]["end"] == "2025-11-26T01:00:15.000000Z"
    assert section["trades_missing"] == 0
