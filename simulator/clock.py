"""The exchange's clocks: real, scaled and manual. All speak integer epoch milliseconds."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """What the exchange needs from a clock."""

    def now_ms(self) -> int:
        """Return the exchange time in epoch milliseconds."""
        ...

    async def sleep_until(self, ms: int) -> None:
        """Return once ``now_ms() >= ms``."""
        ...


class RealClock:
    """Wall-clock time."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    async def sleep_until(self, ms: int) -> None:
        # Waiting for time itself: there is no event to wait on.
        while (delay := ms - self.now_ms()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay / 1000)


class ScaledClock:
    """Exchange time that runs ``speed`` times faster than real time, from ``start_ms``.

    ``start_ms`` defaults to the wall-clock time at construction.
    """

    def __init__(self, speed: float, start_ms: int | None = None) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.speed = float(speed)
        self.start_ms = time.time_ns() // 1_000_000 if start_ms is None else int(start_ms)
        self._origin_ns = time.monotonic_ns()

    def now_ms(self) -> int:
        return (
            self.start_ms + int((time.monotonic_ns() - self._origin_ns) * self.speed) // 1_000_000
        )

    async def sleep_until(self, ms: int) -> None:
        while (delay := ms - self.now_ms()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay / 1000 / self.speed)


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class ManualClock:
    """A clock that moves only when told: ``advance(ms)`` or ``set_ms(ms)``.

    The exchange then emits what became due; await ``Exchange.settle()`` (or POST
    ``/_sim/clock``) to wait until it has been written to the sockets. Advancing from another
    thread than the exchange's is allowed.
    """

    def __init__(self, start_ms: int) -> None:
        self._now = int(start_ms)
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def now_ms(self) -> int:
        return self._now

    def advance(self, ms: int) -> int:
        """Move the clock forward by ``ms`` milliseconds and return the new time.

        Raises:
            ValueError: ``ms`` is negative (the clock never goes back).
        """
        if ms < 0:
            raise ValueError(f"a manual clock only moves forward; got advance({ms})")
        return self.set_ms(self._now + int(ms))

    def set_ms(self, ms: int) -> int:
        """Move the clock to ``ms`` (not earlier than now) and return it.

        Raises:
            ValueError: ``ms`` is earlier than the current time.
        """
        if ms < self._now:
            raise ValueError(f"a manual clock only moves forward; {ms} is before {self._now}")
        self._now = int(ms)
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        still = []
        for target, fut in self._waiters:
            if fut.done():
                continue
            if target > self._now:
                still.append((target, fut))
            elif fut.get_loop() is current:
                fut.set_result(None)
            else:  # advanced from another thread: wake the waiter on its own loop
                fut.get_loop().call_soon_threadsafe(_wake, fut)
        self._waiters = still
        return self._now

    async def sleep_until(self, ms: int) -> None:
        if ms <= self._now:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((ms, fut))
        await fut
