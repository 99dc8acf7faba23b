"""``tape ls`` and ``tape compact`` as a user runs them."""

from __future__ import annotations

import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parents[1] / "recorder"))
from recorder_factories import BASE_NS, event, ticker, trade

from backbone.models import EventKind
from recorder import write_recording
from tape.cli import main

SECOND = 1_000_000_000


def _record(root: Path) -> None:
    for n in range(3):
        ns = BASE_NS + n * SECOND
        write_recording(
            root,
            [
                trade("KRW-BTC", n, ns),
                trade("KRW-ETH", n, ns),
                ticker("KRW-BTC", ns),
                event(ns, EventKind.GAP_DETECTED) if n == 0 else event(ns),
            ],
            session_id=f"s{n}",
        )
    write_recording(root, [event(BASE_NS + 9 * SECOND, EventKind.GAP_UNREPAIRED)], session_id="s9")


def test_ls_lists_datasets_rows_and_open_gaps(tmp_path: Path) -> None:
    _record(tmp_path)
    result = CliRunner().invoke(main, ["ls", str(tmp_path)])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines() if line}
    assert lines["trade"][1:4] == ["2025-11-26", "6", "6"]
    assert lines["ticker"][2:4] == ["3", "3"]
    assert "2 (KRW-BTC,KRW-ETH)" in result.output
    assert "open gaps: 1" in result.output  # the unrepaired gap closes the detected one
    assert "gap_unrepaired" in result.output
    detail = CliRunner().invoke(main, ["ls", "-l", str(tmp_path)])
    assert detail.exit_code == 0
    assert any(
        line.split()[:3] == ["trade", "2025-11-26", "KRW-ETH"]
        for line in detail.output.splitlines()
    )


def test_ls_says_a_trade_gap_left_open_is_backfilled_by_the_next_record(tmp_path: Path) -> None:
    cut = datetime(2025, 11, 26, 0, 0, 3, 250_000, tzinfo=UTC)
    left_open = replace(
        event(BASE_NS + 5 * SECOND, EventKind.GAP_DETECTED),
        symbols=("KRW-BTC",),
        end_ns=None,
        exchange_start=cut,
    )
    write_recording(tmp_path, [trade("KRW-BTC", 1, BASE_NS), left_open], session_id="s1")
    result = CliRunner().invoke(main, ["ls", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "open gaps: 1" in result.output
    assert (
        "trades since 2025-11-26T00:00:03.250+00:00 not confirmed complete; the next "
        "`tape record` of this symbol here backfills them (within Upbit's 7 days)" in result.output
    )


def test_ls_refuses_a_directory_that_is_not_a_recording(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ls", str(tmp_path)])
    assert result.exit_code != 0
    assert "not a tape recording" in result.output


def test_compact_merges_and_ls_shows_fewer_files(tmp_path: Path) -> None:
    _record(tmp_path)
    result = CliRunner().invoke(main, ["compact", str(tmp_path), "--dataset", "trade"])
    assert result.exit_code == 0, result.output
    assert "compacted 2 of 2 partitions (6 parts merged)" in result.output
    listing = CliRunner().invoke(main, ["ls", str(tmp_path)]).output
    trade_line = next(line for line in listing.splitlines() if line.startswith("trade"))
    assert trade_line.split()[2:4] == ["2", "6"]
    refused = CliRunner().invoke(main, ["compact", str(tmp_path / "nope")])
    assert refused.exit_code != 0 and "not a tape recording" in refused.output
