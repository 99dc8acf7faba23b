"""The journal: frames survive, torn tails are cut, recovery is idempotent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from recorder_factories import BASE_NS, orderbook, ticker, trade

from recorder import RecordingFormatError, read_sessions, recover, to_batch
from recorder.journal import JournalSegment, publish_segment, read_segment, segments
from recorder.manifest import SessionManifest, write_session
from recorder.parts import read_part

SECOND = 1_000_000_000


def _segment(root: Path, session: str = "s1", flushes: int = 3) -> JournalSegment:
    segment = JournalSegment.create(root, session, 0)
    seq = 0
    for flush in range(flushes):
        ns = BASE_NS + flush * SECOND
        trades = [trade("KRW-BTC", 100 + flush * 10 + i, ns + i) for i in range(4)]
        books = [orderbook("KRW-ETH", ns + 7)]
        segment.append(
            [
                ("trade", to_batch("trade", trades, session_id=session, seqs=range(seq, seq + 4))),
                ("orderbook", to_batch("orderbook", books, session_id=session, seqs=[seq + 4])),
            ]
        )
        seq += 5
    return segment


def _all_rows(root: Path, dataset: str) -> list[tuple[str, int]]:
    keys = []
    for path in (root / dataset).rglob("*.parquet"):
        table = read_part(path)
        keys += zip(table["session_id"].to_pylist(), table["seq"].to_pylist(), strict=True)
    return sorted(keys)


def test_frames_read_back_as_the_batches_written(tmp_path: Path) -> None:
    segment = _segment(tmp_path)
    segment.close()
    contents = read_segment(segment.path)
    assert contents.session_id == "s1"
    assert contents.torn_bytes == 0
    assert [b.num_rows for b in contents.batches["trade"]] == [4, 4, 4]
    assert contents.rows == 15
    first = contents.batches["trade"][0].to_pylist()[0]
    assert (first["sequential_id"], first["seq"]) == (100, 0)


def test_every_torn_tail_keeps_exactly_the_complete_frames(tmp_path: Path) -> None:
    segment = _segment(tmp_path)
    segment.close()
    data = segment.path.read_bytes()
    full = read_segment(segment.path)
    frame_ends = []
    for cut in range(len(data) - 1, 0, -97):
        segment.path.write_bytes(data[:cut])
        try:
            contents = read_segment(segment.path)
        except RecordingFormatError:
            pytest.fail(f"a cut at byte {cut} made the segment unreadable")
        assert contents.rows <= full.rows
        frame_ends.append(contents.rows)
        assert contents.torn_bytes <= cut
    assert frame_ends == sorted(frame_ends, reverse=True)
    assert frame_ends[0] < full.rows and frame_ends[-1] == 0


def test_a_corrupted_frame_ends_the_readable_part(tmp_path: Path) -> None:
    segment = _segment(tmp_path)
    segment.close()
    data = bytearray(segment.path.read_bytes())
    data[-10] ^= 0xFF  # inside the last frame's payload: its CRC no longer matches
    segment.path.write_bytes(bytes(data))
    contents = read_segment(segment.path)
    assert contents.rows == 14  # the last frame (one orderbook) is dropped
    assert contents.torn_bytes > 0


def test_publishing_writes_parts_and_deletes_the_segment(tmp_path: Path) -> None:
    segment = _segment(tmp_path)
    segment.close()
    result = publish_segment(tmp_path, segment.path, compression="zstd")
    assert result.rows == {"trade": 12, "orderbook": 3}
    assert not segment.path.exists()
    assert _all_rows(tmp_path, "trade") == [("s1", s) for s in range(15) if s % 5 != 4]
    assert result.last_received_ns == BASE_NS + 2 * SECOND + 7


def test_recovery_is_idempotent_after_a_crash_mid_publish(tmp_path: Path) -> None:
    write_session(tmp_path, SessionManifest(session_id="s1", started_ns=BASE_NS))
    segment = _segment(tmp_path)
    segment.close()
    copy = tmp_path / "copy.journal"
    shutil.copy(segment.path, copy)
    publish_segment(tmp_path, segment.path, compression="zstd")
    shutil.copy(copy, segment.path)  # as if the crash came before the segment was deleted
    (tmp_path / "_tmp").mkdir(exist_ok=True)
    (tmp_path / "_tmp" / "debris.parquet.tmp").write_bytes(b"half a file")
    results = recover(tmp_path, compression="zstd")
    assert [r.rows for r in results] == [{"trade": 12, "orderbook": 3}]
    assert _all_rows(tmp_path, "trade") == [("s1", s) for s in range(15) if s % 5 != 4]
    assert _all_rows(tmp_path, "orderbook") == [("s1", s) for s in (4, 9, 14)]
    assert segments(tmp_path) == []
    assert not (tmp_path / "_tmp" / "debris.parquet.tmp").exists()
    (session,) = read_sessions(tmp_path)
    assert session.status == "recovered"
    assert session.last_received_ns == BASE_NS + 2 * SECOND + 7


def test_a_segment_torn_at_creation_recovers_to_nothing(tmp_path: Path) -> None:
    segment = JournalSegment.create(tmp_path, "s9", 0)
    segment.close()
    segment.path.write_bytes(segment.path.read_bytes()[:10])
    assert recover(tmp_path, compression="zstd")[0].rows == {}
    assert segments(tmp_path) == []


def test_a_foreign_file_in_the_journal_is_refused(tmp_path: Path) -> None:
    (tmp_path / "_journal").mkdir()
    (tmp_path / "_journal" / "x-00000000.journal").write_bytes(b"not a journal at all")
    with pytest.raises(RecordingFormatError, match="not a tape journal"):
        recover(tmp_path, compression="zstd")


def test_appending_to_a_closed_segment_is_refused(tmp_path: Path) -> None:
    segment = JournalSegment.create(tmp_path, "s1", 0)
    segment.close()
    segment.close()
    batch = to_batch("ticker", [ticker("KRW-BTC", BASE_NS)], session_id="s1", seqs=[0])
    with pytest.raises(RuntimeError, match="closed"):
        segment.append([("ticker", batch)])
