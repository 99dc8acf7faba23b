"""Compaction: one part per partition, every row and its order unchanged, crash-safe."""

from __future__ import annotations

import errno
import importlib
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from recorder_factories import BASE_NS, event, orderbook, ticker, trade

from recorder import parts, recover, write_recording
from recorder.compaction import CompactionBusy, _compaction_lock, compact, tidy
from recorder.journal import JournalSegment
from recorder.layout import parse_part_name
from recorder.parts import read_listed, read_part
from recorder.rows import to_batch
from recorder.schema import schema_for

SECOND = 1_000_000_000
compact_module = importlib.import_module("recorder.compaction")  # the module, not the function


def _sessions(root: Path, count: int) -> None:
    for n in range(count):
        start = BASE_NS + n * 10 * SECOND
        records = []
        for i in range(5):
            ns = start + i * SECOND
            records += [
                trade("KRW-BTC", n * 100 + i, ns),
                trade("KRW-ETH", n * 100 + i, ns + 1),
                ticker("KRW-BTC", ns + 2),
                orderbook("KRW-BTC", ns + 3),
                event(ns + 4),
            ]
        write_recording(root, records, session_id=f"s{n}")


def _partition_rows(directory: Path) -> pa.Table:
    parts = sorted(
        (p for p in directory.iterdir() if parse_part_name(p.name)),
        key=lambda p: parse_part_name(p.name),  # type: ignore[arg-type, return-value]
    )
    return pa.concat_tables(read_part(p) for p in parts)


def _directories(root: Path) -> list[Path]:
    return sorted({p.parent for p in root.rglob("part-*.parquet")})


def test_compaction_leaves_one_part_with_the_same_rows_in_the_same_order(tmp_path: Path) -> None:
    _sessions(tmp_path, 4)
    before = {d: _partition_rows(d) for d in _directories(tmp_path)}
    assert all(len(list(d.glob("part-*"))) == 4 for d in before)
    done = compact(tmp_path)
    assert len(done) == len(before)
    for directory, table in before.items():
        (part,) = directory.glob("part-*.parquet")
        after = read_part(part)
        assert after.equals(table)
        name = parse_part_name(part.name)
        assert name is not None
        received = after["received_ns"].to_pylist()
        assert (name.first_ns, name.last_ns) == (min(received), max(received))
    assert compact(tmp_path)[0].output is None  # nothing left to merge
    assert not list((tmp_path / "_tmp").glob("*.json"))


def test_filters_restrict_the_partitions(tmp_path: Path) -> None:
    _sessions(tmp_path, 2)
    done = compact(tmp_path, datasets=("trade",), symbols=("KRW-ETH",))
    assert [d.directory.name for d in done] == ["symbol=KRW-ETH"]
    assert len(list((tmp_path / "trade").rglob("symbol=KRW-BTC/part-*"))) == 2
    assert compact(tmp_path, dates=("2001-01-01",)) == []
    with pytest.raises(ValueError, match="unknown datasets"):
        compact(tmp_path, datasets=("trades",))


def test_a_crash_after_the_link_is_finished_later(tmp_path: Path) -> None:
    _sessions(tmp_path, 3)
    directory = tmp_path / "trade" / "date=2025-11-26" / "symbol=KRW-BTC"
    inputs = sorted(directory.glob("part-*"))
    expected = _partition_rows(directory)
    backup = tmp_path.parent / "backup"
    shutil.copytree(directory, backup)
    compact(tmp_path, datasets=("trade",), symbols=("KRW-BTC",))
    (output,) = directory.glob("part-*")
    for path in inputs:  # as if the crash came between the link and the deletions
        shutil.copy(backup / path.name, path)
    intent = {
        "output": str(output.relative_to(tmp_path)),
        "inputs": [str(p.relative_to(tmp_path)) for p in inputs],
        "rows": expected.num_rows,
    }
    (tmp_path / "_tmp" / "compact-intent.json").write_text(json.dumps(intent))
    assert tidy(tmp_path) == 0
    assert list(directory.glob("part-*")) == [output]
    assert read_part(output).equals(expected)


