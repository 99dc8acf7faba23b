"""The append-only journal: what was accepted but is not yet in Parquet.

A session writes its journal as a sequence of *segments*, files named
``<root>/_journal/<session_id>-<segment:08d>.journal``. Each flush appends, for every
dataset that received records since the last flush, one frame holding the Arrow IPC message
of the records' batch (the very batch that becomes the Parquet rows, so nothing is converted
twice), then fsyncs. A segment is closed at each rotation and *published*: its batches are
read back, split by date and symbol and written as parts; then the segment is deleted.

File format (little-endian)::

    header   b"TAPEJRNL" u32:length JSON{session_id, segment, schema_version}
    frame*   b"TJFR" u8:len(dataset) dataset u32:crc32(payload) u64:len(payload) payload

Publishing fsyncs each part before it takes its final name and each directory it touched once,
all before the segment is deleted.

A crash can leave a torn last frame (a short header or payload, or a CRC mismatch); readers
stop at the first such frame, and :func:`recover` truncates nothing but publishes every
complete frame before it. Recovery replays segments oldest first, skipping rows already in a
part (``(session_id, seq)``), so it is idempotent: a crash during recovery is recovered again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import struct
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from recorder.errors import RecordingFormatError
from recorder.files import DirSync, fsync_dir, make_dirs, storage_error, storage_errors
from recorder.layout import JOURNAL_DIR
from recorder.parts import publish_table
from recorder.schema import SCHEMA_VERSION, SUPPORTED_SCHEMA_VERSIONS, schema_for

__all__ = [
    "JournalSegment",
    "PublishResult",
    "SegmentContents",
    "publish_segment",
    "read_segment",
    "segment_path",
    "segments",
]

_FILE_MAGIC: Final = b"TAPEJRNL"
_FRAME_MAGIC: Final = b"TJFR"
_FRAME_HEAD: Final = struct.Struct("<4sB")
_FRAME_TAIL: Final = struct.Struct("<IQ")
_NAME: Final = re.compile(r"^(?P<session>.+)-(?P<segment>\d{8})\.journal$")


def segment_path(root: Path, session_id: str, segment: int) -> Path:
    """Return the path of one journal segment."""
    return root / JOURNAL_DIR / f"{session_id}-{segment:08d}.journal"


def segments(root: Path) -> list[Path]:
    """Return every journal segment under ``root``, oldest first."""
    directory = root / JOURNAL_DIR
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if _NAME.match(p.name)]
    return sorted(found, key=lambda p: p.name)


class JournalSegment:
    """One open segment, appended to by a single writer thread.

    Create it with :meth:`create`; :meth:`append` each flush; :meth:`close` at rotation,
    then publish it with :func:`publish_segment`.
    """

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self.size_bytes = size
        self.rows = 0

    @classmethod
    def create(cls, root: Path, session_id: str, segment: int) -> JournalSegment:
        """Create segment ``segment`` of ``session_id`` with its header, durably.

        Raises:
            StorageError: the journal cannot be written.
        """
        path = segment_path(root, session_id, segment)
        with storage_errors("creating the journal segment", path):
            if not path.parent.is_dir():
                make_dirs(path.parent)
            meta = json.dumps(
                {"session_id": session_id, "segment": segment, "schema_version": SCHEMA_VERSION}
            ).encode()
            header = _FILE_MAGIC + struct.pack("<I", len(meta)) + meta
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            try:
                _write_all(fd, header)
                os.fsync(fd)
                fsync_dir(path.parent)
            except BaseException:
                os.close(fd)
                raise
        return cls(path, fd, len(header))

    def append(self, batches: list[tuple[str, pa.RecordBatch]]) -> int:
        """Append one flush's batches as frames and fsync; return the bytes written.

        Raises:
            StorageError: the write failed (the segment is cut back to its last complete
                frame where possible; stop recording).
            RuntimeError: the segment is closed.
        """
        if self._fd is None:
            raise RuntimeError(f"journal segment {self.path} is closed")
        rows = 0
        chunks: list[bytes | pa.Buffer] = []
        for dataset, batch in batches:
            payload = batch.serialize()
            name = dataset.encode()
            chunks.append(_FRAME_HEAD.pack(_FRAME_MAGIC, len(name)) + name)
            chunks.append(_FRAME_TAIL.pack(zlib.crc32(payload), payload.size))
            chunks.append(payload)  # joined below without an intermediate copy
            rows += batch.num_rows
        blob = b"".join(chunks)
        try:
            _write_all(self._fd, blob)
            os.fdatasync(self._fd)
        except OSError as exc:
            # Leave no torn frame behind if the disk lets us cut it off.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size_bytes)
            raise storage_error("appending to the journal", self.path, exc) from exc
        self.size_bytes += len(blob)
        self.rows += rows
        return len(blob)

    def close(self) -> None:
        """Close the segment's file (idempotent); its content is already durable."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@dataclass(slots=True)
