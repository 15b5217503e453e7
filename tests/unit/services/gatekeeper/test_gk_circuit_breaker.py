"""The circuit breaker opens on N failures within the window and closes through a probe."""

from __future__ import annotations

import pytest

from services.gatekeeper.risk.circuit_breaker import CircuitBreaker


def _breaker() -> CircuitBreaker:
    return CircuitBreaker(failures=5, window_s=60.0, cooldown_s=120.0)


@pytest.mark.parametrize(
    ("failure_times", "opens"),
    [
        ([0, 1, 2, 3], False),
        ([0, 1, 2, 3, 4], True),
        ([0, 10, 20, 30, 59.9], True),
        ([0, 10, 20, 30, 60], False),  # the first left the 60 s window
        ([0, 30, 91, 92, 93, 94], False),
        ([0, 30, 61, 62, 63, 64], True),  # 30 is still inside (4, 64]
    ],
)
def test_breaker_opens_on_5_failures_within_60s(failure_times: list[float], opens: bool) -> None:
    breaker = _breaker()
    transitions = [breaker.record_failure(t, "REJECTED: margin") for t in failure_times]
    opened = [t for t in transitions if t is not None]
    assert (breaker.state == "open") is opens
    assert len(opened) == (1 if opens else 0)
    if opens:
        assert opened[0].kind == "BREAKER_OPEN"
        assert "REJECTED: margin" in opened[0].reason


def test_an_open_breaker_denies_until_the_cooldown_then_allows_one_probe() -> None:
    breaker = _breaker()
    for t in range(5):
        breaker.record_failure(float(t), "rejected")
    denial = breaker.denial(100.0)
    assert denial is not None and "circuit breaker open" in denial
    assert breaker.denial(123.999) is not None
    assert breaker.denial(124.0) is None  # opened at 4 s + 120 s cool-down
    assert breaker.state == "half_open"
    breaker.order_sent(124.0)
    assert (
        breaker.denial(124.5) == "circuit breaker half-open: waiting for the probe order's outcome"
    )


def test_an_accepted_probe_closes_the_breaker() -> None:
    breaker = _breaker()
    for t in range(5):
        breaker.record_failure(float(t), "rejected")
    breaker.order_sent(130.0)
    closed = breaker.record_success(130.5)
    assert closed is not None and closed.kind == "BREAKER_CLOSED"
    assert breaker.state == "closed"
    assert breaker.denial(131.0) is None
    # The old failures are forgotten: four new ones do not reopen it.
    for at in (132.0, 133.0, 134.0, 135.0):
        assert breaker.record_failure(at, "rejected") is None
    assert breaker.state == "closed"


def test_a_failed_probe_reopens_for_another_cooldown() -> None:
    breaker = _breaker()
    for t in range(5):
        breaker.record_failure(float(t), "rejected")
    breaker.order_sent(130.0)
    reopened = breaker.record_failure(131.0, "network")
    assert reopened is not None and reopened.kind == "BREAKER_OPEN"
    assert "probe" in reopened.reason
    assert breaker.denial(250.0) is not None
    assert breaker.denial(251.0) is None


def test_success_while_closed_changes_nothing() -> None:
    breaker = _breaker()
    assert breaker.record_success(1.0) is None
    assert breaker.state == "closed"


def test_breaker_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(0, 60, 60)