def test_a_crash_before_a_merged_part_took_an_input_name_keeps_the_inputs(
    tmp_path: Path,
) -> None:
    _sessions(tmp_path, 2)
    directory = tmp_path / "trade" / "date=2025-11-26" / "symbol=KRW-BTC"
    inputs = sorted(directory.glob("part-*"))
    intent = {
        "output": str(inputs[0].relative_to(tmp_path)),
        "inputs": [str(p.relative_to(tmp_path)) for p in inputs],
        "rows": 10,
    }
    (tmp_path / "_tmp").mkdir(exist_ok=True)
    (tmp_path / "_tmp" / "compact-intent.json").write_text(json.dumps(intent))
    tidy(tmp_path)
    assert sorted(directory.glob("part-*")) == inputs  # the untouched input is not the merge
    assert not (tmp_path / "_tmp" / "compact-intent.json").exists()


def test_two_compactions_exclude_each_other(tmp_path: Path) -> None:
    _sessions(tmp_path, 2)
    with _compaction_lock(tmp_path):
        with pytest.raises(CompactionBusy, match="another compaction"):
            compact(tmp_path)
        assert tidy(tmp_path) is None


def test_recovery_after_a_compaction_does_not_duplicate(tmp_path: Path) -> None:
    segment = JournalSegment.create(tmp_path, "live", 0)
    trades = [trade("KRW-BTC", i, BASE_NS + i * SECOND) for i in range(6)]
    segment.append([("trade", to_batch("trade", trades, session_id="live", seqs=range(6)))])
    segment.close()
    copy = tmp_path / "journal.copy"
    shutil.copy(segment.path, copy)
    recover(tmp_path, compression="zstd")
    write_recording(tmp_path, [trade("KRW-BTC", 99, BASE_NS + 3 * SECOND + 5)], session_id="x")
    compact(tmp_path)
    shutil.copy(copy, segment.path)  # the journal segment reappears (crash before its deletion)
    recover(tmp_path, compression="zstd")
    (part,) = (tmp_path / "trade").rglob("part-*.parquet")
    keys = read_part(part).select(["session_id", "seq"]).to_pylist()
    assert len(keys) == 7
    assert len({(k["session_id"], k["seq"]) for k in keys}) == 7


def _row_groups(path: Path) -> list[pq.RowGroupMetaData]:
    meta = pq.read_metadata(path)
    return [meta.row_group(i) for i in range(meta.num_row_groups)]


def test_compaction_fills_capped_row_groups_and_declares_the_order_it_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parts, "ROW_GROUP_ROWS", 7)  # small groups, to see them filled
    _sessions(tmp_path, 4)  # four parts of 5 rows per partition
    directory = tmp_path / "trade" / "date=2025-11-26" / "symbol=KRW-BTC"
    before = _partition_rows(directory)
    compact(tmp_path, datasets=("trade",))
    (part,) = directory.glob("part-*.parquet")
    assert read_part(part).equals(before)
    groups = _row_groups(part)
    assert [g.num_rows for g in groups] == [7, 7, 6]
    assert all(g.sorting_columns == (pq.SortingColumn(0), pq.SortingColumn(1)) for g in groups)


def test_parts_of_overlapping_sessions_keep_their_order_and_declare_none(tmp_path: Path) -> None:
    late = [trade("KRW-BTC", i, BASE_NS + (i + 2) * SECOND) for i in range(5)]
    early = [trade("KRW-BTC", 100 + i, BASE_NS + i * SECOND) for i in range(5)]
    write_recording(tmp_path, late, session_id="s-a")  # the smaller id received later
    write_recording(tmp_path, early, session_id="s-b")
    directory = tmp_path / "trade" / "date=2025-11-26" / "symbol=KRW-BTC"
    before = _partition_rows(directory)
    assert before["session_id"].to_pylist()[0] == "s-b"
    compact(tmp_path, datasets=("trade",))
    (part,) = directory.glob("part-*.parquet")
    assert read_part(part).equals(before)
    assert all(not g.sorting_columns for g in _row_groups(part))


