"""Opening recordings: the views, the selection, and the errors a user can meet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from analytics_synth import MS, T0_NS, S, Synth, at

from analytics import MeasureConfig, NotARecording, Recording, Selection, UnreadableRecording
from analytics.queries import load_queries
from recorder.layout import partition_path
from recorder.schema import DATASETS, schema_for

A, B = "KRW-BTC", "KRW-ETH"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    synth = Synth(tmp_path_factory.mktemp("selection"))
    for i in range(10):
        for symbol in (A, B):
            synth.add("trade", received_ns=T0_NS + i * S, symbol=symbol, sequential_id=i)
    # a day later, after 00:00 UTC: another date partition
    synth.add("trade", received_ns=T0_NS + 86_400 * S, symbol=A, sequential_id=99)
    synth.add("events", received_ns=T0_NS, kind="disconnected")
    synth.add("events", received_ns=T0_NS, kind="gap_detected", symbols=(B,))
    return synth.write()


def count(recording: Recording, name: str) -> int:
    return len(recording.rows(name))


def test_every_dataset_is_a_view_even_without_files(root: Path) -> None:
    with Recording(root) as recording:
        assert count(recording, "trade") == 21
        for dataset in DATASETS:
            assert recording.relation(dataset).columns == schema_for(dataset).names
        assert count(recording, "rest_candle") == 0
        assert recording.datasets_present == ("trade", "events")


def test_selection_by_symbol(root: Path) -> None:
    with Recording(root, Selection(symbols=(B,))) as recording:
        assert {row["symbol"] for row in recording.rows("trade")} == {B}
        # events naming another symbol are left out, those naming none kept
        assert [row["kind"] for row in recording.rows("events", order="kind")] == [
            "disconnected",
            "gap_detected",
        ]
    with Recording(root, Selection(symbols=(A,))) as recording:
        assert [row["kind"] for row in recording.rows("events")] == ["disconnected"]


def test_selection_by_receive_time(root: Path) -> None:
    start = at(T0_NS + 3 * S)
    with Recording(root, Selection(start=start, end=start + timedelta(seconds=4))) as recording:
        ids = sorted({row["sequential_id"] for row in recording.rows("trade")})
    assert ids == [3, 4, 5, 6]
    with Recording(root, Selection(start=at(T0_NS + 86_000 * S))) as recording:
        assert [row["sequential_id"] for row in recording.rows("trade")] == [99]


def test_selection_is_validated() -> None:
    naive = datetime(2025, 11, 26)
    with pytest.raises(ValueError, match="aware"):
        Selection(start=naive)
    moment = datetime(2025, 11, 26, tzinfo=UTC)
    with pytest.raises(ValueError, match="swap --from and --to"):
        Selection(start=moment, end=moment)
    with pytest.raises(ValueError, match="silence_quantile"):
        MeasureConfig(silence_quantile=0)
    with pytest.raises(ValueError, match="late_floor_ms"):
        MeasureConfig(late_floor_ms=-1)


def test_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(NotARecording, match="not a folder"):
        Recording(tmp_path / "missing")
    with pytest.raises(NotARecording, match="no tape recording"):
        Recording(tmp_path)


def test_files_without_a_known_version_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "trade" / "date=2025-11-26" / "symbol=KRW-BTC"
    folder.mkdir(parents=True)
    empty = schema_for("trade").empty_table()
    pq.write_table(empty.replace_schema_metadata({}), folder / "part-1-2.parquet")
    with pytest.raises(UnreadableRecording, match="not written by tape"):
        Recording(tmp_path)
    future = schema_for("trade").with_metadata({b"tape.schema_version": b"99"})
    pq.write_table(pa.Table.from_pylist([], schema=future), folder / "part-1-2.parquet")
    with pytest.raises(UnreadableRecording, match="newer tape"):
        Recording(tmp_path)


def test_closed_recordings_and_unknown_names(root: Path) -> None:
    recording = Recording(root, config=MeasureConfig())
    with pytest.raises(KeyError, match="no dataset or measure"):
        recording.relation("nothing")
    with pytest.raises(ValueError, match="not one"):
        recording.one("trade")
    assert recording.frame("trade").height == 21
    recording.close()
    recording.close()
    with pytest.raises(RuntimeError, match="closed"):
        recording.relation("trade")


def test_every_measure_is_documented_and_runs(root: Path) -> None:
    with Recording(root) as recording:
        names = [query.name for query in recording.measures]
        assert len(names) == len(set(names))
        for query in recording.measures:
            assert query.doc, f"{query.name} has no documentation"
            recording.relation(query.name).fetchall()


def test_named_sql_files_are_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fakesql"
    package.mkdir()
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    cases = {
        "before.sql": ("SELECT 1;\n-- name: a\nSELECT 1", "before the first"),
        "empty.sql": ("-- name: a\n-- only a comment\n", "has no SQL"),
        "twice.sql": ("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2", "more than once"),
    }
    for filename, (text, message) in cases.items():
        (package / filename).write_text(text)
        with pytest.raises(ValueError, match=message):
            load_queries("fakesql", filename)
    (package / "good.sql").write_text("-- header\n\n-- name: a\n-- says a\nSELECT 1;\n")
    (query,) = load_queries("fakesql", "good.sql")
    assert (query.name, query.doc, query.sql) == ("a", "says a", "SELECT 1")


def test_empty_datasets_give_empty_measures(tmp_path: Path) -> None:
    Synth(tmp_path).write()  # a session with no record: the manifest alone
    with Recording(tmp_path) as recording:
        assert recording.datasets_present == ()
        assert recording.one("trade_summary")["compared"] == 0
        _ = MS


def test_only_the_selected_files_are_read(tmp_path: Path) -> None:
    synth = Synth(tmp_path)
    for i in range(4):
        synth.add("trade", received_ns=T0_NS + i * S, symbol=A, sequential_id=i)
        synth.add("trade", received_ns=T0_NS + i * S, symbol=B, sequential_id=i)
    synth.write()
    # a part of another symbol, and one received a day later, that tape cannot read
    future = schema_for("trade").with_metadata({b"tape.schema_version": b"99"})
    day = T0_NS + 86_400 * S
    for symbol, first_ns in (("KRW-XRP", T0_NS), (A, day)):
        path = partition_path(tmp_path, "trade", symbol, first_ns, first_ns + S)
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist([], schema=future), path)
    with pytest.raises(UnreadableRecording, match="newer tape"):
        Recording(tmp_path)
    selection = Selection(symbols=(A, B), end=at(T0_NS + 2 * S))
    with Recording(tmp_path, selection) as recording:
        assert count(recording, "trade") == 2 * 2
        assert recording.one("latency_by_channel")["rows"] == 2 * 2
    with Recording(tmp_path, Selection(symbols=(A, B), start=at(day + 2 * S))) as recording:
        assert count(recording, "trade") == 0  # no file selected: the empty view
        assert recording.one("integrity_summary")["out_of_order"] == 0


def _sessions_of_parts(root: Path) -> Path:
    # Three sessions, so each partition holds three parts a compaction merges into one.
    for n in range(3):
        synth = Synth(root, session_id=f"s{n}")
        for i in range(5):
            synth.add(
                "trade", received_ns=T0_NS + (n * 10 + i) * S, symbol=A, sequential_id=n * 10 + i
            )
        synth.write()
    return root


def test_a_check_is_run_again_when_a_compaction_replaced_its_files(tmp_path: Path) -> None:
    from analytics import read_consistently
    from recorder import compact

    root = _sessions_of_parts(tmp_path)
    runs: list[int] = []

    def work() -> int:
        with Recording(root) as recording:  # lists the files
            if not runs:
                assert compact(root)  # merged parts replace the listed ones
            runs.append(1)
            return count(recording, "trade")

    assert read_consistently(work) == 15
    assert len(runs) == 2  # the first run met a vanished file, the second read the merged part


def test_files_that_keep_vanishing_are_a_clear_error(tmp_path: Path) -> None:
    from analytics import RecordingChanged, read_consistently

    root = _sessions_of_parts(tmp_path)

    def work() -> int:
        with Recording(root) as recording:
            next((root / "trade").rglob("part-*.parquet")).unlink()  # one listed part goes
            return count(recording, "trade")

    with pytest.raises(RecordingChanged, match="vanished while they were read, 3 times"):
        read_consistently(work)