class SegmentContents:
    """What a segment holds: its session, the batches per dataset, and whether its tail
    was torn (``torn_bytes`` bytes after the last complete frame)."""

    session_id: str
    segment: int
    batches: dict[str, list[pa.RecordBatch]] = field(default_factory=lambda: defaultdict(list))
    torn_bytes: int = 0

    @property
    def rows(self) -> int:
        """Rows in complete frames."""
        return sum(b.num_rows for bs in self.batches.values() for b in bs)


def read_segment(path: Path) -> SegmentContents:
    """Read every complete frame of a segment.

    Raises:
        RecordingFormatError: the file is not a journal segment, or was written by a schema
            version this tape cannot read.
    """
    # Mapped, not read: the batches point into the file's pages, which the kernel may drop
    # and take back; nothing of the segment stays in this process's heap afterwards.
    if path.stat().st_size == 0:
        return SegmentContents("", -1, torn_bytes=0)
    with pa.memory_map(str(path)) as mapped:
        buffer = mapped.read_buffer()
    data = memoryview(buffer)
    if not _FILE_MAGIC.startswith(bytes(data[: len(_FILE_MAGIC)])):
        raise RecordingFormatError(
            f"{path} is not a tape journal segment: move it out of the journal directory"
        )
    meta_len = struct.unpack_from("<I", data, len(_FILE_MAGIC))[0] if len(data) >= 12 else 0
    offset = len(_FILE_MAGIC) + 4 + meta_len
    if len(data) < 12 or len(data) < offset:
        # Torn while being created: the header is written (and fsynced) before any frame.
        return SegmentContents("", -1, torn_bytes=len(data))
    try:
        meta = json.loads(bytes(data[len(_FILE_MAGIC) + 4 : offset]))
        version = int(meta["schema_version"])
        contents = SegmentContents(str(meta["session_id"]), int(meta["segment"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise RecordingFormatError(f"{path} has an unreadable journal header: {exc}") from exc
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise RecordingFormatError(
            f"{path} was journaled with schema version {version}: install a newer tape"
        )
    for dataset, start, length in _frames(data, offset):
        payload = buffer.slice(start, length)
        contents.batches[dataset].append(
            pa.ipc.read_record_batch(payload, schema_for(dataset, version))
        )
        offset = start + length
    contents.torn_bytes = len(data) - offset
    return contents


def _frames(data: memoryview, offset: int) -> Iterator[tuple[str, int, int]]:
    # Yield (dataset, payload offset, payload length) of each complete, intact frame.
    while offset + _FRAME_HEAD.size <= len(data):
        magic, name_len = _FRAME_HEAD.unpack_from(data, offset)
        cursor = offset + _FRAME_HEAD.size
        if magic != _FRAME_MAGIC or cursor + name_len + _FRAME_TAIL.size > len(data):
            return
        name = bytes(data[cursor : cursor + name_len])
        cursor += name_len
        crc, length = _FRAME_TAIL.unpack_from(data, cursor)
        cursor += _FRAME_TAIL.size
        if cursor + length > len(data) or zlib.crc32(data[cursor : cursor + length]) != crc:
            return
        try:
            dataset = name.decode()
            schema_for(dataset)
        except (UnicodeDecodeError, KeyError):
            return
        yield dataset, cursor, length
        offset = cursor + length


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What publishing one segment wrote."""

    session_id: str
    rows: dict[str, int]
    parts: tuple[Path, ...]
    last_received_ns: int | None
    torn_bytes: int


def publish_segment(
    root: Path, path: Path, *, compression: str, dedupe: bool = False
) -> PublishResult:
    """Write a closed segment's rows as parts, then delete the segment.

    ``dedupe=True`` (recovery) skips rows a previous attempt already wrote.

    Raises:
        StorageError: a part could not be written; the segment stays for the next attempt.
        RecordingFormatError: the segment is not readable as a journal.
    """
    with storage_errors("reading the journal segment", path):
        contents = read_segment(path)
    rows: dict[str, int] = {}
    written: list[Path] = []
    last_ns: int | None = None
    dirs = DirSync()
    for dataset, batches in contents.batches.items():
        table = pa.Table.from_batches(batches, schema=schema_for(dataset))
        written += publish_table(
            root, dataset, table, compression=compression, dedupe=dedupe, later=dirs
        )
        rows[dataset] = table.num_rows
        if table.num_rows:
            newest = pc.max(table["received_ns"]).as_py()
            last_ns = newest if last_ns is None else max(last_ns, newest)
        del table
    contents.batches.clear()
    # Every part is complete under its name; its directory entry must be durable before the
    # journal that could rebuild it goes: one fsync per directory touched, then the delete.
    with storage_errors("making the parts durable under", root):
        dirs.sync()
    with storage_errors("removing the published journal segment", path):
        path.unlink()
        fsync_dir(path.parent)
    return PublishResult(contents.session_id, rows, tuple(written), last_ns, contents.torn_bytes)
