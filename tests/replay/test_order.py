"""The replay order is the documented rule, whatever the files look like.

The rule (``replay.order.replay_order``): rows sort by ``(clock, session_id, seq)`` where
``clock`` is the running maximum of ``received_ns`` along the session's ``seq``. The tests
compute it naively from the records written and compare it with what replay yields, for
several sessions overlapping in time, partitions split into many parts, parts merged by the
recorder's compaction, files with many row groups and files mixing sessions.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from replay_factories import BASE_NS, Market, write_parts

from backbone.models import ConnectionEvent, Record, TradeData
from recorder.compaction import compact
from recorder.layout import partition_path
from recorder.rows import dataset_of, symbol_of, to_table
from replay import ReplayBackbone, replay_digest, scan, scan_batches

Session = list[tuple[int, Record]]  # (seq, record) in delivery order


def reference_order(sessions: dict[str, Session]) -> list[tuple[str, int, Record]]:
    keyed = []
    for sid, rows in sessions.items():
        clock = -1
        for seq, record in sorted(rows, key=lambda row: row[0]):
            clock = max(clock, record.received_ns)
            keyed.append(((clock, sid, seq), record))
    keyed.sort(key=lambda item: item[0])
    return [(key[1], key[2], record) for key, record in keyed]


def make_sessions(
    seed: int, count: int, sizes: list[int], offsets_ms: list[int]
) -> dict[str, Session]:
    rng = random.Random(seed)
    out: dict[str, Session] = {}
    for index in range(count):
        records = Market(seed=seed * 10 + index).records(
            sizes[index], start_ns=BASE_NS + offsets_ms[index] * 1_000_000, step_ns=2_000_000
        )
        seq = rng.randrange(0, 5)
        rows: Session = []
        for record in records:
            rows.append((seq, record))
            seq += rng.randrange(1, 4)  # gaps: rest_* rows take seq numbers too
        out[f"20251126T2359{index:02d}000Z-sess{index:04d}"] = rows
    return out


def write_sessions(root: Path, sessions: dict[str, Session], rng: random.Random) -> None:
    for sid, rows in sessions.items():
        cuts = sorted(rng.sample(range(1, len(rows)), k=min(2, len(rows) - 1)))
        for a, b in zip([0, *cuts], [*cuts, len(rows)], strict=True):
            piece = rows[a:b]
            write_parts(root, [r for _, r in piece], session_id=sid, seqs=[s for s, _ in piece])


def replayed(root: Path) -> list[Record]:
    async def run() -> list[Record]:
        async with ReplayBackbone(root) as replay:
            return [record async for record in replay.stream_all()]

    return asyncio.run(run())


@settings(
    deadline=None, max_examples=12, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(1, 3),
    sizes=st.lists(st.integers(2, 60), min_size=3, max_size=3),
    offsets=st.lists(st.integers(0, 80), min_size=3, max_size=3),
)
def test_replay_follows_the_rule(
    tmp_path_factory: object, seed: int, count: int, sizes: list[int], offsets: list[int]
) -> None:
    root = tmp_path_factory.mktemp("rec")  # type: ignore[attr-defined]
    sessions = make_sessions(seed, count, sizes, offsets)
    write_sessions(root, sessions, random.Random(seed))
    want = reference_order(sessions)
    assert replayed(root) == [record for _, _, record in want]
    trades = scan(root, "trade").select("session_id", "seq").collect().rows()
    assert trades == [(sid, seq) for sid, seq, r in want if type(r) is TradeData]


def test_overlapping_sessions_interleave_by_clock_then_session(tmp_path: Path) -> None:
    market = Market(seed=1)
    a = market.records(40, step_ns=3_000_000)
    b = Market(seed=2).records(40, step_ns=3_000_000)
    sessions = {
        "s-a": list(enumerate(a)),
        "s-b": list(enumerate(b)),
    }
    write_sessions(tmp_path, sessions, random.Random(0))
    got = replayed(tmp_path)
    want = reference_order(sessions)
    assert got == [r for _, _, r in want]
    assert len({sid for sid, _, _ in want[:20]}) == 2  # the sessions really interleave


def test_a_row_stored_twice_is_replayed_once(tmp_path: Path) -> None:
    records = Market(seed=3).records(30)
    rows = list(enumerate(records))
    write_parts(tmp_path, records[:20], session_id="s", seqs=list(range(20)))
    write_parts(tmp_path, records[10:], session_id="s", seqs=list(range(10, 30)))
    assert replayed(tmp_path) == [r for _, _, r in reference_order({"s": rows})]
    # Compacted, the rows stored twice are in one file, twice: still replayed once.
    assert any(c.output is not None for c in compact(tmp_path))
    assert replayed(tmp_path) == [r for _, _, r in reference_order({"s": rows})]


def test_compaction_changes_nothing(tmp_path: Path) -> None:
    sessions = make_sessions(4, 2, [80, 80], [0, 30])
    write_sessions(tmp_path, sessions, random.Random(4))
    before = replayed(tmp_path)
    digest = replay_digest(tmp_path)
    done = compact(tmp_path)
    assert any(c.output is not None and len(c.inputs) > 1 for c in done)  # parts were merged
    assert replayed(tmp_path) == before == [r for _, _, r in reference_order(sessions)]
    assert replay_digest(tmp_path) == digest


def _write_raw(root: Path, dataset: str, table: pa.Table, row_group_size: int) -> Path:
    # A part written outside the recorder (another tool's merge), in the contract's schema.
    symbol = table["symbol"][0].as_py() if "symbol" in table.column_names else None
    received = table["received_ns"].to_pylist()
    path = partition_path(root, dataset, symbol, min(received), max(received))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return path


def test_files_with_many_row_groups_and_mixed_sessions(tmp_path: Path) -> None:
    rng = random.Random(5)
    trades_a = [
        t for t in Market(seed=6, symbols=("KRW-BTC",)).records(200) if type(t) is TradeData
    ]
    trades_b = [
        t for t in Market(seed=7, symbols=("KRW-BTC",)).records(200) if type(t) is TradeData
    ]
    table_a = to_table("trade", trades_a, session_id="s-a", seqs=list(range(len(trades_a))))
    table_b = to_table("trade", trades_b, session_id="s-b", seqs=list(range(len(trades_b))))
    # Session a alone, in order, in row groups of 7 rows: streamed row group by row group.
    _write_raw(tmp_path / "one", "trade", table_a, 7)
    # Both sessions in one file, rows shuffled, row groups of 11 rows mixing sessions.
    mixed = pa.concat_tables([table_a, table_b])
    order = list(range(mixed.num_rows))
    rng.shuffle(order)
    _write_raw(tmp_path / "two", "trade", mixed.take(order), 11)
    assert replayed(tmp_path / "one") == trades_a
    sessions = {"s-a": list(enumerate(trades_a)), "s-b": list(enumerate(trades_b))}
    assert replayed(tmp_path / "two") == [r for _, _, r in reference_order(sessions)]


def test_only_the_row_groups_of_the_window_are_read(tmp_path: Path) -> None:
    trades = [t for t in Market(seed=8, symbols=("KRW-BTC",)).records(400) if type(t) is TradeData]
    trades.sort(key=lambda t: t.received_ns)
    table = to_table("trade", trades, session_id="s", seqs=list(range(len(trades))))
    _write_raw(tmp_path, "trade", table, 10)
    from replay.files import discover
    from replay.selection import make_selection

    start, end = trades[100].received_ns, trades[150].received_ns
    (part,) = discover(make_selection(tmp_path, start=start, end=end), "trade")
    assert 5 <= len(part.row_groups) <= 7  # of 18 row groups, those meeting the window
    got = list(scan_batches(tmp_path, "trade", start=start, end=end, columns=["sequential_id"]))
    ids = [i for batch in got for i in batch.column("sequential_id").to_pylist()]
    assert ids == [t.sequential_id for t in trades[100:150]]


def test_a_selected_symbol_reads_only_its_partitions(tmp_path: Path) -> None:
    records = Market(seed=9, symbols=("KRW-BTC", "KRW-ETH", "KRW-XRP")).records(200)
    write_parts(tmp_path, records, session_id="s", seqs=list(range(len(records))))
    from replay.plan import plan
    from replay.selection import make_selection

    the_plan = plan(make_selection(tmp_path, symbols="KRW-ETH"))
    symbols = {p.symbol for parts in the_plan.parts.values() for p in parts}
    assert symbols == {"KRW-ETH", None}  # its partitions, and the events (date only)
    want = [
        r
        for r in records
        if symbol_of(r) == "KRW-ETH"
        or (dataset_of(r) == "events" and (not r.symbols or "KRW-ETH" in r.symbols))  # type: ignore[union-attr]
    ]

    async def run() -> list[Record]:
        async with ReplayBackbone(tmp_path, symbols=["KRW-ETH"]) as replay:
            return [record async for record in replay.stream_all()]

    assert asyncio.run(run()) == want


def test_batches_follow_the_rule_across_overlapping_sessions(tmp_path: Path) -> None:
    sessions = make_sessions(6, 3, [70, 70, 70], [0, 20, 40])
    write_sessions(tmp_path, sessions, random.Random(6))
    want = reference_order(sessions)
    for dataset, cls in (("trade", TradeData), ("events", ConnectionEvent)):
        batches = list(scan_batches(tmp_path, dataset, columns=["session_id", "seq"], batch_rows=7))
        got = [
            row for b in batches for row in zip(*(c.to_pylist() for c in b.columns), strict=True)
        ]
        assert got == [(sid, seq) for sid, seq, r in want if type(r) is cls], dataset
    # The clock decides between the sessions, so the other datasets' keys were read too.
    first = [sid for sid, _, r in want if type(r) is TradeData][:30]
    assert len(set(first)) > 1
