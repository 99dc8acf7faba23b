"""The recording's manifests: ``tape.json`` at the root, one JSON file per session.

``tape.json`` names the on-disk contract's version; a root written by a newer tape is
refused before anything is written into it. A session manifest says who recorded what, when,
with which settings, and how the session ended (``closed`` cleanly, or ``recovered`` from its
journal after a crash). Both are plain JSON, rewritten atomically.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from secrets import token_hex
from typing import Any, Final

from recorder.errors import RecordingFormatError
from recorder.files import atomic_write_bytes, make_dirs, storage_errors
from recorder.layout import LAYOUT_VERSION, MANIFEST_FILE, SESSIONS_DIR, session_manifest_path
from recorder.schema import DATASETS, SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSIONS

__all__ = [
    "ROOT_FORMAT",
    "SessionManifest",
    "ensure_root",
    "new_session_id",
    "read_sessions",
    "tape_version",
    "write_session",
]

ROOT_FORMAT: Final = "tape-recording"
"""The ``format`` value of every ``tape.json``."""


def tape_version() -> str:
    """Return the installed tape's version (``"unknown"`` when not installed)."""
    try:
        return metadata.version("upbit-tape")
    except metadata.PackageNotFoundError:
        return "unknown"


def new_session_id(now_ns: int) -> str:
    """Return a fresh session id; ids sort in the order their sessions started."""
    moment = datetime.fromtimestamp(now_ns // 1_000_000_000, tz=UTC)
    millis = (now_ns // 1_000_000) % 1000
    return f"{moment:%Y%m%dT%H%M%S}{millis:03d}Z-{token_hex(4)}"


def ensure_root(root: Path) -> None:
    """Create the recording root and its ``tape.json`` if missing, or check an existing one.

    Raises:
        RecordingFormatError: ``tape.json`` exists but is not a tape manifest this version
            reads (upgrade tape, or point at another directory).
        StorageError: the directory cannot be created or written.
    """
    path = root / MANIFEST_FILE
    with storage_errors("creating", root):
        if not root.is_dir():
            make_dirs(root)
    if path.exists():
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise RecordingFormatError(f"{path} is not readable JSON ({exc})") from exc
        if not isinstance(found, dict) or found.get("format") != ROOT_FORMAT:
            raise RecordingFormatError(
                f"{path} is not a tape recording manifest: point at a tape recording "
                "or at an empty directory"
            )
        version = found.get("layout_version")
        if version not in SUPPORTED_SCHEMA_VERSIONS:
            raise RecordingFormatError(
                f"{root} was written with layout version {version}, which this tape does not "
                f"read (it reads {sorted(SUPPORTED_SCHEMA_VERSIONS)}): install a newer tape"
            )
        return
    body = {
        "format": ROOT_FORMAT,
        "layout_version": LAYOUT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "datasets": list(DATASETS),
        "written_by": f"tape {tape_version()}",
    }
    atomic_write_bytes(root, path, (json.dumps(body, indent=2) + "\n").encode())


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionManifest:
    """What one recording session was and how it ended.

    ``status`` is ``"recording"`` while it runs, ``"closed"`` after a clean stop and
    ``"recovered"`` when a later start rebuilt its tail from the journal. ``rows`` counts the
    rows written per dataset; ``last_received_ns`` is the newest receive time written.
    ``symbols`` are every market the session recorded (markets listed while it ran join).
    ``markets`` describes them as the exchange listed them, one JSON object per market with
    the fields of :class:`backbone.models.Market`: ``symbol``, ``korean_name``,
    ``english_name``, ``quote_currency``, ``base_currency``, ``warning`` (bool) and
    ``caution`` (a list of strings); empty when the market list could not be fetched.
    """

    session_id: str
    started_ns: int
    status: str = "recording"
    ended_ns: int | None = None
    last_received_ns: int | None = None
    schema_version: int = SCHEMA_VERSION
    pid: int = field(default_factory=os.getpid)
    hostname: str = field(default_factory=socket.gethostname)
    tape_version: str = field(default_factory=tape_version)
    symbols: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    rows: Mapping[str, int] = field(default_factory=dict)
    next_seq: int = 0
    markets: tuple[Mapping[str, Any], ...] = ()

    def evolve(self, **changes: Any) -> SessionManifest:
        """Return a copy with ``changes`` applied."""
        return replace(self, **changes)

    def to_json(self) -> bytes:
        """Return the manifest as UTF-8 JSON."""
        body = asdict(self)
        body["symbols"] = list(self.symbols)
        body["channels"] = list(self.channels)
        body["settings"] = dict(self.settings)
        body["rows"] = dict(self.rows)
        body["markets"] = [
            {k: list(v) if isinstance(v, tuple) else v for k, v in m.items()} for m in self.markets
        ]
        return (json.dumps(body, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> SessionManifest:
        """Parse a manifest written by :meth:`to_json`.

        Raises:
            RecordingFormatError: the bytes are not a session manifest.
        """
        try:
            body = json.loads(data)
            body["symbols"] = tuple(body.get("symbols", ()))
            body["channels"] = tuple(body.get("channels", ()))
            body["markets"] = tuple(dict(m) for m in body.get("markets", ()))
            return cls(**body)
        except (ValueError, TypeError, KeyError) as exc:
            raise RecordingFormatError(f"not a tape session manifest: {exc}") from exc


def write_session(root: Path, manifest: SessionManifest) -> None:
    """Write (or rewrite) a session's manifest atomically.

    Raises:
        StorageError: the disk refused the write; the previous version stays.
    """
    path = session_manifest_path(root, manifest.session_id)
    with storage_errors("creating", path.parent):
        if not path.parent.is_dir():
            make_dirs(path.parent)
    atomic_write_bytes(root, path, manifest.to_json())


def read_sessions(root: Path) -> list[SessionManifest]:
    """Return every session manifest under ``root``, oldest session first.

    Raises:
        RecordingFormatError: a manifest is unreadable.
    """
    directory = root / SESSIONS_DIR
    if not directory.is_dir():
        return []
    return [
        SessionManifest.from_json(path.read_bytes()) for path in sorted(directory.glob("*.json"))
    ]
