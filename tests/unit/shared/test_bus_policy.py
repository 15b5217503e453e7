from __future__ import annotations

import pytest

from shared.bus.policy import (
    REASON_LIMIT,
    ConsumeOptions,
    Disposition,
    disposition_of,
    failure_reason,
    is_poison,
    poison_reason,
    reclaim_due,
)
from shared.errors import RejectedInput
from shared.messages import MessageError


class OwnRejection(RejectedInput):
    pass


@pytest.mark.parametrize(
    ("error", "disposition"),
    [
        (RejectedInput("quantity 0"), Disposition.DEAD_LETTER),
        (OwnRejection("subclass"), Disposition.DEAD_LETTER),
        (MessageError("malformed"), Disposition.DEAD_LETTER),
        (ValueError("a plain ValueError is a bug, not a rejection"), Disposition.KEEP_PENDING),
        (KeyError("x"), Disposition.KEEP_PENDING),
        (ConnectionError("db down"), Disposition.KEEP_PENDING),
        (TimeoutError(), Disposition.KEEP_PENDING),
        (RuntimeError("boom"), Disposition.KEEP_PENDING),
    ],
)
def test_disposition_dead_letters_only_rejected_input(
    error: Exception, disposition: Disposition
) -> None:
    assert disposition_of(error) is disposition


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RejectedInput("qty 0"), "RejectedInput: qty 0"),
        (KeyError("x"), "KeyError: 'x'"),
        (RuntimeError("two\nlines"), "RuntimeError: two lines"),
    ],
)
def test_failure_reason_is_one_line_with_the_type(error: Exception, reason: str) -> None:
    assert failure_reason(error) == reason


def test_failure_reason_is_bounded() -> None:
    reason = failure_reason(RuntimeError("x" * 5000))
    assert len(reason) == REASON_LIMIT
    assert reason.endswith("...")


@pytest.mark.parametrize(
    ("deliveries", "max_deliveries", "poison"),
    [(1, 1, False), (2, 1, True), (5, 5, False), (6, 5, True), (1, 5, False), (100, 5, True)],
)
def test_is_poison_after_max_deliveries(deliveries: int, max_deliveries: int, poison: bool) -> None:
    assert is_poison(deliveries, max_deliveries) is poison


@pytest.mark.parametrize(
    ("deliveries", "last", "expected"),
    [
        (6, "KeyError: 'x'", "handler failed 5 of max 5 deliveries; last: KeyError: 'x'"),
        (6, None, "last: failure not seen by this process"),
    ],
)
def test_poison_reason_says_how_often_and_why(
    deliveries: int, last: str | None, expected: str
) -> None:
    reason = poison_reason(deliveries, 5, last)
    assert reason.startswith("poison entry: ")
    assert expected in reason


@pytest.mark.parametrize(
    ("last", "now", "interval", "due"),
    [(None, 0.0, 5.0, True), (10.0, 14.9, 5.0, False), (10.0, 15.0, 5.0, True), (10, 100, 5, True)],
)
def test_reclaim_due_on_first_round_and_every_interval(
    last: float | None, now: float, interval: float, due: bool
) -> None:
    assert reclaim_due(last, now, interval) is due


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"count": 0}, "count must be >= 1"),
        ({"block_ms": 0}, "block_ms must be >= 1"),
        ({"reclaim_idle_ms": 0}, "reclaim_idle_ms must be >= 1"),
        ({"max_deliveries": 0}, "max_deliveries must be >= 1"),
        ({"reclaim_interval_s": 0}, "reclaim_interval_s must be > 0"),
    ],
)
def test_consume_options_refuse_unusable_values(kwargs: dict[str, float], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        ConsumeOptions(**kwargs)  # type: ignore[arg-type]
