"""Renormalization: the record datasets rebuilt from the raw capture, exactly."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from click.testing import CliRunner
from recorder_factories import until

from backbone.client import MarketDataBackbone
from backbone.config import BackboneConfig
from backbone.models import ConnectionEvent, EventKind, TradeData
from backbone.unifier import DataUnifier
from recorder import RecordingFormatError, write_recording
from recorder.capture import Recorder
from recorder.config import RecorderConfig, StorageConfig
from recorder.parts import read_part
from recorder.raw import RawTap
from recorder.renormalization import renormalize
from simulator import Exchange, ScaledClock
from tape.cli import main

MARKETS = ("KRW-BTC", "KRW-ETH")
DATASETS = ("trade", "ticker", "orderbook", "candle", "rest_trade", "rest_ticker")


def _table(root: Path, dataset: str) -> pa.Table:
    parts = sorted((root / dataset).rglob("part-*.parquet"))
    table = pa.concat_tables(read_part(p) for p in parts)
    return table.sort_by([("session_id", "ascending"), ("seq", "ascending")])


async def _record_with_raw(root: Path) -> int:
    tap = RawTap()
    config = RecorderConfig(
        symbols=MARKETS,
        raw=True,
        rest_snapshot_interval_s=0.5,
        rest_requests_per_s=4.0,
        storage=StorageConfig(flush_interval_ms=50, rotation_interval_s=1.0),
    )
    trades: list[TradeData] = []
    reconnects: list[ConnectionEvent] = []

    def seen(record: Any, seq: int) -> None:
        if type(record) is TradeData:
            trades.append(record)
        elif type(record) is ConnectionEvent and record.kind is EventKind.RECONNECTED:
            reconnects.append(record)

    exchange = Exchange(seed=5, markets=list(MARKETS), clock=ScaledClock(10))
    async with (
        exchange as ex,
        MarketDataBackbone(
            ex.rest_url, ex.ws_url, config=BackboneConfig(reconcile_interval_s=1.0), raw_sink=tap
        ) as backbone,
    ):
        recorder = Recorder(backbone, root, config=config, on_record=seen, raw_tap=tap)
        async with recorder:
            await until(lambda: len(trades) >= 30)
            ex.faults.apply("disconnect")
            await until(lambda: bool(reconnects) and len(trades) >= 60)
            await until(lambda: recorder.statistics().rest_snapshots >= 10)
    return len(trades)


async def test_renormalizing_with_the_same_decoder_reproduces_every_row(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    await _record_with_raw(src)
    result = renormalize(src, dst)
    assert result.kept.get("trade", 0) == 0 and result.rebuilt["trade"] > 0
    assert result.rebuilt["ticker"] > 0 and result.rebuilt["rest_ticker"] > 0
    for dataset in DATASETS:
        assert _table(dst, dataset).equals(_table(src, dataset)), dataset
    assert _table(dst, "raw").equals(_table(src, "raw"))
    assert sorted(p.name for p in (dst / "_sessions").iterdir()) == sorted(
        p.name for p in (src / "_sessions").iterdir()
    )
    by_cli = tmp_path / "cli"
    done = CliRunner().invoke(main, ["renormalize", str(src), "--out", str(by_cli)])
    assert done.exit_code == 0, done.output
    assert f"written to {by_cli}" in done.output
    assert _table(by_cli, "orderbook").equals(_table(src, "orderbook"))


class _FixedDecoder(DataUnifier):
    """A 'fixed' decoder: trade volumes come out doubled."""

    def unify_ws(self, raw: bytes | str, *, received_ns: int | None = None) -> Any:
        return _double(super().unify_ws(raw, received_ns=received_ns))

    def unify_rest(self, path: str, payload: object, *, received_ns: int | None = None) -> Any:
        return _double(super().unify_rest(path, payload, received_ns=received_ns))


def _double(result: Any) -> Any:
    if isinstance(result, list):
        return [_double(r) for r in result]
    if type(result) is TradeData:
        return replace(result, trade_volume=result.trade_volume * 2)
    return result


async def test_a_fixed_decoder_is_applied_to_old_recordings(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    await _record_with_raw(src)
    renormalize(src, dst, unifier=_FixedDecoder())
    before, after = _table(src, "trade"), _table(dst, "trade")
    assert after["seq"].equals(before["seq"])
    for old, new in zip(
        before["trade_volume"].to_pylist(), after["trade_volume"].to_pylist(), strict=True
    ):
        assert new == old * 2
    assert _table(dst, "orderbook").equals(_table(src, "orderbook"))


def test_a_recording_without_raw_or_a_busy_destination_is_refused(tmp_path: Path) -> None:
    from recorder_factories import BASE_NS, trade

    write_recording(tmp_path / "plain", [trade("KRW-BTC", 1, BASE_NS)])
    with pytest.raises(RecordingFormatError, match="--raw"):
        renormalize(tmp_path / "plain", tmp_path / "out")
    result = CliRunner().invoke(
        main, ["renormalize", str(tmp_path / "plain"), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 1 and "--raw" in result.output
    with pytest.raises(RecordingFormatError, match="not a tape recording"):
        renormalize(tmp_path / "out", tmp_path / "x")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    (tmp_path / "plain" / "raw").mkdir()
    with pytest.raises(RecordingFormatError, match="not empty"):
        renormalize(tmp_path / "plain", tmp_path / "busy")
