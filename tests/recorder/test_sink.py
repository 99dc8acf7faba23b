"""The sink: journaled within the flush interval, rotated into parts, never dropping."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from recorder_factories import BASE_NS, event, orderbook, raw, ticker, trade

from recorder import StorageError, read_sessions
from recorder.config import StorageConfig
from recorder.journal import read_segment, segments
from recorder.manifest import SessionManifest, ensure_root
from recorder.parts import read_part
from recorder.session import RecordingSession
from recorder.sink import Sink

SECOND = 1_000_000_000


def _manifest(session: str = "sess") -> SessionManifest:
    return SessionManifest(session_id=session, started_ns=BASE_NS)


def _keys(root: Path, dataset: str) -> list[int]:
    seqs: list[int] = []
    for path in (root / dataset).rglob("*.parquet"):
        seqs += read_part(path, ["seq"])["seq"].to_pylist()
    return sorted(seqs)


async def test_records_are_journaled_then_published_in_seq_order(tmp_path: Path) -> None:
    ensure_root(tmp_path)
    seen: list[tuple[int, str]] = []
    sink = Sink(
        tmp_path,
        _manifest(),
        config=StorageConfig(flush_interval_ms=20),
        on_record=lambda record, seq: seen.append((seq, type(record).__name__)),
    )
    async with sink:
        seqs = [
            await sink.put(trade("KRW-BTC", 1, BASE_NS)),
            await sink.put(ticker("KRW-BTC", BASE_NS + 1)),
            sink.put_nowait(raw(BASE_NS + 2)),
            await sink.put(event(BASE_NS + 3)),
            await sink.put(trade("KRW-ETH", 2, BASE_NS + 4)),
        ]
        assert seqs == [0, 1, 2, 3, 4]
        await asyncio.wait_for(sink.flushed(4), timeout=10)
        (current,) = segments(tmp_path)
        journaled = read_segment(current)
        assert journaled.rows == 5  # durable before any rotation
        assert list((tmp_path / "trade").rglob("*.parquet")) == []
    assert seen == [
        (0, "TradeData"),
        (1, "TickerData"),
        (2, "RawFrame"),
        (3, "ConnectionEvent"),
        (4, "TradeData"),
    ]
    assert _keys(tmp_path, "trade") == [0, 4]
    assert _keys(tmp_path, "ticker") == [1]
    assert _keys(tmp_path, "raw") == [2]
    assert _keys(tmp_path, "events") == [3]
    assert segments(tmp_path) == []
    (session,) = read_sessions(tmp_path)
    assert session.status == "closed"
    assert session.next_seq == 5
    assert session.rows == {"trade": 2, "ticker": 1, "raw": 1, "events": 1}
    stats = sink.statistics()
    assert stats.journaled_records == 5 and stats.parts_written == 5
    assert stats.parquet_bytes > 0 and stats.journal_bytes > 0


async def test_rotation_by_time_makes_several_parts_and_keeps_every_row(tmp_path: Path) -> None:
    ensure_root(tmp_path)
    sink = Sink(
        tmp_path,
        _manifest(),
        config=StorageConfig(flush_interval_ms=10, rotation_interval_s=0.03),
    )
    async with sink:
        for i in range(40):
            seq = await sink.put(trade("KRW-BTC", i, BASE_NS + i))
            if i % 10 == 9:
                await asyncio.wait_for(sink.flushed(seq), timeout=10)
                await asyncio.sleep(0.04)  # let the rotation interval pass
    parts = list((tmp_path / "trade").rglob("*.parquet"))
    assert len(parts) >= 3
    assert _keys(tmp_path, "trade") == list(range(40))
    assert sink.statistics().parts_written == len(parts)


async def test_rotation_by_size(tmp_path: Path) -> None:
    ensure_root(tmp_path)
    sink = Sink(
        tmp_path, _manifest(), config=StorageConfig(flush_interval_ms=5, rotation_max_bytes=4000)
    )
    async with sink:
        for i in range(30):
            seq = await sink.put(orderbook("KRW-BTC", BASE_NS + i))
            await asyncio.wait_for(sink.flushed(seq), timeout=10)
    assert len(list((tmp_path / "orderbook").rglob("*.parquet"))) >= 5
    assert _keys(tmp_path, "orderbook") == list(range(30))


async def test_back_pressure_waits_instead_of_dropping(tmp_path: Path) -> None:
    ensure_root(tmp_path)
    sink = Sink(
        tmp_path, _manifest(), config=StorageConfig(flush_interval_ms=1000, max_pending_records=10)
    )
    async with sink:
        for i in range(100):
            await sink.put(trade("KRW-BTC", i, BASE_NS + i))
    assert sink.statistics().put_waits >= 9
    assert _keys(tmp_path, "trade") == list(range(100))


async def test_a_sink_is_used_once_and_refuses_records_when_closed(tmp_path: Path) -> None:
    ensure_root(tmp_path)
    sink = Sink(tmp_path, _manifest())
    with pytest.raises(RuntimeError, match="not open"):
        sink.put_nowait(trade("KRW-BTC", 1, BASE_NS))
    async with sink:
        pass
    await sink.aclose()
    with pytest.raises(RuntimeError, match="used once"):
        await sink.__aenter__()


async def test_the_final_flush_happens_when_the_block_fails(tmp_path: Path) -> None:
    ensure_root(tmp_path)
    sink = Sink(tmp_path, _manifest(), config=StorageConfig(flush_interval_ms=10_000))
    with pytest.raises(ZeroDivisionError):
        async with sink:
            await sink.put(trade("KRW-BTC", 1, BASE_NS))
            _ = 1 / 0
    assert _keys(tmp_path, "trade") == [0]


def _mount_tmpfs(mount: Path, options: str) -> Iterator[Path]:
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount_tmpfs(tmp_path / "tiny", "size=600k")


@pytest.fixture
def read_only_disk(tmp_path: Path) -> Iterator[Path]:
    yield from _mount_tmpfs(tmp_path / "ro", "ro,size=100k")


async def test_a_full_disk_is_a_clear_error_and_leaves_no_unreadable_file(tiny_disk: Path) -> None:
    ensure_root(tiny_disk)
    sink = Sink(tiny_disk, _manifest(), config=StorageConfig(flush_interval_ms=5))
    with pytest.raises(StorageError, match="full") as info:
        async with sink:
            for i in range(20_000):
                await sink.put(orderbook("KRW-BTC", BASE_NS + i))
    assert "free space" in str(info.value)
    _assert_all_readable(tiny_disk)


def _assert_all_readable(root: Path) -> None:
    for path in root.rglob("*.parquet"):
        pq.read_table(path)  # every Parquet file under a final name is complete
    for path in segments(root):
        read_segment(path)  # and the journal stays readable for recovery
    assert not list((root / "_tmp").glob("*.parquet*"))


async def test_an_unwritable_directory_is_a_clear_error(read_only_disk: Path) -> None:
    with pytest.raises(StorageError, match="not writable"):
        async with RecordingSession(read_only_disk / "rec"):
            pass
    assert not (read_only_disk / "rec").exists()
