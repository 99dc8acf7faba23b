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
from replay.files import Parts, Unopened, check_root, discover, release_arrow_memory
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
    parts: dict[str, Parts]
    sessions: tuple[SessionInfo, ...]

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols that have selected files, sorted."""
        return tuple(sorted(set().union(*(parts.symbols for parts in self.parts.values()))))


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
    # Reading the footers leaves the allocators holding freed memory (the C one 7 MiB of a
    # replay's peak with 480 parts as with 4,800; Arrow's 4 MiB with 30,000): hand it back,
    # or the replay keeps it to the end.
    release_freed_memory()
    release_arrow_memory()
    return found


def _overlapping(ranges: Sequence[dict[str, tuple[int, int]]]) -> bool:
    # Whether any two sessions' receive ranges (from statistics) overlap.
    spans: dict[str, list[int]] = {}
    for found in ranges:
        for session, (low, high) in found.items():
            span = spans.setdefault(session, [low, high])
            span[0], span[1] = min(span[0], low), max(span[1], high)
    ordered = sorted(spans.values())
    return any(b[0] <= a[1] for a, b in itertools.pairwise(ordered))


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
    pending = Unopened()
    for dataset in datasets:
        pending.add(the_plan.parts.get(dataset) or Parts(dataset), selection, columns, batch_size)
    sessions = pending.sessions()
    others = [d for d in REPLAYED_DATASETS if d not in datasets and d in the_plan.parts]
    if len(sessions) > 1 and others:
        keys = Unopened()
        for dataset in others:
            keys.add(the_plan.parts[dataset], selection, _KEYS, sessions=set(sessions))
        if _overlapping([pending.ranges(), keys.ranges()]):
            pending.extend(keys)
    if not clock and len(sessions) == 1:
        pending.without_clock()
    yield from replay_order(pending)
