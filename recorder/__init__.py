"""recorder: backbone streams -> journal -> hive-partitioned Parquet, and the on-disk contract.

Record a running backbone::

    async with MarketDataBackbone(rest_url, ws_url) as backbone:
        async with Recorder(backbone, "data", config=RecorderConfig(symbols=("KRW-BTC",))):
            ...                                 # records until the block ends

Produce a recording from in-memory records (tests, tools)::

    from recorder import write_recording
    write_recording(root, records)            # seq = list order, one closed session

Write records live without a backbone: ``async with RecordingSession(root) as s: await
s.put(record)``. Maintain recordings: :func:`compact`, :func:`renormalize`.

The on-disk contract lives in :mod:`recorder.schema` and :mod:`recorder.layout`. Importing
them (or this package) loads nothing of the live client: every name below is imported on
first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recorder.capture import Recorder, RecorderStatistics
    from recorder.compaction import compact
    from recorder.config import RecorderConfig, StorageConfig
    from recorder.errors import (
        RecorderError,
        RecordingFormatError,
        RecordingLocked,
        StorageError,
        ValueDoesNotFit,
    )
    from recorder.lock import DirectoryLock
    from recorder.manifest import SessionManifest, read_sessions
    from recorder.raw import RawTap
    from recorder.recording import RecordingSummary, recover, write_recording
    from recorder.renormalization import renormalize
    from recorder.rows import RestSnapshot, dataset_of, from_table, to_batch, to_table
    from recorder.session import RecordingSession

__all__ = [
    "DirectoryLock",
    "RawTap",
    "Recorder",
    "RecorderConfig",
    "RecorderError",
    "RecorderStatistics",
    "RecordingFormatError",
    "RecordingLocked",
    "RecordingSession",
    "RecordingSummary",
    "RestSnapshot",
    "SessionManifest",
    "StorageConfig",
    "StorageError",
    "ValueDoesNotFit",
    "compact",
    "dataset_of",
    "from_table",
    "read_sessions",
    "recover",
    "renormalize",
    "to_batch",
    "to_table",
    "write_recording",
]

_HOME = {
    "DirectoryLock": "recorder.lock",
    "RawTap": "recorder.raw",
    "Recorder": "recorder.capture",
    "RecorderConfig": "recorder.config",
    "RecorderStatistics": "recorder.capture",
    "RecordingSession": "recorder.session",
    "StorageConfig": "recorder.config",
    "compact": "recorder.compaction",
    "renormalize": "recorder.renormalization",
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
