"""Synchronous writing of whole recordings, and recovery of what a crash left in the journal.

:func:`write_recording` turns in-memory records into a complete recording on disk, exactly as
the live recorder would have written them (same schemas, partitions, names and manifests).
Tests and tools use it to produce recordings without a network::

    from recorder import write_recording
    summary = write_recording(tmp_path / "rec", [trade1, ticker1, trade2])
    # trade1 has seq 0, ticker1 seq 1, trade2 seq 2; all in one session

:func:`recover` publishes every journal segment a crash left behind; the live recorder calls
it at start, before recording resumes.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recorder.compaction import tidy
from recorder.journal import PublishResult, publish_segment, segments
from recorder.layout import session_manifest_path
from recorder.lock import DirectoryLock
from recorder.manifest import SessionManifest, ensure_root, new_session_id, read_sessions
from recorder.manifest import write_session as write_session_manifest
from recorder.memory import release_memory
from recorder.parts import publish_table
from recorder.rows import AnyRecord, RestSnapshot, dataset_of, to_table

__all__ = ["RecordingSummary", "recover", "write_recording"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """What :func:`write_recording` wrote: the session, rows per dataset and the part files."""

    root: Path
    session_id: str
    rows: Mapping[str, int]
    parts: tuple[Path, ...]


def write_recording(
    root: Path | str,
    records: Iterable[AnyRecord],
    *,
    session_id: str | None = None,
    rest_records: Iterable[RestSnapshot] = (),
    raw: Iterable[AnyRecord] = (),
    compression: str = "zstd",
    settings: Mapping[str, Any] | None = None,
    markets: Iterable[Mapping[str, Any]] = (),
) -> RecordingSummary:
    """Write ``records`` as one complete recording session under ``root`` and return a summary.

    ``seq`` follows list order: ``records`` first (which may mix stream records, events,
    :class:`~recorder.rows.RestSnapshot` and :class:`~backbone.models.RawFrame` values), then
    ``rest_records``, then ``raw``. Each record goes to its dataset, partitioned by the UTC
    date of its ``received_ns`` and its symbol; one part per partition. The root manifest and
    a ``closed`` session manifest are written too; ``markets`` goes into the latter as is (one
    mapping per market, see :class:`~recorder.manifest.SessionManifest`). ``session_id``
    defaults to a fresh one.
    Call it again with another session id to add a session to the same root.

    Raises:
        ValueDoesNotFit: a value cannot be stored exactly (nothing of that dataset is written).
        RecordingLocked: a live recorder owns ``root``.
        StorageError: the disk refused a write.
        RecordingFormatError: ``root`` holds a recording of an unknown version.
    """
    root = Path(root)
    with DirectoryLock(root, purpose="write_recording"):
        ensure_root(root)
        by_dataset: dict[str, tuple[list[AnyRecord], list[int]]] = defaultdict(lambda: ([], []))
        seq = 0
        first_ns: int | None = None
        last_ns: int | None = None
        symbols: set[str] = set()
        for record in (*records, *rest_records, *raw):
            group = by_dataset[dataset_of(record)]
            group[0].append(record)
            group[1].append(seq)
            seq += 1
            inner = record.record if isinstance(record, RestSnapshot) else record
            received = inner.received_ns
            first_ns = received if first_ns is None else min(first_ns, received)
            last_ns = received if last_ns is None else max(last_ns, received)
            symbol = getattr(inner, "symbol", None)
            if symbol is not None:
                symbols.add(symbol)
        now_ns = time.time_ns()
        session = session_id or new_session_id(first_ns if first_ns is not None else now_ns)
        tables = {
            dataset: to_table(dataset, recs, session_id=session, seqs=seqs)
            for dataset, (recs, seqs) in by_dataset.items()
        }
        parts: list[Path] = []
        for dataset, table in tables.items():
            parts += publish_table(root, dataset, table, compression=compression)
        rows = {dataset: table.num_rows for dataset, table in tables.items()}
        write_session_manifest(
            root,
            SessionManifest(
                session_id=session,
                started_ns=first_ns if first_ns is not None else now_ns,
                status="closed",
                ended_ns=last_ns if last_ns is not None else now_ns,
                last_received_ns=last_ns,
                symbols=tuple(sorted(symbols)),
                channels=tuple(sorted(rows)),
                settings=dict(settings or {"writer": "write_recording"}),
                rows=rows,
                next_seq=seq,
                markets=tuple(dict(m) for m in markets),
            ),
        )
    return RecordingSummary(root, session, rows, tuple(parts))


def recover(root: Path, *, compression: str) -> list[PublishResult]:
    """Publish every journal segment a crash left under ``root``, oldest first.

    Call it while holding ``root``'s :class:`~recorder.lock.DirectoryLock`, before writing
    anything else. Rows already published by an earlier attempt are not written twice.
    Sessions left ``recording`` are marked ``recovered`` in their manifests.

    Raises:
        StorageError: the disk refused a write; what was published stays, the rest is
            retried on the next start.
        RecordingFormatError: a journal segment is not readable.
    """
    removed = tidy(root)
    if removed:
        _log.info("removed %d unfinished files from %s", removed, root / "_tmp")
    results: list[PublishResult] = []
    for path in segments(root):
        result = publish_segment(root, path, compression=compression, dedupe=True)
        release_memory()
        _log.warning(
            "recovered journal segment %s: %d rows into %d parts%s",
            path.name,
            sum(result.rows.values()),
            len(result.parts),
            f" ({result.torn_bytes} torn bytes at its end dropped)" if result.torn_bytes else "",
        )
        results.append(result)
    by_session: dict[str, list[PublishResult]] = defaultdict(list)
    for result in results:
        by_session[result.session_id].append(result)
    for manifest in read_sessions(root):
        if manifest.status != "recording":
            continue
        rows = dict(manifest.rows)
        last_ns = manifest.last_received_ns
        for result in by_session.get(manifest.session_id, []):
            for dataset, count in result.rows.items():
                rows[dataset] = rows.get(dataset, 0) + count
            if result.last_received_ns is not None:
                last_ns = max(last_ns or 0, result.last_received_ns)
        write_session_manifest(
            root,
            manifest.evolve(
                status="recovered",
                ended_ns=last_ns if last_ns is not None else manifest.started_ns,
                last_received_ns=last_ns,
                rows=rows,
            ),
        )
        _log.warning(
            "session %s had not closed (%s): marked recovered",
            manifest.session_id,
            session_manifest_path(root, manifest.session_id),
        )
    return results
