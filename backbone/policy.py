"""Policies as data plus small pure functions: reconnect backoff, sliding-window rate
limits, Upbit's REST quota.

Nothing here sleeps or does I/O: every method takes ``now`` (seconds on a monotonic clock)
and answers how long to wait, so the shells decide how to wait and tests need no event loop.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from backbone.errors import InvalidArgumentError
from backbone.upbit.protocol.quota import Quota

__all__ = ["Backoff", "QuotaTracker", "SlidingWindow", "backoff_delays", "reserve_all"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """Reconnect delays: exponential from ``initial_s`` by ``factor``, jittered.

    The first ``fast_attempts`` delays are capped at ``fast_cap_s`` (so a brief outage is
    retried at least once a second); later ones grow to ``max_s``. Each delay is drawn
    uniformly from ``[(1 - jitter) * d, d]``. The sequence restarts after a success.
    """

    initial_s: float = 0.05
    factor: float = 2.0
    fast_cap_s: float = 1.0
    fast_attempts: int = 60
    max_s: float = 10.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.fast_cap_s <= self.max_s):
            raise InvalidArgumentError("need 0 < initial_s <= fast_cap_s <= max_s")
        if self.factor < 1 or not 0 <= self.jitter <= 1 or self.fast_attempts < 0:
            raise InvalidArgumentError("need factor >= 1, 0 <= jitter <= 1, fast_attempts >= 0")


def backoff_delays(policy: Backoff, rng: random.Random | None = None) -> Iterator[float]:
    """Yield the delay before each reconnect attempt, forever (restart it after a success)."""
    draw = (rng or random.Random()).random
    delay = policy.initial_s
    attempt = 0
    while True:
        cap = policy.fast_cap_s if attempt < policy.fast_attempts else policy.max_s
        bounded = min(delay, cap)
        yield bounded * (1 - policy.jitter * draw())
        delay *= policy.factor
        attempt += 1


class SlidingWindow:
    """At most ``limit`` events in any ``window_s`` seconds.

    :meth:`reserve` books the next event and returns how long to wait before doing it; a
    caller that then waits that long stays within the limit however its events cluster.
    """

    __slots__ = ("_times", "limit", "window_s")

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise InvalidArgumentError(f"need limit >= 1 and window_s > 0, not {limit}/{window_s}")
        self.limit = limit
        self.window_s = window_s
        self._times: deque[float] = deque()

    def _earliest(self, now: float) -> float:
        times = self._times
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) < self.limit:
            return now
        return max(now, times[-self.limit] + self.window_s)

    def delay(self, now: float) -> float:
        """How long from ``now`` until one more event fits, without booking it."""
        return self._earliest(now) - now

    def reserve(self, now: float) -> float:
        """Book an event at the earliest time it fits; return the wait from ``now``."""
        at = self._earliest(now)
        self._times.append(at)
        return at - now

    def book(self, at: float) -> None:
        """Record an event at ``at`` (not earlier than any booked before)."""
        self._times.append(at)

    def count(self, now: float) -> int:
        """Events booked within the window ending at ``now``."""
        self.delay(now)
        return len(self._times)


def reserve_all(windows: Iterable[SlidingWindow], now: float) -> float:
    """Book one event in every window at the earliest time all allow; return the wait."""
    windows = tuple(windows)
    at = max((now + w.delay(now) for w in windows), default=now)
    for window in windows:
        window.book(at)
    return at - now


class QuotaTracker:
    """Upbit's per-group REST budget, kept so that no one-second window *at the server* ever
    sees more than ``limit_per_s`` requests of a group, however late they travel.

    A request counts from the moment it is sent (:meth:`book`) until ``window_s`` after its
    answer arrived (:meth:`settle`): its arrival at the server lies somewhere in between, so
    of any requests that arrive within one second, the last one sent saw all the others
    counted. Corrected by each ``Remaining-Req`` header and paused by 429/418 answers.
    """

    __slots__ = ("_done", "_in_flight", "_paused_until", "limit_per_s", "window_s")

    def __init__(self, limit_per_s: int = 10, *, window_s: float = 1.02) -> None:
        if limit_per_s < 1 or window_s <= 0:
            raise InvalidArgumentError("need limit_per_s >= 1 and window_s > 0")
        self.limit_per_s = limit_per_s
        self.window_s = window_s
        self._done: dict[str, deque[float]] = {}
        self._in_flight: dict[str, int] = {}
        self._paused_until: dict[str, float] = {}

    def _used(self, group: str, now: float) -> tuple[int, deque[float]]:
        done = self._done.setdefault(group, deque())
        while done and done[0] <= now - self.window_s:
            done.popleft()
        return len(done) + self._in_flight.get(group, 0), done

    def delay(self, group: str, now: float) -> float:
        """How long from ``now`` until a request of ``group`` may go (0: send it now, then
        :meth:`book` it). While only requests in flight fill the budget the answer is a
        short re-check interval."""
        paused = max(self._paused_until.get(group, 0.0), self._paused_until.get("*", 0.0)) - now
        if paused > 0:
            return paused
        used, done = self._used(group, now)
        if used < self.limit_per_s:
            return 0.0
        excess = used - self.limit_per_s
        if excess < len(done):
            return max(0.001, done[excess] + self.window_s - now)
        return 0.005

    def book(self, group: str, now: float) -> None:
        """A request of ``group`` leaves now."""
        del now
        self._in_flight[group] = self._in_flight.get(group, 0) + 1

    def settle(self, group: str, now: float) -> None:
        """The answer (or failure) of a booked request of ``group`` arrived now."""
        self._in_flight[group] = max(0, self._in_flight.get(group, 0) - 1)
        self._done.setdefault(group, deque()).append(now)

    def observe(self, quota: Quota, now: float) -> None:
        """Take in a ``Remaining-Req`` header: with nothing left this second, pause the group
        for a full window (another client on the same IP may be spending the budget)."""
        if quota.remaining_s <= 0:
            self.pause(quota.group, self.window_s, now)

    def pause(self, group: str, seconds: float, now: float) -> None:
        """Send nothing of ``group`` (``"*"``: of any group) for ``seconds`` (after a 429 or
        a 418)."""
        until = now + seconds
        if until > self._paused_until.get(group, 0.0):
            self._paused_until[group] = until

    def paused_for(self, group: str, now: float) -> float:
        """Seconds left in a pause of ``group`` or of every group (0 when not paused)."""
        until = max(self._paused_until.get(group, 0.0), self._paused_until.get("*", 0.0))
        return max(0.0, until - now)
