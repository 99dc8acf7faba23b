"""From a selection to ordered rows: which files, which cursors, which sessions.

:func:`plan` does the (blocking) discovery once: the part files of every replayed dataset
that meet the selection, their footers checked, and the session manifests. :func:`segments`
then yields the rows in replay order (:func:`replay.order.replay_order`) with the columns
asked for. Call both off the event loop.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from backbone.memory import release_freed_memory
from recorder.layout import SESSIONS_DIR
from recorder.schema import DATASETS
from replay.errors import InvalidReplayArgument
from replay.files import Cursor, PartFile, check_root, cursors, discover
from replay.order import Segment, replay_order
from replay.selection import REPLAYED_DATASETS, Selection

__all__ = ["Plan", "SessionInfo", "plan", "segments"]

_log = logging.getLogger(__name__)
_KEYS = ("session_id", "seq", "received_ns")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """What a session manifest says that replay uses (all optional in the manifest)."""

    session_id: str
    started_ns: int | None
    symbols: tuple[str, ...]
    markets: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class Plan:
    """The files of a selection, per dataset, and what the manifests say."""

    selection: Selection
    parts: dict[str, list[PartFile]]
    sessions: tuple[SessionInfo, ...]

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols that have selected files, sorted."""
        found = {p.symbol for parts in self.parts.values() for p in parts if p.symbol}
        return tuple(sorted(found))


def _read_sessions(selection: Selection) -> tuple[SessionInfo, ...]:
    directory = selection.root / SESSIONS_DIR
    if not directory.is_dir():
        return ()
    out = []
    for path in sorted(directory.glob("*.json")):
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            info = SessionInfo(
                session_id=str(body["session_id"]),
                started_ns=int(body["started_ns"]) if body.get("started_ns") is not None else None,
                symbols=tuple(str(s) for s in body.get("symbols", ())),
                markets=tuple(m for m in body.get("markets", ()) if isinstance(m, dict)),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            _log.warning("ignoring unreadable session manifest %s (%s)", path, exc)
            continue
        out.append(info)
    return tuple(out)


def plan(selection: Selection, datasets: Sequence[str] = REPLAYED_DATASETS) -> Plan:
    """Discover the files of ``datasets`` that meet ``selection`` (blocking).

    Raises:
        RecordingNotFound: the root is not a recording.
        RecordingFormatError: a file is unreadable; UnsupportedSchemaVersion for a file of
            a version replay does not read.
        InvalidReplayArgument: an unknown dataset.
    """
    check_root(selection.root)
    for dataset in datasets:
        if dataset not in DATASETS:
            raise InvalidReplayArgument(
                f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}"
            )
    found = Plan(
        selection,
        {dataset: discover(selection, dataset) for dataset in datasets},
        _read_sessions(selection),
    )
    # Reading the footers leaves the C allocator holding freed memory (7 MiB of a replay's
    # peak with 480 parts as with 4,800): hand it back, or the replay keeps it to the end.
    release_freed_memory()
    return found


def _overlapping(cursor_sets: Sequence[Sequence[Cursor]]) -> bool:
    # Whether any two sessions' receive ranges (from statistics) overlap.
    ranges: dict[str, list[int]] = {}
    for group in cursor_sets:
        for cursor in group:
            for info in cursor.groups:
                low = info.recv_min if info.recv_min is not None else cursor.bound_ns
                high = info.recv_max if info.recv_max is not None else 2**63 - 1
                span = ranges.setdefault(cursor.session, [low, high])
                span[0], span[1] = min(span[0], low), max(span[1], high)
    spans = sorted(ranges.values())
    return any(b[0] <= a[1] for a, b in itertools.pairwise(spans))


def segments(
    the_plan: Plan,
    datasets: Sequence[str],
    columns: Sequence[str] | None = None,
    batch_size: int | None = None,
    *,
    clock: bool = True,
) -> Iterator[Segment]:
    """Yield the selected rows of ``datasets`` in replay order (blocking reads).

    ``columns`` projects what is read of ``datasets`` (``None``: everything);
    ``batch_size`` is the rows read per file at a time (default: per dataset). When the
    rows of several sessions overlap in time, the key columns of the other replayed
    datasets are read too, so the clock, and with it the order, is exactly the replay's.
    ``clock=False`` says the caller needs the order only: with one session, the receive
    times are then not read at all (the order is ``seq``).
    """
    selection = the_plan.selection
    wanted = [cursors(the_plan.parts.get(d, []), selection, columns, batch_size) for d in datasets]
    sessions = {c.session for group in wanted for c in group}
    others = [d for d in REPLAYED_DATASETS if d not in datasets and d in the_plan.parts]
    if len(sessions) > 1 and others:
        extra = [
            [c for c in cursors(the_plan.parts[d], selection, _KEYS) if c.session in sessions]
            for d in others
        ]
        if _overlapping([*wanted, *extra]):
            wanted.extend(extra)
    if not clock and len(sessions) == 1:
        for group in wanted:
            for cursor in group:
                cursor.clock = False
    yield from replay_order(c for group in wanted for c in group)
