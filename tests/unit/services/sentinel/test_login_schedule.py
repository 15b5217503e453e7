from __future__ import annotations

from datetime import datetime, time

import pytest

from services.sentinel.schedule import (
    TokenState,
    next_login_at,
    scheduled_login_skip_reason,
    token_problem,
)
from shared.calendar import load_calendar
from shared.clock import IST

CALENDAR = load_calendar()
LOGIN = time(8, 30)


def ist(month: int, day: int, hh: int, mm: int = 0) -> datetime:
    return datetime(2024, month, day, hh, mm, tzinfo=IST)


@pytest.mark.parametrize(
    ("now", "trading_days_only", "expected"),
    [
        (ist(8, 20, 7, 0), True, ist(8, 20, 8, 30)),  # Tuesday morning: today
        (ist(8, 20, 8, 30), True, ist(8, 21, 8, 30)),  # exactly at the time: the next one
        (ist(8, 20, 12, 0), True, ist(8, 21, 8, 30)),
        (ist(8, 23, 12, 0), True, ist(8, 26, 8, 30)),  # Friday noon -> Monday
        (ist(8, 23, 12, 0), False, ist(8, 24, 8, 30)),  # every day when told so
        (ist(8, 14, 12, 0), True, ist(8, 16, 8, 30)),  # 15 Aug (Independence Day) is a holiday
    ],
)
def test_the_next_daily_login_skips_days_without_a_session(
    now: datetime, trading_days_only: bool, expected: datetime
) -> None:
    assert next_login_at(now, LOGIN, CALENDAR, trading_days_only) == expected


TODAYS = TokenState("abcd1234", ist(8, 20, 7, 50), ist(8, 21, 6, 0), True)
YESTERDAYS = TokenState("abcd1234", ist(8, 19, 8, 30), ist(8, 20, 6, 0), True)


@pytest.mark.parametrize(
    ("token", "now", "problem"),
    [
        (TokenState(), ist(8, 20, 8, 30), "no access token"),
        (YESTERDAYS, ist(8, 20, 6, 0), "expired"),
        (TODAYS, ist(8, 20, 9, 0), None),
        (
            TokenState("abcd1234", ist(8, 20, 7, 50), ist(8, 21, 6, 0), False),
            ist(8, 20, 9),
            "rejected",
        ),
        (TokenState("abcd1234", ist(8, 20, 7, 50), ist(8, 21, 6, 0), None), ist(8, 20, 9), None),
    ],
)
def test_a_token_problem_names_why_the_token_is_unusable(
    token: TokenState, now: datetime, problem: str | None
) -> None:
    found = token_problem(token, now)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("token", "skip"),
    [
        (TODAYS, True),  # logged in by hand at 07:50: keep it
        (TokenState(), False),
        (YESTERDAYS, False),
        (TokenState("abcd1234", ist(8, 20, 5, 0), ist(8, 20, 6, 0), True), False),
        (TokenState("abcd1234", ist(8, 20, 7, 50), ist(8, 21, 6, 0), None), False),  # unvalidated
    ],
)
def test_the_scheduled_login_is_skipped_only_for_a_valid_token_issued_after_0600(
    token: TokenState, skip: bool
) -> None:
    reason = scheduled_login_skip_reason(token, ist(8, 20, 8, 30), time(6, 0))
    assert (reason is not None) is skip
