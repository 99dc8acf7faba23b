"""replay: recordings played back as the very same async streams, deterministically.

``ReplayBackbone`` has the live backbone's interface (``stream_*``, ``get_*``) plus
``stream_all()`` and ``digest()``; ``scan()`` and ``scan_batches()`` give the same selection in
the same order for vectorized work. The order is :func:`replay_order`'s (one documented
rule); the digest's canonical form is :mod:`replay.canonical`'s.
"""

from replay.canonical import Digest, canonical_line, json_line
from replay.engine import ReplayBackbone, ReplayStatistics, ReplayStream, replay_digest
from replay.errors import (
    InvalidReplayArgument,
    NotYetReplayed,
    RecordingFormatError,
    RecordingNotFound,
    ReplayClosed,
    ReplayError,
    UnknownSymbol,
    UnsupportedSchemaVersion,
)
from replay.order import replay_order
from replay.scan import scan, scan_batches
from replay.selection import REPLAYED_DATASETS

__all__ = [
    "REPLAYED_DATASETS",
    "Digest",
    "InvalidReplayArgument",
    "NotYetReplayed",
    "RecordingFormatError",
    "RecordingNotFound",
    "ReplayBackbone",
    "ReplayClosed",
    "ReplayError",
    "ReplayStatistics",
    "ReplayStream",
    "UnknownSymbol",
    "UnsupportedSchemaVersion",
    "canonical_line",
    "json_line",
    "replay_digest",
    "replay_order",
    "scan",
    "scan_batches",
]
