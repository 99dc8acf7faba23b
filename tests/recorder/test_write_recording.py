"""write_recording: in-memory records to a complete recording any reader opens."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest
from recorder_factories import BASE_NS, candle, event, orderbook, raw, ticker, trade

from recorder import (
    DirectoryLock,
    RecordingFormatError,
    RecordingLocked,
    RestSnapshot,
    ValueDoesNotFit,
    from_table,
    read_sessions,
    write_recording,
)
from recorder.layout import dataset_glob, parse_part_name
from recorder.parts import ROW_GROUP_ROWS, read_part
from recorder.schema import SCHEMA_VERSION, schema_for, schema_version_of

SECOND = 1_000_000_000


def _mixed(start_ns: int, count: int) -> list:
    out = []
    for i in range(count):
        ns = start_ns + i * SECOND
        out += [
            trade("KRW-BTC", 1000 + i, ns),
            ticker("KRW-ETH", ns + 1),
            orderbook("KRW-BTC", ns + 2),
            candle("KRW-ETH", ns + 3),
            event(ns + 4),
        ]
    return out


def _rows(root: Path, dataset: str) -> list[dict]:
    parts = sorted((root / dataset).rglob("*.parquet"))
    rows = [row for p in parts for row in read_part(p).to_pylist()]
    return sorted(rows, key=lambda r: r["seq"])


def test_every_record_lands_in_its_partition_with_seq_in_list_order(tmp_path: Path) -> None:
    records = _mixed(BASE_NS - 3 * SECOND, 6)  # crosses 00:00 UTC
    summary = write_recording(tmp_path, records, session_id="sess-a")
    assert summary.rows == {"trade": 6, "ticker": 6, "orderbook": 6, "candle": 6, "events": 6}
    dates = {
        p.parent.name if p.parent.name.startswith("date=") else p.parent.parent.name
        for p in summary.parts
    }
    assert dates == {"date=2025-11-25", "date=2025-11-26"}
    for dataset in summary.rows:
        rows = _rows(tmp_path, dataset)
        wanted = [i for i, r in enumerate(records) if _dataset(r) == dataset]
        assert [row["seq"] for row in rows] == wanted
        assert all(row["session_id"] == "sess-a" for row in rows)
    trades = from_table("trade", pq.read_table(tmp_path / "trade", partitioning=None))
    assert sorted(trades, key=lambda t: t.sequential_id) == [
        r for r in records if _dataset(r) == "trade"
    ]


def _dataset(record: object) -> str:
    from recorder.rows import dataset_of

    return dataset_of(record)  # type: ignore[arg-type]


def test_part_names_schema_and_version_follow_the_contract(tmp_path: Path) -> None:
    summary = write_recording(tmp_path, _mixed(BASE_NS, 3))
    for path in summary.parts:
        name = parse_part_name(path.name)
        assert name is not None
        table = read_part(path)
        assert (name.first_ns, name.last_ns) == (
            min(table["received_ns"].to_pylist()),
            max(table["received_ns"].to_pylist()),
        )
        dataset = path.relative_to(tmp_path).parts[0]
        assert table.schema.remove_metadata() == schema_for(dataset).remove_metadata()
        assert schema_version_of(pq.read_metadata(path).metadata) == SCHEMA_VERSION
    manifest = json.loads((tmp_path / "tape.json").read_text())
    assert manifest["layout_version"] == SCHEMA_VERSION
    (session,) = read_sessions(tmp_path)
    assert session.status == "closed"
    assert session.session_id == summary.session_id
    assert session.next_seq == 15
    assert not list((tmp_path / "_tmp").iterdir())


def test_duckdb_and_polars_read_it_without_project_code(tmp_path: Path) -> None:
    write_recording(
        tmp_path,
        _mixed(BASE_NS, 4),
        rest_records=[
            RestSnapshot(
                record=trade("KRW-BTC", 1, BASE_NS, source="rest"),
                request_start_ns=BASE_NS - 5,
                request_end_ns=BASE_NS + 5,
            )
        ],
        raw=[raw(BASE_NS)],
    )
    for dataset in ("trade", "ticker", "orderbook", "candle", "events", "rest_trade", "raw"):
        glob = dataset_glob(tmp_path, dataset)
        ((count,),) = duckdb.sql(
            f"select count(*) from read_parquet('{glob}', hive_partitioning=true)"
        ).fetchall()
        frame = pl.scan_parquet(glob, hive_partitioning=True).collect()
        assert count == frame.height > 0
    ((price,),) = duckdb.sql(
        f"select trade_price from read_parquet('{dataset_glob(tmp_path, 'trade')}') limit 1"
    ).fetchall()
    assert str(price).startswith("1000.5")


def test_a_bad_value_writes_nothing(tmp_path: Path) -> None:
    from dataclasses import replace
    from decimal import Decimal

    bad = replace(trade("KRW-BTC", 5, BASE_NS), trade_price=Decimal("1e25"))
    with pytest.raises(ValueDoesNotFit, match="trade_price"):
        write_recording(tmp_path, [ticker("KRW-BTC", BASE_NS), bad])
    assert list(tmp_path.rglob("*.parquet")) == []


def test_sessions_accumulate_and_identical_ranges_merge_without_loss(tmp_path: Path) -> None:
    same = [trade("KRW-BTC", 1, BASE_NS), trade("KRW-BTC", 2, BASE_NS)]
    write_recording(tmp_path, same, session_id="s1")
    write_recording(tmp_path, same, session_id="s2")
    (part,) = (tmp_path / "trade").rglob("*.parquet")
    table = read_part(part)
    assert sorted(zip(table["session_id"].to_pylist(), table["seq"].to_pylist(), strict=True)) == [
        ("s1", 0),
        ("s1", 1),
        ("s2", 0),
        ("s2", 1),
    ]
    write_recording(tmp_path, same, session_id="s2")  # the same rows again: no duplicate
    assert read_part(part).num_rows == 4
    assert [s.session_id for s in read_sessions(tmp_path)] == ["s1", "s2"]


def test_a_locked_root_is_refused_naming_the_holder(tmp_path: Path) -> None:
    import os

    with DirectoryLock(tmp_path), pytest.raises(RecordingLocked, match=str(os.getpid())):
        write_recording(tmp_path, [ticker("KRW-BTC", BASE_NS)])


def test_a_foreign_root_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tape.json").write_text('{"format": "something-else"}')
    with pytest.raises(RecordingFormatError, match="not a tape"):
        write_recording(tmp_path, [ticker("KRW-BTC", BASE_NS)])
    (tmp_path / "tape.json").write_text('{"format": "tape-recording", "layout_version": 99}')
    with pytest.raises(RecordingFormatError, match="newer tape"):
        write_recording(tmp_path, [ticker("KRW-BTC", BASE_NS)])


def test_parts_cap_their_row_groups_and_declare_the_delivery_order(tmp_path: Path) -> None:
    count = ROW_GROUP_ROWS + 100
    write_recording(
        tmp_path, [trade("KRW-BTC", i, BASE_NS + i * 1000) for i in range(count)], session_id="s"
    )
    (part,) = (tmp_path / "trade").rglob("*.parquet")
    meta = pq.read_metadata(part)
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [ROW_GROUP_ROWS, 100]
    names = meta.schema.to_arrow_schema().names
    key = (pq.SortingColumn(names.index("session_id")), pq.SortingColumn(names.index("seq")))
    for index in range(meta.num_row_groups):
        group = meta.row_group(index)
        assert group.sorting_columns == key
        with_statistics = {
            group.column(i).path_in_schema
            for i in range(group.num_columns)
            if group.column(i).is_stats_set
        }
        assert {"session_id", "seq", "received_ns", "trade_timestamp"} <= with_statistics
        assert "trade_price" not in with_statistics  # prices: no min/max worth its cost
    assert read_part(part)["seq"].to_pylist() == list(range(count))
