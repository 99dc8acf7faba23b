"""A running recorder merges each finished UTC day's partitions into one part each."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pyarrow as pa
import pytest
from recorder_factories import BASE_NS, trade, until

from recorder.compaction import _compaction_lock
from recorder.config import StorageConfig
from recorder.layout import date_of_ns
from recorder.manifest import SessionManifest, ensure_root
from recorder.parts import publish_table, read_part
from recorder.rows import to_table
from recorder.sink import Sink

SECOND = 1_000_000_000
DAY = 86_400 * SECOND


def _parts(root: Path, day_ns: int, symbol: str = "KRW-BTC") -> list[Path]:
    directory = root / "trade" / f"date={date_of_ns(day_ns).isoformat()}" / f"symbol={symbol}"
    return sorted(directory.glob("part-*.parquet"))


def _rows(parts: list[Path]) -> list[dict[str, object]]:
    table = pa.concat_tables(read_part(p) for p in parts)
    return table.sort_by([("session_id", "ascending"), ("seq", "ascending")]).to_pylist()


def _earlier_session(root: Path) -> list[dict[str, object]]:
    # A session of an earlier day that left three parts in one partition (three rotations).
    ensure_root(root)
    trades = [trade("KRW-BTC", i, BASE_NS + i * SECOND) for i in range(6)]
    for k in range(3):
        table = to_table(
            "trade", trades[2 * k : 2 * k + 2], session_id="earlier", seqs=[2 * k, 2 * k + 1]
        )
        publish_table(root, "trade", table, compression="zstd")
    parts = _parts(root, BASE_NS)
    assert len(parts) == 3
    return _rows(parts)


async def _record_today(root: Path, config: StorageConfig) -> Sink:
    # Two parts of today's partition (two rotations), which must be left alone.
    sink = Sink(root, SessionManifest(session_id="today", started_ns=time.time_ns()), config=config)
    async with sink:
        await sink.put(trade("KRW-BTC", 100, time.time_ns()))
        await until(lambda: sink.statistics().segments_published >= 1)
        await sink.put(trade("KRW-BTC", 101, time.time_ns()))
        await until(lambda: sink.statistics().segments_published >= 2)
        if config.compact_days:
            await until(lambda: sink.statistics().partitions_compacted >= 1)
    return sink


async def test_the_days_before_today_are_compacted_when_the_sink_starts(tmp_path: Path) -> None:
    before = _earlier_session(tmp_path)
    config = StorageConfig(flush_interval_ms=10, rotation_interval_s=0.02)
    sink = await _record_today(tmp_path, config)
    (merged,) = _parts(tmp_path, BASE_NS)
    assert _rows([merged]) == before  # every row, every value, in (session, seq) order
    assert len(_parts(tmp_path, time.time_ns())) == 2  # today is not over: untouched
    assert sink.statistics().partitions_compacted == 1


async def test_compact_days_off_leaves_every_part(tmp_path: Path) -> None:
    before = _earlier_session(tmp_path)
    config = StorageConfig(flush_interval_ms=10, rotation_interval_s=0.02, compact_days=False)
    sink = await _record_today(tmp_path, config)
    parts = _parts(tmp_path, BASE_NS)
    assert len(parts) == 3 and _rows(parts) == before
    assert sink.statistics().partitions_compacted == 0


async def test_a_day_is_compacted_after_midnight_with_what_arrived_late(tmp_path: Path) -> None:
    ensure_root(tmp_path)
    midnight = BASE_NS + DAY
    now = [midnight - SECOND]
    sink = Sink(
        tmp_path,
        SessionManifest(session_id="s", started_ns=now[0]),
        config=StorageConfig(flush_interval_ms=10, rotation_interval_s=0.02),
        clock_ns=lambda: now[0],
    )

    async def published(count: int) -> None:
        await until(lambda: sink.statistics().segments_published >= count)

    async with sink:
        await until(lambda: sink.statistics().compaction_passes == 1)  # the start's: nothing
        # A late part of the day before (two parts): the midnight pass takes that day too.
        for k in range(2):
            late = [trade("KRW-ETH", k, midnight - DAY - SECOND + k)]
            publish_table(
                tmp_path,
                "trade",
                to_table("trade", late, session_id="r", seqs=[k]),
                compression="zstd",
            )
        assert len(_parts(tmp_path, midnight - DAY - 1, "KRW-ETH")) == 2
        await sink.put(trade("KRW-BTC", 1, midnight - SECOND))
        await published(1)
        await sink.put(trade("KRW-BTC", 2, midnight - SECOND // 2))
        await published(2)
        now[0] = midnight + SECOND // 2
        # Received before midnight, accepted after it: this rotation is the day's last but
        # one, so the day is not over yet.
        await sink.put(trade("KRW-BTC", 3, midnight - 2))
        await published(3)
        assert sink.statistics().partitions_compacted == 0
        assert len(_parts(tmp_path, midnight - 1)) == 3
        await sink.put(trade("KRW-BTC", 4, midnight - 1))
        await sink.put(trade("KRW-BTC", 5, midnight + SECOND // 4))
        await until(lambda: sink.statistics().compaction_passes == 2)
        (merged,) = _parts(tmp_path, midnight - 1)
        assert [row["sequential_id"] for row in _rows([merged])] == [1, 2, 3, 4]
        (late,) = _parts(tmp_path, midnight - DAY - 1, "KRW-ETH")
        assert [row["sequential_id"] for row in _rows([late])] == [0, 1]
        assert sink.statistics().partitions_compacted == 2
        (today,) = _parts(tmp_path, midnight)
        assert [row["sequential_id"] for row in _rows([today])] == [5]


async def test_a_partition_that_cannot_be_merged_is_left_and_the_others_go_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    before = _earlier_session(tmp_path)
    broken = tmp_path / "trade" / f"date={date_of_ns(BASE_NS).isoformat()}" / "symbol=KRW-ADA"
    broken.mkdir()
    (broken / f"part-{BASE_NS}-{BASE_NS + 1}.parquet").write_bytes(b"not parquet")
    (broken / f"part-{BASE_NS + 2}-{BASE_NS + 3}.parquet").write_bytes(b"not parquet")
    config = StorageConfig(flush_interval_ms=10, rotation_interval_s=0.02)
    sink = Sink(tmp_path, SessionManifest(session_id="t", started_ns=time.time_ns()), config=config)
    async with sink:
        await until(lambda: sink.statistics().compaction_passes == 1)
        await sink.put(trade("KRW-BTC", 100, time.time_ns()))
        await until(lambda: sink.statistics().segments_published >= 1)  # still recording
    assert "symbol=KRW-ADA left as it is" in caplog.text
    assert len(list(broken.iterdir())) == 2  # as it was
    (merged,) = _parts(tmp_path, BASE_NS)  # KRW-BTC, after KRW-ADA: merged all the same
    assert _rows([merged]) == before


async def test_a_compaction_running_elsewhere_is_left_to_finish(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _earlier_session(tmp_path)
    config = StorageConfig(flush_interval_ms=10, rotation_interval_s=0.02)
    caplog.set_level(logging.INFO, logger="recorder.sink")
    with _compaction_lock(tmp_path):  # as `tape compact` holds it
        sink = Sink(
            tmp_path, SessionManifest(session_id="t", started_ns=time.time_ns()), config=config
        )
        async with sink:
            await until(lambda: "another compaction" in caplog.text)
            await sink.put(trade("KRW-BTC", 100, time.time_ns()))
            await until(lambda: sink.statistics().segments_published >= 1)  # still recording
    assert len(_parts(tmp_path, BASE_NS)) == 3
    assert sink.statistics().partitions_compacted == 0