def test_a_read_of_listed_parts_lists_again_when_one_vanished() -> None:
    tries: list[int] = []

    def read() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise FileNotFoundError("part-1-2.parquet")  # replaced by a merged part
        return "rows"

    assert read_listed(read, first_wait_s=0) == "rows" and len(tries) == 3

    def gone() -> str:
        tries.append(1)
        raise FileNotFoundError("part-1-2.parquet")

    tries.clear()
    with pytest.raises(FileNotFoundError):
        read_listed(gone, first_wait_s=0)
    assert len(tries) == 11  # ten lists again, then the error


def test_a_compaction_asked_to_stop_leaves_the_partition_it_was_merging(tmp_path: Path) -> None:
    _sessions(tmp_path, 3)
    before = {d: sorted(d.iterdir()) for d in _directories(tmp_path)}
    asked: list[int] = []

    def should_stop() -> bool:
        asked.append(1)
        return len(asked) > 3  # partition 1, its first row group, its second: then stop

    done = compact(tmp_path, should_stop=should_stop)
    assert done == []  # the first partition was being merged: given up, not half done
    assert {d: sorted(d.iterdir()) for d in _directories(tmp_path)} == before
    assert [p.name for p in (tmp_path / "_tmp").iterdir()] == [".compact.lock"]
    assert len(compact(tmp_path)) == len(before)  # a later compaction does the work


def test_a_partition_whose_merged_copy_would_not_fit_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _sessions(tmp_path, 2)
    before = {d: sorted(d.iterdir()) for d in _directories(tmp_path)}
    monkeypatch.setattr(  # a full disk
        compact_module.shutil, "disk_usage", lambda path: SimpleNamespace(total=1, used=1, free=0)
    )
    done = compact(tmp_path)
    assert [c.output for c in done] == [None] * len(before)
    assert {d: sorted(d.iterdir()) for d in _directories(tmp_path)} == before
    assert "needs" in caplog.text and "MB free" in caplog.text


def test_orderbook_row_groups_are_capped_lower(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A row group of list columns decodes to many times its row count: fewer rows per group.
    monkeypatch.setattr(parts, "LIST_ROW_GROUP_ROWS", 3)
    _sessions(tmp_path, 2)  # two parts of 5 orderbooks in KRW-BTC's partition
    directory = tmp_path / "orderbook" / "date=2025-11-26" / "symbol=KRW-BTC"
    before = _partition_rows(directory)
    compact(tmp_path, datasets=("orderbook",))
    (part,) = directory.glob("part-*.parquet")
    assert read_part(part).equals(before)
    assert [g.num_rows for g in _row_groups(part)] == [3, 3, 3, 1]
    assert parts.row_group_rows(schema_for("trade")) == parts.ROW_GROUP_ROWS


def test_a_partition_that_failed_after_its_link_is_finished_before_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _sessions(tmp_path, 2)
    before = {d: _partition_rows(d).num_rows for d in _directories(tmp_path)}
    unlink = Path.unlink
    failed: list[Path] = []

    def failing_once(self: Path, missing_ok: bool = False) -> None:
        if not failed and self.name.startswith("part-"):  # deleting the first merged input
            failed.append(self)
            raise OSError(errno.EIO, "I/O error")
        unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", failing_once)
    errors: list[Path] = []
    compact(tmp_path, on_error=lambda directory, exc: errors.append(directory))
    monkeypatch.undo()
    assert failed and errors == [failed[0].parent]
    after = {d: _partition_rows(d).num_rows for d in _directories(tmp_path)}
    assert after == before  # no partition holds a row twice
    assert all(len(list(d.glob("part-*"))) == 1 for d in after)
