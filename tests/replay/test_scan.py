"""Batch access: the same selection in the same order as the streams, for vectorized work."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from replay_factories import Market, write_parts

from backbone.models import Record, TradeData
from recorder.schema import schema_for
from replay import scan, scan_batches
from replay.decode import decode


def test_batches_decode_to_the_recorded_records(recording: tuple[Path, list[Record]]) -> None:
    root, records = recording
    for dataset, cls in (("trade", TradeData),):
        batches = list(scan_batches(root, dataset, batch_rows=50))
        assert all(b.schema.equals(schema_for(dataset), check_metadata=False) for b in batches)
        assert max(b.num_rows for b in batches) <= 50 + 8192
        got = [r for b in batches for r in decode(dataset, b)]
        assert got == [r for r in records if type(r) is cls]


def test_every_replayed_dataset_scans_in_stream_order(
    recording: tuple[Path, list[Record]],
) -> None:
    root, records = recording
    for dataset in ("ticker", "trade", "orderbook", "candle", "events"):
        table = pa.Table.from_batches(list(scan_batches(root, dataset)))
        got = decode(dataset, table)
        want = [r for r in records if type(r) is type(got[0])]
        assert got == want, dataset


def test_lazyframe_projection_filter_and_limit(recording: tuple[Path, list[Record]]) -> None:
    root, records = recording
    trades = [r for r in records if type(r) is TradeData]
    frame = scan(root, "trade", symbols="KRW-BTC")
    assert frame.collect_schema()["trade_price"] == pl.Decimal(38, 18)
    btc = [t for t in trades if t.symbol == "KRW-BTC"]
    ids = frame.select("sequential_id").collect()["sequential_id"].to_list()
    assert ids == [t.sequential_id for t in btc]
    asks = frame.filter(pl.col("trade_side") == "ASK").select("sequential_id", "trade_price")
    got = asks.collect().rows()
    assert got == [(t.sequential_id, t.trade_price) for t in btc if t.trade_side == "ASK"]
    assert frame.head(3).collect()["seq"].to_list() == frame.collect()["seq"].to_list()[:3]
    assert frame.select(pl.len()).collect().item() == len(btc)
    # A LazyFrame can be collected again: it reads the files again.
    assert frame.collect().height == len(btc)


def test_reference_datasets_scan_too(tmp_path: Path) -> None:
    from replay_factories import Market

    from recorder import RestSnapshot, write_recording

    records = Market(seed=12).records(40)
    trades = [r for r in records if type(r) is TradeData]
    snapshots = [
        RestSnapshot(record=t, request_start_ns=t.received_ns - 10, request_end_ns=t.received_ns)
        for t in trades[:5]
    ]
    write_recording(tmp_path, records, session_id="s", rest_records=snapshots)
    got = scan(tmp_path, "rest_trade").select("sequential_id", "request_end_ns").collect().rows()
    assert got == [(t.sequential_id, t.received_ns) for t in trades[:5]]


def test_interleaved_markets_gather_in_stream_order_whatever_the_sizes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three markets of one session, interleaved row by row, in rotated parts; files read a
    # few rows at a time, so segments come in every size and batches gather several.
    records = Market(seed=5, symbols=("KRW-BTC", "KRW-ETH", "KRW-XRP")).records(1500)
    for first in range(0, len(records), 500):
        part = records[first : first + 500]
        write_parts(tmp_path, part, session_id="s", seqs=list(range(first, first + len(part))))
    want = [r for r in records if type(r) is TradeData]
    for read_rows in (3, 37, 4096):
        monkeypatch.setattr(sys.modules["replay.scan"], "bulk_rows", lambda *_a, n=read_rows: n)
        for batch_rows in (1, 50, 100_000):
            batches = list(scan_batches(tmp_path, "trade", batch_rows=batch_rows))
            assert all(b.num_rows >= min(batch_rows, 1) for b in batches)
            got = decode("trade", pa.Table.from_batches(batches))
            assert got == want, (read_rows, batch_rows)


def test_a_scan_left_early_stops_its_reading_threads(tmp_path: Path) -> None:
    # Rows are read and ordered ahead on a thread; closing the iterator mid-way ends it.
    records = Market(seed=6, symbols=("KRW-BTC", "KRW-ETH")).records(600)
    for first in range(0, len(records), 200):
        part = records[first : first + 200]
        write_parts(tmp_path, part, session_id="s", seqs=list(range(first, first + len(part))))
    before = set(threading.enumerate())
    batches = scan_batches(tmp_path, "trade", batch_rows=1)
    first_batch = next(batches)
    assert first_batch.num_rows >= 1
    assert set(threading.enumerate()) - before  # the reader is running
    batches.close()
    assert set(threading.enumerate()) - before == set()
