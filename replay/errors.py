"""Every error the replay engine raises, grouped by what the caller does next.

::

    ReplayError
    ├── RecordingNotFound        (also a FileNotFoundError) the path holds no recording:
    │                            point at a recorder's --out directory
    ├── RecordingFormatError     (also a ValueError) a file replay cannot read: a schema
    │   │                        version it does not know, a damaged file, a broken order
    │   └── UnsupportedSchemaVersion   (also recorder.schema.UnknownSchemaVersion):
    │                            written by a newer tape, install it
    ├── NotYetReplayed           (also a LookupError) ``get_*`` before the replay clock has
    │                            reached any such record: advance the replay first
    ├── UnknownSymbol            (also backbone.errors.UnknownSymbolError, a ValueError)
    │                            a symbol the selection does not hold
    ├── InvalidReplayArgument    (also backbone.errors.InvalidArgumentError, a ValueError)
    └── ReplayClosed             (also backbone.errors.ClosedError): used outside its
                                 ``async with`` block

The usage errors derive from the live backbone's own, so a backtest that catches
``UnknownSymbolError`` or ``InvalidArgumentError`` runs unchanged against a replay.
"""

from __future__ import annotations

from pathlib import Path

from backbone.errors import ClosedError, InvalidArgumentError, UnknownSymbolError
from recorder.schema import UnknownSchemaVersion

__all__ = [
    "InvalidReplayArgument",
    "NotYetReplayed",
    "RecordingFormatError",
    "RecordingNotFound",
    "ReplayClosed",
    "ReplayError",
    "UnknownSymbol",
    "UnsupportedSchemaVersion",
]


class ReplayError(Exception):
    """Base of every error the replay engine raises."""


class RecordingNotFound(ReplayError, FileNotFoundError):
    """The path is not a recording. Point at the directory a recorder wrote (its ``--out``)."""


class RecordingFormatError(ReplayError, ValueError):
    """A file of the recording cannot be read as the on-disk contract describes it.

    ``path`` names the file. The message says what is wrong and what to do.
    """

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class UnsupportedSchemaVersion(RecordingFormatError, UnknownSchemaVersion):
    """A file was written with a schema version this tape cannot read: install a newer tape."""


class NotYetReplayed(ReplayError, LookupError):
    """No record of the kind asked for has been replayed yet: the replay clock has not reached
    one. Iterate a stream (or ``stream_all()``) to advance the replay, then ask again."""


class UnknownSymbol(ReplayError, UnknownSymbolError):
    """A symbol the replay's selection does not hold (a ``ValueError``)."""

    def __init__(self, symbol: str, known: tuple[str, ...]) -> None:
        UnknownSymbolError.__init__(self, symbol)
        shown = ", ".join(known[:10]) + (", ..." if len(known) > 10 else "")
        self.args = (
            f"unknown symbol {symbol!r}: there is no data of it to replay; the data holds "
            f"{len(known)} symbols ({shown or 'none'}): pick among them",
        )


class InvalidReplayArgument(ReplayError, InvalidArgumentError):
    """An argument of the wrong form or out of range; the message says which and why."""


class ReplayClosed(ReplayError, ClosedError):
    """The replay was used before ``async with`` opened it, or after it closed."""
