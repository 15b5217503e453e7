"""Order-rate limits: the token bucket, the broker's sliding windows, and a 1,000-intent burst."""

from __future__ import annotations

import math
import random

import pytest

from services.gatekeeper.risk.token_bucket import (
    OrderRateLimiter,
    SlidingWindowCaps,
    TokenBucket,
    WindowCap,
)


@pytest.mark.parametrize(
    ("takes", "expected"),
    [
        # (time, n) -> taken?
        ([(0.0, 1)] * 5, [True] * 5),
        ([(0.0, 1)] * 6, [True] * 5 + [False]),
        ([(0.0, 5), (0.1, 1), (0.2, 1)], [True, False, True]),
        ([(0.0, 5), (0.19, 1), (0.2, 1)], [True, False, True]),
        ([(0.0, 3), (0.0, 3)], [True, False]),
        ([(10.0, 5), (5.0, 1)], [True, False]),  # time going back never refills
        ([(0.0, 10), (0.5, 1), (1.0, 1), (1.2, 1)], [True, False, False, True]),  # debt
    ],
)
def test_token_bucket_takes_only_what_rate_and_burst_allow(
    takes: list[tuple[float, int]], expected: list[bool]
) -> None:
    bucket = TokenBucket(rate=5.0, burst=5)
    assert [bucket.try_take(t, n) for t, n in takes] == expected


def test_token_bucket_next_available_is_exactly_when_a_take_succeeds() -> None:
    bucket = TokenBucket(rate=3.0, burst=2)
    now = 0.0
    for _ in range(50):
        at = bucket.next_available(now)
        assert at >= now
        if at > now:
            assert not bucket.try_take(now)
        assert bucket.try_take(at)
        now = at


def test_token_bucket_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
    with pytest.raises(ValueError):
        TokenBucket(1, 0)
    with pytest.raises(ValueError):
        TokenBucket(1, 1).try_take(0.0, 0)


@pytest.mark.parametrize(
    ("sends", "expected"),
    [
        ([0.0, 0.1, 0.2], [True, True, False]),  # 2 per second
        ([0.0, 0.5, 1.0], [True, True, True]),  # 0.0 leaves the (0, 1] window at t=1.0
        ([0.0, 0.5, 0.999], [True, True, False]),
        ([0.0, 1.0, 2.0, 3.0, 4.0], [True, True, True, False, False]),  # 3 per 10 s
        ([0.0, 1.0, 2.0, 10.0], [True, True, True, True]),
    ],
)
def test_sliding_windows_hold_every_cap(sends: list[float], expected: list[bool]) -> None:
    caps = SlidingWindowCaps((WindowCap(1.0, 2), WindowCap(10.0, 3)))
    assert [caps.try_take(t) for t in sends] == expected


def test_sliding_windows_next_available_is_when_the_oldest_send_leaves() -> None:
    caps = SlidingWindowCaps((WindowCap(1.0, 2), WindowCap(10.0, 3)))
    for t in (0.0, 0.4, 2.0):
        assert caps.try_take(t)
    assert caps.next_available(2.1) == 10.0
    assert not caps.try_take(9.99)
    assert caps.try_take(10.0)
    assert caps.next_available(10.0, n=4) == math.inf


def test_limiter_takes_from_both_limits_or_neither() -> None:
    limiter = OrderRateLimiter.build(
        rate=100.0, burst=100, per_second=3, per_minute=1000, per_day=10_000
    )
    assert limiter.try_acquire(0.0, 3)
    assert not limiter.try_acquire(0.0, 1)
    # The refused attempt took no tokens from the bucket.
    assert limiter.bucket.tokens(0.0) == pytest.approx(97.0)


def _max_in_window(times: list[float], seconds: float) -> int:
    """The most sends in any window ending at a send: those s with s + seconds > t."""
    worst = 0
    first = 0
    for i, t in enumerate(times):
        while times[first] + seconds <= t:
            first += 1
        worst = max(worst, i + 1 - first)
    return worst


@pytest.mark.parametrize(
    ("seed", "per_second", "per_minute", "per_day", "max_slices"),
    [
        (1, 10, 200, 3000, 1),
        (2, 10, 200, 3000, 10),
        (3, 10, 200, 600, 4),  # the day cap binds inside the run
        (4, 7, 50, 3000, 7),
    ],
)
def test_a_1000_intent_burst_never_exceeds_any_rate_window(
    seed: int, per_second: int, per_minute: int, per_day: int, max_slices: int
) -> None:
    rng = random.Random(seed)
    limiter = OrderRateLimiter.build(5.0, 5, per_second, per_minute, per_day)
    # 1,000 intents: half arrive at the same instant, the rest within 2 s; each needs 1..max slices.
    arrivals = sorted([0.0] * 500 + [rng.uniform(0, 2) for _ in range(500)])
    slices = [rng.randint(1, max_slices) for _ in arrivals]
    sent: list[float] = []
    now = 0.0
    for arrival, n in zip(arrivals, slices, strict=True):
        now = max(now, arrival)
        while not limiter.try_acquire(now, n):
            later = limiter.next_available(now, n)
            assert later > now, "a refusal always names a later time"
            now = later
        sent.extend([now] * n)
    assert len(sent) == sum(slices)
    assert _max_in_window(sent, 1.0) <= per_second
    assert _max_in_window(sent, 60.0) <= per_minute
    assert _max_in_window(sent, 86400.0) <= per_day
    # The token bucket's long-run rate: never more than burst + borrowed + rate x elapsed.
    for i, t in enumerate(sent):
        assert i + 1 <= 5 + max_slices + 5.0 * t + 1e-6
