"""Compatibility and bad input: every version replay reads, a clear error for the others."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from replay_factories import Market

from backbone.models import Record, TradeData
from recorder import write_recording
from recorder.schema import SCHEMA_VERSION_KEY, UnknownSchemaVersion
from replay import (
    RecordingFormatError,
    RecordingNotFound,
    ReplayBackbone,
    UnsupportedSchemaVersion,
    files,
    replay_digest,
    scan,
)
from replay.errors import InvalidReplayArgument
from replay.files import UPGRADES, PartFile, Parts, RowGroupInfo, Unopened, discover
from replay.selection import make_selection


def _rewrite(path: Path, metadata: dict[bytes, bytes] | None) -> None:
    table = pq.read_table(path, partitioning=None)
    pq.write_table(table.replace_schema_metadata(metadata), path)


def _first_part(root: Path, dataset: str) -> Path:
    return next((root / dataset).rglob("part-*.parquet"))


async def _open(root: Path) -> None:
    async with ReplayBackbone(root):
        pass


def test_every_version_written_has_a_reader() -> None:
    from recorder.schema import SUPPORTED_SCHEMA_VERSIONS

    assert set(SUPPORTED_SCHEMA_VERSIONS) <= set(UPGRADES)


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        ({SCHEMA_VERSION_KEY: b"999", b"tape.dataset": b"trade"}, "999"),
        (None, "no tape schema version"),
        ({SCHEMA_VERSION_KEY: b"one"}, "unreadable"),
    ],
)
def test_an_unknown_schema_version_is_named_with_its_file(
    recording: tuple[Path, list[Record]], metadata: dict[bytes, bytes] | None, match: str
) -> None:
    root, _ = recording
    part = _first_part(root, "trade")
    _rewrite(part, metadata)
    with pytest.raises(UnsupportedSchemaVersion, match=match) as caught:
        asyncio.run(_open(root))
    assert caught.value.path == part and str(part) in str(caught.value)
    assert isinstance(caught.value, UnknownSchemaVersion)  # the contract's own error
    with pytest.raises(UnsupportedSchemaVersion):
        replay_digest(root)
    with pytest.raises(UnsupportedSchemaVersion):
        scan(root, "trade")


def test_a_file_under_the_wrong_dataset(recording: tuple[Path, list[Record]]) -> None:
    root, _ = recording
    part = _first_part(root, "trade")
    _rewrite(part, {SCHEMA_VERSION_KEY: b"1", b"tape.dataset": b"ticker"})
    with pytest.raises(RecordingFormatError, match="holds dataset 'ticker'"):
        replay_digest(root)


def test_a_damaged_file(recording: tuple[Path, list[Record]]) -> None:
    root, _ = recording
    part = _first_part(root, "orderbook")
    part.write_bytes(b"not parquet at all")
    with pytest.raises(RecordingFormatError, match="not a readable Parquet file"):
        replay_digest(root)


def test_a_file_without_the_key_columns(recording: tuple[Path, list[Record]]) -> None:
    root, _ = recording
    part = _first_part(root, "candle")
    table = pq.read_table(part, partitioning=None).drop_columns(["seq"])
    pq.write_table(table, part)
    with pytest.raises(RecordingFormatError, match="key columns"):
        replay_digest(root)


def test_rows_out_of_order_within_a_row_group_are_sorted(tmp_path: Path) -> None:
    trades = [r for r in Market(seed=2, symbols=("KRW-BTC",)).records(60) if type(r) is TradeData]
    write_recording(tmp_path, trades, session_id="s")
    part = _first_part(tmp_path, "trade")
    table = pq.read_table(part, partitioning=None)
    pq.write_table(table.take(list(range(table.num_rows))[::-1]), part)

    async def run() -> list[Record]:
        async with ReplayBackbone(tmp_path) as replay:
            return [r async for r in replay.stream_all()]

    assert asyncio.run(run()) == trades


def test_a_stream_over_many_symbols_reads_each_file_in_smaller_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A merge holds a file of every symbol open: nine symbols share the read-ahead of four,
    # so each file reads a third of the rows at a time (in the same order).
    monkeypatch.setattr(files, "_BATCH_ROWS", {"trade": 30})
    monkeypatch.setattr(files, "_MIN_SHARED_ROWS", 1)
    symbols = tuple(f"KRW-S{i}" for i in range(9))
    trades = [r for r in Market(seed=4, symbols=symbols).records(900) if type(r) is TradeData]
    write_recording(tmp_path, trades, session_id="s")
    selection = make_selection(tmp_path)
    pending = Unopened()
    pending.add(discover(selection, "trade"), selection)
    of_session = pending.of_session("s")
    opened = [of_session.pop() for _ in range(len(of_session))]
    assert len(opened) == 9 and {c.sharing for c in opened} == {3}
    chunk = opened[0].next_chunk()
    for cursor in opened:
        cursor.close()
    assert chunk is not None and len(chunk) == 10

    async def run() -> list[Record]:
        async with ReplayBackbone(tmp_path) as replay:
            return [r async for r in replay.stream_trade(list(symbols))]

    assert asyncio.run(run()) == trades


_I64 = st.integers(-(2**63), 2**63 - 1)
_GROUP = st.builds(
    RowGroupInfo,
    index=st.integers(0, 2**20),
    num_rows=st.integers(1, 2**31),
    session=st.one_of(st.none(), st.sampled_from(["s-a", "s-b", "s-c"])),
    seq_sorted=st.booleans(),
    seq_min=st.one_of(st.none(), _I64),
    seq_max=st.one_of(st.none(), _I64),
    recv_min=st.one_of(st.none(), _I64),
    recv_max=st.one_of(st.none(), _I64),
)
_NAME = st.one_of(
    st.tuples(st.integers(0, 10**20), st.integers(0, 10**20)).map(
        lambda t: f"part-{t[0]}-{t[1]}.parquet"
    ),
    st.sampled_from(["part-007-9.parquet", "odd.parquet"]),
)
_PART = st.builds(
    PartFile,
    path=st.tuples(st.sampled_from(["symbol=KRW-BTC", "symbol=KRW-ETH", ""]), _NAME).map(
        lambda t: Path("/r/trade/date=2025-11-26") / t[0] / t[1]
    ),
    dataset=st.just("trade"),
    symbol=st.just(None),
    version=st.integers(1, 3),
    row_groups=st.lists(_GROUP, max_size=4).map(tuple),
    identity=st.one_of(
        st.none(), st.tuples(st.integers(0, 2**64 - 1), st.integers(0, 2**63 - 1), _I64)
    ),
)


def _symbol_dir(name: str) -> str | None:
    return name.removeprefix("symbol=") if name.startswith("symbol=") else None


@given(st.lists(_PART, max_size=8))
def test_parts_give_back_every_part_as_it_was_found(found: list[PartFile]) -> None:
    # Parts packs what discovery found into arrays: whatever a footer or the file system
    # held (statistics missing or at the ends of their range, odd or huge names, several
    # row groups, 64-bit inodes, a date-only partition) must come back equal.
    found = [dataclasses.replace(p, symbol=_symbol_dir(p.path.parent.name)) for p in found]
    parts = Parts("trade")
    for part in found:
        parts.append(part)
    assert list(parts) == found and parts[-1:] == found[-1:]
    assert parts.symbols == {p.symbol for p in found if p.symbol}
    assert parts.session_ids == {g.session for p in found for g in p.row_groups if g.session}


@pytest.mark.parametrize("where", ["missing", "file", "empty"])
def test_a_path_that_is_not_a_recording(tmp_path: Path, where: str) -> None:
    target = tmp_path / "target"
    if where == "file":
        target.write_text("hello")
    elif where == "empty":
        target.mkdir()
    with pytest.raises(RecordingNotFound, match="--out"):
        asyncio.run(_open(target))
    assert issubclass(RecordingNotFound, FileNotFoundError)


def test_bad_selections(recording: tuple[Path, list[Record]]) -> None:
    root, _ = recording
    with pytest.raises(InvalidReplayArgument, match="no time zone"):
        ReplayBackbone(root, start=datetime(2025, 11, 27))
    with pytest.raises(InvalidReplayArgument, match="not after start"):
        ReplayBackbone(root, start=10, end=10)
    with pytest.raises(InvalidReplayArgument, match="aware datetime or integer"):
        ReplayBackbone(root, end="2025-11-27")  # type: ignore[arg-type]
    with pytest.raises(InvalidReplayArgument, match="empty"):
        ReplayBackbone(root, symbols=" , ")
    with pytest.raises(InvalidReplayArgument, match="strings"):
        ReplayBackbone(root, symbols=[1])  # type: ignore[list-item]
    with pytest.raises(InvalidReplayArgument, match="path"):
        ReplayBackbone(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidReplayArgument, match="unknown dataset"):
        scan(root, "trades")
    with pytest.raises(InvalidReplayArgument, match="no column"):
        next(iter(__import__("replay").scan_batches(root, "trade", columns=["price"])))


def test_an_empty_window_replays_nothing(recording: tuple[Path, list[Record]]) -> None:
    root, _ = recording

    async def run() -> tuple[list[Record], object]:
        async with ReplayBackbone(root, start=0, end=1, speed=1.0) as replay:
            got = [r async for r in replay.stream_all()]
            return got, replay.clock_ns

    assert asyncio.run(run()) == ([], None)
    assert scan(root, "trade", start=0, end=1).collect().height == 0
    assert len(replay_digest(root, start=0, end=1)) == 64


def test_an_unreadable_manifest_is_skipped(recording: tuple[Path, list[Record]]) -> None:
    root, records = recording
    (root / "_sessions" / "broken.json").write_text("{ not json")

    async def run() -> list[str]:
        async with ReplayBackbone(root) as replay:
            return [m.symbol for m in await replay.get_markets()]

    assert asyncio.run(run()) == sorted({r.symbol for r in records if hasattr(r, "symbol")})


def test_a_declared_seq_order_is_trusted_and_still_checked(tmp_path: Path) -> None:
    trades = [r for r in Market(seed=4, symbols=("KRW-BTC",)).records(80) if type(r) is TradeData]
    write_recording(tmp_path, trades, session_id="s")
    part = _first_part(tmp_path, "trade")
    table = pq.read_table(part, partitioning=None)
    names = table.column_names
    declared = [pq.SortingColumn(names.index("session_id")), pq.SortingColumn(names.index("seq"))]
    pq.write_table(table, part, sorting_columns=declared)

    async def run() -> list[Record]:
        async with ReplayBackbone(tmp_path) as replay:
            return [r async for r in replay.stream_all()]

    assert asyncio.run(run()) == trades  # declared and true: streamed without the check
    pq.write_table(table.take(list(range(table.num_rows))[::-1]), part, sorting_columns=declared)
    with pytest.raises(RecordingFormatError, match="not in seq order"):
        asyncio.run(run())  # declared but false: the batch check still refuses it


def test_a_part_gone_after_opening_is_named_with_what_to_do(
    recording: tuple[Path, list[Record]],
) -> None:
    # What a compaction does between a replay's opening and its reading of the file.
    from replay import scan_batches

    root, _ = recording
    batches = scan_batches(root, "trade")  # the files are found now, read as iterated
    part = _first_part(root, "trade")
    part.unlink()
    with pytest.raises(RecordingFormatError, match="no part that replaced it") as caught:
        list(batches)
    assert caught.value.path == part


def test_parts_a_compaction_merged_after_opening_are_read_from_the_merged_part(
    tmp_path: Path,
) -> None:
    # A replay of the day just over, running when the recorder compacts it after midnight.
    from recorder import compact
    from replay import scan_batches

    records = Market(seed=6).records(400, step_ns=10_000_000)
    for n, start in enumerate(range(0, 400, 100)):  # four sessions: four parts per partition
        write_recording(tmp_path, records[start : start + 100], session_id=f"s{n}")
    rows = pa.Table.from_batches(list(scan_batches(tmp_path, "trade"))).to_pylist()

    async def replayed(compacting: bool) -> list[Record]:
        async with ReplayBackbone(tmp_path) as replay:  # the files are found now
            if compacting:
                assert [c for c in compact(tmp_path) if c.output is not None]
            return [r async for r in replay.stream_all()]

    before = asyncio.run(replayed(compacting=False))
    batches = scan_batches(tmp_path, "trade")  # found now, read as iterated
    during = asyncio.run(replayed(compacting=True))
    assert during == before and len(before) >= 400  # every record, in the same order
    assert pa.Table.from_batches(list(batches)).to_pylist() == rows


def test_parts_a_compaction_replaces_while_they_are_discovered_are_found_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from recorder import compact
    from replay import files

    records = Market(seed=5).records(300, step_ns=10_000_000)
    for n, start in enumerate(range(0, 300, 100)):  # three sessions: three parts per partition
        write_recording(tmp_path, records[start : start + 100], session_id=f"s{n}")
    read_footer = files._read_footer
    compacted: list[int] = []

    def compacting_first(*args: object, **kwargs: object) -> object:
        if not compacted:  # between the listing and the first footer read
            compacted.append(len(compact(tmp_path)))
        return read_footer(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(files, "_read_footer", compacting_first)
    during = replay_digest(tmp_path)
    monkeypatch.undo()
    assert compacted and compacted[0] > 0
    assert during == replay_digest(tmp_path)  # the merged parts, every row once


def _scanned(batches: object) -> list[dict[str, object]]:
    return pa.Table.from_batches(list(batches)).to_pylist()  # type: ignore[call-overload]


def test_a_merged_part_that_took_the_name_of_a_found_part_is_read_as_the_merged_part(
    tmp_path: Path,
) -> None:
    # Session a's part spans the partition's receive range (its rows at t0 and t0+100 s),
    # so the merged part takes its name; session b's part lies inside that range.
    from recorder import compact
    from replay import scan_batches

    market = Market(seed=7, symbols=("KRW-BTC",))
    t0 = 1_764_115_300_000_000_000
    write_recording(
        tmp_path,
        [market.trade("KRW-BTC", t0), market.trade("KRW-BTC", t0 + 100 * 10**9)],
        session_id="a",
    )
    write_recording(
        tmp_path, [market.trade("KRW-BTC", t0 + k * 10**9) for k in range(10, 20)], session_id="b"
    )
    expected = _scanned(scan_batches(tmp_path, "trade"))
    batches = scan_batches(tmp_path, "trade")  # found now, read as iterated
    (merged,) = [c for c in compact(tmp_path) if c.output is not None]
    assert merged.output in merged.inputs  # the name of session a's part
    assert _scanned(batches) == expected


def test_parts_of_one_session_merged_after_opening_keep_a_window_exact(tmp_path: Path) -> None:
    # Three rotations of one session in one partition, replayed through a receive-time window.
    from recorder import compact
    from recorder.parts import publish_table
    from recorder.rows import to_table
    from replay import scan_batches

    market = Market(seed=8, symbols=("KRW-BTC",))
    t0 = 1_764_115_300_000_000_000
    trades = [market.trade("KRW-BTC", t0 + k * 10**9) for k in range(30)]
    for start in range(0, 30, 10):
        table = to_table(
            "trade", trades[start : start + 10], session_id="s", seqs=list(range(start, start + 10))
        )
        publish_table(tmp_path, "trade", table, compression="zstd")
    window = {"start": t0 + 5 * 10**9, "end": t0 + 25 * 10**9}
    expected = _scanned(scan_batches(tmp_path, "trade", **window))
    assert len(expected) == 20
    batches = scan_batches(tmp_path, "trade", **window)
    assert [c for c in compact(tmp_path) if c.output is not None]
    assert _scanned(batches) == expected
