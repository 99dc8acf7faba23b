"""Bounded read-ahead: rows in replay order produced on a worker thread, taken on the loop.

Reading Parquet (and the merge's numpy work) happens on a worker thread; the event loop only
takes finished :class:`~replay.order.Segment` pieces from a queue of ``depth`` items. Overflow
policy: the producer blocks when the queue is full (nothing is dropped), so read-ahead is at
most ``depth`` segments beyond what the replay has taken.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

from replay.order import Segment

__all__ = ["DONE", "Failed", "Prefetch"]

DONE: Final = object()
"""Put after the last segment."""


@dataclass(frozen=True, slots=True)
class Failed:
    """The producer raised ``error``; the consumer re-raises it."""

    error: BaseException


class Prefetch:
    """Run ``produce()`` on a worker thread and hand its items over with bounded read-ahead.

    Await :meth:`run` in a task the caller owns; take items with :meth:`get` (a
    :class:`Segment`, :data:`DONE`, or :class:`Failed`); call :meth:`stop` to end early
    (then await the task).
    """

    def __init__(self, produce: Callable[[], Iterator[Segment]], depth: int = 4) -> None:
        self._produce = produce
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self) -> None:
        """Produce until done or stopped (on a worker thread)."""
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._work)

    def items(self) -> Iterator[Segment]:
        """Produce on a worker thread and yield the items here, without an event loop (for
        batch access: the reading overlaps the caller's work). Closing the iterator stops
        the producer and waits for its thread.

        Raises:
            Exception: whatever the producer raised, at the point it raised.
        """
        worker = threading.Thread(target=self._work, name="replay-reader", daemon=True)
        worker.start()
        try:
            while True:
                item = self._queue.get()
                if item is DONE:
                    return
                if isinstance(item, Failed):
                    raise item.error
                yield item  # type: ignore[misc]
        finally:
            self._stop.set()
            while self.get_nowait() is not None:
                pass
            worker.join()

    def _work(self) -> None:
        items = self._produce()
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(DONE)
        except Exception as exc:
            self._put(Failed(exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
            except queue.Full:
                continue
            loop = self._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop closed under us
                    loop.call_soon_threadsafe(self._ready.set)
            return True
        return False

    def get_nowait(self) -> object | None:
        """Return the next item if one is ready, else ``None``."""
        try:
            return self._queue.get_nowait()
        except queue.Empty:
            return None

    async def get(self) -> object:
        """Return the next item, waiting for the producer if needed (:data:`DONE` once
        stopped)."""
        while True:
            self._ready.clear()
            if self._stop.is_set():
                return DONE
            item = self.get_nowait()
            if item is not None:
                return item
            await self._ready.wait()

    def stop(self) -> None:
        """Ask the producer to stop, drop what it read ahead and wake a waiting :meth:`get`
        (idempotent; call it on the loop)."""
        self._stop.set()
        while self.get_nowait() is not None:
            pass
        self._ready.set()
