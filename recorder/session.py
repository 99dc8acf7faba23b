"""One live recording session: the lock, recovery, the manifests and the sink, in order.

``async with RecordingSession(root) as session:`` takes the root's lock (refusing clearly if
another recorder holds it), checks or creates ``tape.json``, recovers whatever a crash left in
the journal into Parquet, writes the new session's manifest and opens its
:class:`~recorder.sink.Sink`. Records given to :meth:`RecordingSession.put` are numbered,
journaled and published; leaving the block flushes everything and releases the lock.

The :class:`~recorder.capture.Recorder` runs one around a backbone; anything else that
produces records live (a tool, a test) can run one directly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from recorder.config import StorageConfig
from recorder.journal import PublishResult
from recorder.lock import DirectoryLock
from recorder.manifest import SessionManifest, ensure_root, new_session_id
from recorder.recording import recover
from recorder.rows import AnyRecord
from recorder.sink import OnRecord, Sink, SinkStatistics

__all__ = ["RecordingSession"]


class RecordingSession:
    """The right to write ``root`` plus an open sink, as an async context manager.

    Raises (on entry):
        RecordingLocked: another process records into ``root``.
        RecordingFormatError: ``root`` is not a recording this tape reads.
        StorageError: ``root`` cannot be written.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        storage: StorageConfig | None = None,
        on_record: OnRecord | None = None,
        symbols: tuple[str, ...] = (),
        channels: tuple[str, ...] = (),
        settings: Mapping[str, Any] | None = None,
        markets: tuple[Mapping[str, Any], ...] = (),
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.root = Path(root)
        self._markets = markets
        self._storage = storage or StorageConfig()
        self._on_record = on_record
        self._symbols = symbols
        self._channels = channels
        self._settings = dict(settings or {})
        self._clock_ns = clock_ns
        self._lock = DirectoryLock(self.root)
        self._sink: Sink | None = None
        self.recovered: list[PublishResult] = []
        """What recovery published on entry (one result per journal segment)."""

    @property
    def session_id(self) -> str:
        """The id of the session being written.

        Raises:
            RuntimeError: the session is not open.
        """
        return self._open_sink().session_id

    @property
    def sink(self) -> Sink:
        """The open sink (for callers that put records at a high rate: call its
        :meth:`~recorder.sink.Sink.put_nowait` while its ``room`` is set).

        Raises:
            RuntimeError: the session is not open.
        """
        return self._open_sink()

    def _open_sink(self) -> Sink:
        if self._sink is None:
            raise RuntimeError("the recording session is not open: use it in `async with`")
        return self._sink

    async def __aenter__(self) -> RecordingSession:
        if self._lock.held or self._sink is not None:
            raise RuntimeError("a RecordingSession is used once: create a new one")
        await asyncio.to_thread(self._lock.acquire)
        try:
            await asyncio.to_thread(ensure_root, self.root)
            self.recovered = await asyncio.to_thread(
                recover, self.root, compression=self._storage.compression
            )
            now_ns = self._clock_ns()
            manifest = SessionManifest(
                session_id=new_session_id(now_ns),
                started_ns=now_ns,
                symbols=self._symbols,
                channels=self._channels,
                settings=self._settings,
                markets=self._markets,
            )
            sink = Sink(
                self.root,
                manifest,
                config=self._storage,
                on_record=self._on_record,
                clock_ns=self._clock_ns,
            )
            await sink.__aenter__()
            self._sink = sink
        except BaseException:
            self._lock.release()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Flush and publish everything, close the session and release the lock (idempotent).

        Raises:
            StorageError: the final writes failed; the journal keeps the rest for recovery.
        """
        try:
            if self._sink is not None:
                await self._sink.aclose()
        finally:
            self._lock.release()

    def describe(
        self,
        *,
        symbols: tuple[str, ...] | None = None,
        markets: tuple[Mapping[str, Any], ...] | None = None,
    ) -> None:
        """Change the symbols and market descriptions of the session's manifest (see
        :meth:`~recorder.sink.Sink.describe`)."""
        self._open_sink().describe(symbols=symbols, markets=markets)

    async def put(self, record: AnyRecord) -> int:
        """Accept ``record`` (waiting under back-pressure) and return its ``seq``."""
        return await self._open_sink().put(record)

    def put_nowait(self, record: AnyRecord) -> int:
        """Accept ``record`` at once, from synchronous code, and return its ``seq``."""
        return self._open_sink().put_nowait(record)

    async def flushed(self, seq: int) -> None:
        """Wait until the record numbered ``seq`` is durably journaled."""
        await self._open_sink().flushed(seq)

    def statistics(self) -> SinkStatistics:
        """Return the sink's counters."""
        return self._open_sink().statistics()
