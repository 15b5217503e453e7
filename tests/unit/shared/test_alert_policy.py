"""AlertPolicy: deduplication by key and a rolling rate limit, with time passed in."""

from __future__ import annotations

import pytest

from shared.alert_policy import AlertPolicy, Decision, Verdict

SEND, DUP, RATE = Verdict.SEND, Verdict.DUPLICATE, Verdict.RATE_LIMITED


@pytest.mark.parametrize(
    ("rate", "dedup", "events", "expected"),
    [
        # one alert goes out
        (5, 300, [("a", 0)], [SEND]),
        # the same key inside the dedup window is suppressed, after it goes out again
        (5, 300, [("a", 0), ("a", 10), ("a", 299.9), ("a", 300)], [SEND, DUP, DUP, SEND]),
        # different keys are independent
        (5, 300, [("a", 0), ("b", 1), ("a", 2), ("b", 3)], [SEND, SEND, DUP, DUP]),
        # dedup window 0: no deduplication, only the rate limit
        (2, 0, [("a", 0), ("a", 1), ("a", 2)], [SEND, SEND, RATE]),
        # the rate limit counts alerts in the last 60 s, then frees up
        (2, 300, [("a", 0), ("b", 10), ("c", 20), ("d", 59.9), ("e", 60), ("f", 70), ("g", 71)],
         [SEND, SEND, RATE, RATE, SEND, SEND, RATE]),
        # a rate-limited key is not marked as sent, so it may go out once there is room
        (1, 300, [("a", 0), ("b", 1), ("b", 61)], [SEND, RATE, SEND]),
        # a suppressed duplicate does not use up the rate limit
        (2, 300, [("a", 0), ("a", 1), ("a", 2), ("b", 3)], [SEND, DUP, DUP, SEND]),
        # time going backwards (a clock step) keeps treating the key as recent
        (5, 300, [("a", 100), ("a", 50)], [SEND, DUP]),
    ],
)  # fmt: skip
def test_decisions_over_a_sequence_of_alerts(
    rate: int, dedup: float, events: list[tuple[str, float]], expected: list[Verdict]
) -> None:
    policy = AlertPolicy(rate, dedup)
    assert [policy.decide(key, now).verdict for key, now in events] == expected


def test_the_next_alert_sent_reports_what_was_held_back() -> None:
    policy = AlertPolicy(rate_per_minute=2, dedup_seconds=100)
    assert policy.decide("halt", 0).send
    assert policy.decide("halt", 5).verdict is DUP
    assert policy.decide("halt", 6).verdict is DUP
    assert policy.decide("feed", 7).send
    assert policy.decide("token", 8).verdict is RATE
    assert policy.decide("orders", 9).verdict is RATE
    assert policy.decide("halt", 101) == Decision(
        SEND,
        "within the rate limit and not a recent duplicate",
        duplicates_suppressed=2,
        rate_limited_dropped=2,
    )
    # counted once only
    assert policy.decide("other", 102) == Decision(
        SEND, "within the rate limit and not a recent duplicate", 0, 0
    )


@pytest.mark.parametrize(
    ("events", "reason"),
    [
        ([("a", 0), ("a", 12)], "key 'a' went out 12s ago (dedup window 300s)"),
        ([("a", 0), ("b", 1), ("c", 2)], "2 alerts in the last 60s (limit 2)"),
    ],
)
def test_a_suppression_says_why(events: list[tuple[str, float]], reason: str) -> None:
    policy = AlertPolicy(2, 300)
    decisions = [policy.decide(k, t) for k, t in events]
    assert decisions[-1].reason == reason


@pytest.mark.parametrize(("rate", "dedup", "window"), [(0, 300, 60), (5, -1, 60), (5, 300, 0)])
def test_bad_limits_are_rejected(rate: int, dedup: float, window: float) -> None:
    with pytest.raises(ValueError):
        AlertPolicy(rate, dedup, window)
