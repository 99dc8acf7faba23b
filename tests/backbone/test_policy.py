"""Policy objects as data: backoff delays, sliding windows, the REST quota."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backbone.config import BackboneConfig
from backbone.errors import InvalidArgumentError
from backbone.policy import Backoff, QuotaTracker, SlidingWindow, backoff_delays
from backbone.upbit.protocol import Quota


def test_backoff_is_capped_at_one_second_for_the_fast_attempts_then_grows() -> None:
    policy = Backoff(
        initial_s=0.05, factor=2, fast_cap_s=1.0, fast_attempts=10, max_s=8.0, jitter=0.5
    )
    delays = list(itertools.islice(backoff_delays(policy, random.Random(1)), 30))
    assert all(0.025 <= d <= 1.0 for d in delays[:10])
    assert max(delays[10:]) > 1.0 and all(d <= 8.0 for d in delays)
    assert delays[0] < delays[4]  # exponential growth below the cap


def test_backoff_jitter_spreads_clients() -> None:
    firsts = {next(backoff_delays(Backoff(), random.Random(seed))) for seed in range(20)}
    assert len(firsts) == 20


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_s": 0}, {"initial_s": 2.0}, {"factor": 0.5}, {"jitter": 2.0}, {"fast_attempts": -1}],
)
def test_backoff_refuses_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidArgumentError):
        Backoff(**kwargs)  # type: ignore[arg-type]


@settings(deadline=None, max_examples=60)
@given(
    limit=st.integers(1, 6),
    gaps=st.lists(st.floats(0, 0.7, allow_nan=False), min_size=1, max_size=40),
)
def test_sliding_window_never_exceeds_its_limit(limit: int, gaps: list[float]) -> None:
    window = SlidingWindow(limit, 1.0)
    now = 0.0
    booked: list[float] = []
    for gap in gaps:
        now += gap
        booked.append(now + window.reserve(now))
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(booked))  # float rounding
    for i, start in enumerate(booked):
        inside = [t for t in booked[i:] if t < start + 1.0 - 1e-9]  # float rounding
        assert len(inside) <= limit


def test_sliding_window_delay_and_count() -> None:
    window = SlidingWindow(2, 1.0)
    assert window.reserve(0.0) == 0 and window.reserve(0.1) == 0
    assert window.delay(0.2) == pytest.approx(0.8)
    assert window.count(0.5) == 2 and window.count(1.05) == 1
    with pytest.raises(InvalidArgumentError):
        SlidingWindow(0, 1.0)


def test_quota_tracker_counts_a_request_until_a_window_after_its_answer() -> None:
    quota = QuotaTracker(3, window_s=1.0)
    for _ in range(3):
        assert quota.delay("ticker", 0.0) == 0.0
        quota.book("ticker", 0.0)
    assert quota.delay("candles", 0.0) == 0.0  # groups are apart
    assert 0 < quota.delay("ticker", 0.1) <= 0.01  # all in flight: re-check soon
    quota.settle("ticker", 0.2)
    quota.settle("ticker", 0.3)
    assert quota.delay("ticker", 0.5) == pytest.approx(0.7)  # 1 s after the first answer
    assert quota.delay("ticker", 1.25) == 0.0
    quota.settle("ticker", 5.0)
    assert quota.delay("ticker", 6.1) == 0.0
    with pytest.raises(InvalidArgumentError):
        QuotaTracker(0)


def test_quota_tracker_obeys_header_and_pauses() -> None:
    quota = QuotaTracker(10, window_s=1.0)
    quota.observe(Quota("crix-trades", 0), now=5.0)
    assert quota.paused_for("crix-trades", 5.5) == pytest.approx(0.5)
    assert quota.delay("crix-trades", 5.5) == pytest.approx(0.5)
    quota.observe(Quota("crix-trades", 4), now=5.6)
    assert quota.paused_for("crix-trades", 5.6) == pytest.approx(0.4)
    quota.pause("ticker", 3.0, now=1.0)
    quota.pause("ticker", 1.0, now=1.0)  # a shorter pause does not shorten a longer one
    assert quota.paused_for("ticker", 2.0) == pytest.approx(2.0)


@settings(deadline=None, max_examples=50)
@given(
    latencies=st.lists(st.floats(0.0, 0.3, allow_nan=False), min_size=5, max_size=60),
    arrive=st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=60, max_size=60),
)
def test_quota_tracker_never_lets_a_server_window_overflow(
    latencies: list[float], arrive: list[float]
) -> None:
    """Requests sent back to back, each arriving at the server anywhere between its sending
    and its answer: no one-second window at the server holds more than the limit."""
    quota = QuotaTracker(10, window_s=1.0)
    now = 0.0
    pending: list[tuple[float, float]] = []  # (answer time, arrival time)
    arrivals: list[float] = []
    for i, latency in enumerate(latencies):
        while True:
            for answer, arrival in sorted(pending):
                if answer <= now:
                    quota.settle("g", answer)
                    arrivals.append(arrival)
                    pending.remove((answer, arrival))
            wait = quota.delay("g", now)
            if wait == 0:
                break
            now += wait
        quota.book("g", now)
        pending.append((now + latency, now + latency * arrive[i]))
    arrivals += [a for _, a in pending]
    arrivals.sort()
    for i, start in enumerate(arrivals):
        assert len([a for a in arrivals[i:] if a < start + 1.0 - 1e-9]) <= 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ws_format": "XML"},
        {"ping_interval_s": 3.0, "stall_timeout_s": 2.0},
        {"trade_buffer": 0},
        {"reconcile_share": 0},
        {"poll_interval_s": 0},
        {"memory_release_s": 0},
    ],
)
def test_config_refuses_nonsense(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidArgumentError):
        BackboneConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_detect_a_stall_within_three_seconds() -> None:
    config = BackboneConfig()
    assert config.stall_timeout_s + config.ping_interval_s / 2 < 3.0
    assert config.reconnect.fast_cap_s <= 1.0 and config.ws_connects_per_s <= 5


def test_reserve_all_books_every_window_at_once() -> None:
    from backbone.policy import reserve_all

    per_s, per_min = SlidingWindow(5, 1.0), SlidingWindow(7, 60.0)
    waits = [reserve_all((per_s, per_min), 0.0) for _ in range(8)]
    assert waits[:5] == [0.0] * 5 and waits[5] == pytest.approx(1.0)
    assert waits[7] == pytest.approx(60.0)  # the minute budget binds last
    assert reserve_all((), 3.0) == 0.0
