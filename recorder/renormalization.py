"""Renormalization: rebuild a recording's record datasets from its raw capture.

A recording made with ``raw`` keeps every WebSocket frame and REST body with the receive time
the backbone stamped on it, and every record the backbone built from a frame carries that same
``received_ns``. So each stored row (``ticker``, ``trade``, ``orderbook``, ``candle`` and the
``rest_*`` references) can be traced back to its frame: the frame is decoded again with
today's :class:`~backbone.unifier.DataUnifier` (or one given), and the row is replaced by the
record of the same kind and key (symbol; plus ``sequential_id`` for trades, timeframe and
``open_time`` for candles) decoded from the frame with its ``source`` and ``received_ns``.
``session_id``, ``seq`` and the REST request times are kept, so the order and partitions do
not change. Rows no frame reproduces (recorded without ``raw``, or a key the new decoder no
longer yields) are kept as they were and counted.

The result is written to a new root; ``events``, ``raw`` and the manifests are copied.
It works one receive date at a time (memory: one day of raw frames).
"""

from __future__ import annotations

import logging
import shutil
from collections import defaultdict, deque
from collections.abc import Hashable
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow as pa

from backbone.errors import BackboneError
from backbone.models import CandleData, MarketRecord, TradeData
from backbone.unifier import DataUnifier
from recorder.errors import RecordingFormatError
from recorder.layout import MANIFEST_FILE, SESSIONS_DIR, parse_part_name
from recorder.manifest import ensure_root
from recorder.parts import Partition, read_part, write_part
from recorder.rows import RestSnapshot, from_table, to_table
from recorder.schema import REST_DATASETS, STREAM_DATASETS

__all__ = ["RenormalizeResult", "renormalize"]

_log = logging.getLogger(__name__)
_REBUILT = (*STREAM_DATASETS, *REST_DATASETS)
_COPIED = ("events", "raw")


@dataclass(slots=True)
class RenormalizeResult:
    """Rows rebuilt from raw frames and rows kept as they were, per dataset; frames the
    decoder refused."""

    rebuilt: dict[str, int] = field(default_factory=dict)
    kept: dict[str, int] = field(default_factory=dict)
    undecodable_frames: int = 0


def _key(record: MarketRecord) -> Hashable:
    if type(record) is TradeData:
        return ("trade", record.symbol, record.sequential_id)
    if type(record) is CandleData:
        return ("candle", record.symbol, record.timeframe, record.open_time)
    return (type(record).__name__, record.symbol)


class _Frames:
    # Records decoded from one day's raw frames, found by (source, received_ns, key).

    def __init__(self, unifier: DataUnifier) -> None:
        self._unifier = unifier
        self._found: dict[tuple[str, int, Hashable], deque[MarketRecord]] = defaultdict(deque)
        self.undecodable = 0

    def add(self, source: str, endpoint: str, payload: bytes, received_ns: int) -> None:
        try:
            if source == "websocket":
                result: Any = self._unifier.unify_ws(payload, received_ns=received_ns)
            else:
                result = self._unifier.unify_rest(endpoint, payload, received_ns=received_ns)
        except (BackboneError, ValueError):
            self.undecodable += 1
            return
        records = result if isinstance(result, list) else [] if result is None else [result]
        for record in records:
            if hasattr(record, "received_ns"):
                self._found[(source, received_ns, _key(record))].append(record)

    def take(self, record: MarketRecord) -> MarketRecord | None:
        queue = self._found.get((record.source, record.received_ns, _key(record)))
        return queue.popleft() if queue else None


def _copy_tree(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, dirs_exist_ok=True)


def renormalize(
    src: Path | str,
    dst: Path | str,
    *,
    unifier: DataUnifier | None = None,
    compression: str = "zstd",
) -> RenormalizeResult:
    """Write to ``dst`` a copy of recording ``src`` whose record datasets are rebuilt from
    its raw capture; return what was rebuilt and kept.

    Raises:
        RecordingFormatError: ``src`` is not a recording, has no raw capture, or ``dst``
            is not empty.
        StorageError: ``dst`` cannot be written.
    """
    src, dst = Path(src), Path(dst)
    if not (src / MANIFEST_FILE).is_file():
        raise RecordingFormatError(f"{src} is not a tape recording (no {MANIFEST_FILE})")
    if not (src / "raw").is_dir():
        raise RecordingFormatError(
            f"{src} has no raw capture: renormalization needs a recording made with --raw"
        )
    if dst.exists() and any(dst.iterdir()):
        raise RecordingFormatError(f"{dst} is not empty: give a new directory for the result")
    unifier = unifier or DataUnifier()
    ensure_root(dst)
    _copy_tree(src / SESSIONS_DIR, dst / SESSIONS_DIR)
    for dataset in _COPIED:
        _copy_tree(src / dataset, dst / dataset)
    result = RenormalizeResult()
    days = sorted(
        {
            d.name
            for dataset in _REBUILT
            if (src / dataset).is_dir()
            for d in (src / dataset).iterdir()
        }
    )
    for day in days:
        frames = _Frames(unifier)
        raw_dir = src / "raw" / day
        if raw_dir.is_dir():
            for part in sorted(raw_dir.glob("part-*.parquet")):
                table = read_part(part, ["source", "endpoint", "payload", "received_ns"])
                for row in table.to_pylist():
                    frames.add(row["source"], row["endpoint"], row["payload"], row["received_ns"])
        result.undecodable_frames += frames.undecodable
        for dataset in _REBUILT:
            for part in sorted((src / dataset / day).glob("symbol=*/part-*.parquet")):
                if parse_part_name(part.name) is None:
                    continue
                _rebuild_part(dst, dataset, part, frames, result, compression)
    return result


def _rebuild_part(
    dst: Path,
    dataset: str,
    part: Path,
    frames: _Frames,
    result: RenormalizeResult,
    compression: str,
) -> None:
    table = read_part(part)
    records = from_table(dataset, table)
    sessions = table["session_id"].to_pylist()
    seqs = table["seq"].to_pylist()
    rebuilt: list[Any] = []
    for stored in records:
        inner = stored.record if isinstance(stored, RestSnapshot) else stored
        fresh = frames.take(inner)  # type: ignore[arg-type]
        if fresh is None:
            result.kept[dataset] = result.kept.get(dataset, 0) + 1
            rebuilt.append(stored)
            continue
        result.rebuilt[dataset] = result.rebuilt.get(dataset, 0) + 1
        rebuilt.append(replace(stored, record=fresh) if isinstance(stored, RestSnapshot) else fresh)
    groups: dict[str, tuple[list[Any], list[int]]] = defaultdict(lambda: ([], []))
    order: list[str] = []
    for record, session, seq in zip(rebuilt, sessions, seqs, strict=True):
        if session not in groups:
            order.append(session)
        groups[session][0].append(record)
        groups[session][1].append(seq)
    out = pa.concat_tables(
        to_table(dataset, groups[s][0], session_id=s, seqs=groups[s][1]) for s in order
    )
    day = part.parent.parent.name.partition("=")[2]
    symbol = part.parent.name.partition("=")[2]
    write_part(
        dst,
        Partition(dataset, date.fromisoformat(day), symbol, out),
        compression=compression,
    )
