"""The recorder's exceptions, grouped by what the caller does next::

RecorderError                     anything the recorder raises on purpose
├── ValueDoesNotFit (ValueError)  a record value cannot be stored exactly: fix the input
│                                 or widen the schema (bump the schema version)
├── RecordingLocked               another live recorder owns the directory: stop it or
│                                 choose another output directory
├── StorageError                  the disk refused a write (full, read-only, no
│                                 permission): free space or fix permissions, then restart
└── RecordingFormatError          a file under the root is not what the on-disk contract
                                  says (unknown version, foreign manifest): upgrade tape or
                                  point at a recording
"""

from __future__ import annotations

__all__ = [
    "RecorderError",
    "RecordingFormatError",
    "RecordingLocked",
    "StorageError",
    "ValueDoesNotFit",
]


class RecorderError(Exception):
    """Base of every error the recorder raises on purpose."""


class ValueDoesNotFit(RecorderError, ValueError):
    """A value of a record cannot be written exactly in its column.

    The message names the dataset, the field, the value and the record's symbol. Nothing of
    the batch holding it was written: fix the producer of the value.
    """

    def __init__(self, dataset: str, field: str, value: object, symbol: str | None, why: str):
        self.dataset = dataset
        self.field = field
        self.value = value
        self.symbol = symbol
        where = f" (symbol {symbol})" if symbol else ""
        super().__init__(f"{dataset}.{field} = {value!r}{where} cannot be stored exactly: {why}")


class RecordingLocked(RecorderError):
    """Another process holds the recording directory's lock.

    ``pid`` is the holder's process id as it wrote it (``None`` when unreadable). Stop that
    recorder or record into another directory.
    """

    def __init__(self, root: str, pid: int | None, detail: str = ""):
        self.root = root
        self.pid = pid
        holder = f"process {pid}" if pid is not None else "another process"
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"{root} is already being recorded by {holder}{extra}: stop that recorder "
            "or choose another output directory"
        )


class StorageError(RecorderError, OSError):
    """Writing to the recording directory failed (disk full, read-only, no permission).

    Everything already in Parquet stays readable and whatever was journaled is recovered on
    the next start: free space or fix the directory, then start again.
    """


class RecordingFormatError(RecorderError):
    """A file under the recording root does not follow the on-disk contract."""
