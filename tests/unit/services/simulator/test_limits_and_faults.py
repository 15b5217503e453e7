"""Rate limits, injected faults, subscriptions and the simulated clock: small pure state."""

from __future__ import annotations

import json

import pytest

from services.simulator.errors import InputError
from services.simulator.faults import Faults
from services.simulator.rate_limits import RateLimits, TokenBucket, family_of
from services.simulator.sim_clock import ReplayClock
from services.simulator.subscriptions import SubscriptionError, Subscriptions


@pytest.mark.parametrize(
    ("rate", "times", "allowed"),
    [
        (1.0, [0.0, 0.1, 0.9, 1.0, 1.5, 2.1], [True, False, False, True, False, True]),
        (3.0, [0.0, 0.0, 0.0, 0.0, 0.34], [True, True, True, False, True]),
        (0.5, [0.0, 1.0, 2.0], [True, False, True]),
    ],
)
def test_a_token_bucket_allows_its_rate_per_second(
    rate: float, times: list[float], allowed: list[bool]
) -> None:
    bucket = TokenBucket(rate)
    assert [bucket.take(t) for t in times] == allowed


@pytest.mark.parametrize(
    ("method", "path", "family"),
    [
        ("GET", "/quote", "quote"),
        ("GET", "/quote/ltp", "quote"),
        ("GET", "/instruments/historical/256265/minute", "historical"),
        ("POST", "/orders/regular", "orders"),
        ("DELETE", "/orders/regular/1", "orders"),
        ("GET", "/orders", "other"),
        ("GET", "/user/profile", "other"),
    ],
)
def test_requests_count_against_their_family(method: str, path: str, family: str) -> None:
    assert family_of(method, path) == family


def test_orders_are_limited_per_minute_and_per_day() -> None:
    limits = RateLimits({"orders": 100.0}, orders_per_minute=2, orders_per_day=3)
    assert [limits.check_new_order(t) for t in (0.0, 1.0)] == [None, None]
    assert "per minute" in (limits.check_new_order(2.0) or "")
    assert limits.check_new_order(61.0) is None
    assert "per day" in (limits.check_new_order(200.0) or "")


def test_faults_last_for_their_wall_time_and_clear() -> None:
    faults = Faults()
    actions = faults.apply(
        {"rate_limit_s": 2, "stall_ticks_s": 1.5, "slow_ms": 250, "reject_orders": 3}, 100.0
    )
    assert actions.reject_orders == 3 and not actions.drop_websocket
    assert faults.rate_limited(101.9) and not faults.rate_limited(102.0)
    assert faults.ticks_stalled(101.0) and not faults.heartbeats_stalled(101.0)
    assert faults.response_delay(1e9) == 0.25  # no slow_for_s: until cleared
    faults.apply({"clear": True}, 101.0)
    assert not faults.rate_limited(101.0) and faults.response_delay(101.0) == 0.0


@pytest.mark.parametrize(
    "request_body",
    [
        {"explode": True},
        {"rate_limit_s": -1},
        {"drop_websocket": 1},
        {"reject_orders": 1.5},
        {"slow_ms": "x"},
    ],
)
def test_a_bad_fault_request_is_refused(request_body: dict[str, object]) -> None:
    with pytest.raises(InputError):
        Faults().apply(request_body, 0.0)


def test_subscribe_and_mode_are_idempotent() -> None:
    subs = Subscriptions(max_instruments=3)
    first = subs.apply(json.dumps({"a": "subscribe", "v": [1, 2]}))
    again = subs.apply(json.dumps({"a": "subscribe", "v": [1, 2]}))
    assert (first.refreshed, again.refreshed, subs.modes) == ([1, 2], [], {1: "quote", 2: "quote"})
    assert subs.apply(json.dumps({"a": "mode", "v": ["full", [1, 9]]})).refreshed == [1]
    assert subs.apply(json.dumps({"a": "mode", "v": ["full", [1]]})).refreshed == []
    subs.apply(json.dumps({"a": "subscribe", "v": [1]}))
    assert subs.modes == {1: "full", 2: "quote"}  # a repeated subscribe keeps the mode
    subs.apply(json.dumps({"a": "unsubscribe", "v": [2, 2, 5]}))
    assert subs.modes == {1: "full"}


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        "[1]",
        json.dumps({"a": "subscribe", "v": "256265"}),
        json.dumps({"a": "subscribe", "v": [True]}),
        json.dumps({"a": "mode", "v": ["turbo", [1]]}),
        json.dumps({"a": "dance", "v": []}),
        json.dumps({"a": "subscribe", "v": [1, 2, 3, 4]}),
    ],
)
def test_bad_client_messages_are_errors(message: str) -> None:
    with pytest.raises(SubscriptionError):
        Subscriptions(max_instruments=3).apply(message)


def test_the_clock_runs_at_its_speed_pauses_and_jumps() -> None:
    clock = ReplayClock(start_epoch=1000.0, speed=60.0, paused=False, wall=0.0)
    assert clock.now(1.0) == 1060.0
    clock.pause(2.0)
    assert clock.now(50.0) == 1120.0
    assert clock.wall_delay_until(2000.0, 50.0) is None
    clock.resume(50.0)
    assert clock.wall_delay_until(1180.0, 50.0) == pytest.approx(1.0)
    clock.set_speed(0.0, 51.0)
    assert clock.at_max_speed and clock.now(99.0) == 1180.0
    clock.jump(5000.0, 99.0)
    assert clock.now(1e6) == 5000.0
    with pytest.raises(ValueError):
        clock.set_speed(-1.0, 0.0)
