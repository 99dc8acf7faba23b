"""recorder: backbone streams -> journal -> hive-partitioned Parquet, and the on-disk contract.

Produce a recording from in-memory records (tests, tools)::

    from recorder import write_recording
    write_recording(root, records)            # seq = list order, one closed session

The on-disk contract lives in :mod:`recorder.schema` and :mod:`recorder.layout`. Importing
them (or this package) loads nothing of the live client: every name below is imported on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recorder.errors import (
        RecorderError,
        RecordingFormatError,
        RecordingLocked,
        StorageError,
        ValueDoesNotFit,
    )
    from recorder.lock import DirectoryLock
    from recorder.manifest import SessionManifest, read_sessions
    from recorder.recording import RecordingSummary, recover, write_recording
    from recorder.rows import RestSnapshot, dataset_of, from_table, to_batch, to_table

__all__ = [
    "DirectoryLock",
    "RecorderError",
    "RecordingFormatError",
    "RecordingLocked",
    "RecordingSummary",
    "RestSnapshot",
    "SessionManifest",
    "StorageError",
    "ValueDoesNotFit",
    "dataset_of",
    "from_table",
    "read_sessions",
    "recover",
    "to_batch",
    "to_table",
    "write_recording",
]

_HOME = {
    "DirectoryLock": "recorder.lock",
    "RecorderError": "recorder.errors",
    "RecordingFormatError": "recorder.errors",
    "RecordingLocked": "recorder.errors",
    "RecordingSummary": "recorder.recording",
    "RestSnapshot": "recorder.rows",
    "SessionManifest": "recorder.manifest",
    "StorageError": "recorder.errors",
    "ValueDoesNotFit": "recorder.errors",
    "dataset_of": "recorder.rows",
    "from_table": "recorder.rows",
    "read_sessions": "recorder.manifest",
    "recover": "recorder.recording",
    "to_batch": "recorder.rows",
    "to_table": "recorder.rows",
    "write_recording": "recorder.recording",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'recorder' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
