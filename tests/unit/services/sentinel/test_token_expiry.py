from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from services.sentinel.token_expiry import redis_expiry_epoch_s, seconds_until, token_expires_at
from shared.clock import IST
from shared.session import token_fingerprint, token_rejected_event


def ist(day: int, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(2024, 8, day, hh, mm, ss, tzinfo=IST)


@pytest.mark.parametrize(
    ("issued", "expires"),
    [
        (ist(20, 8, 30), ist(21, 6, 0)),  # the daily login
        (ist(20, 23, 59), ist(21, 6, 0)),  # late evening
        (ist(21, 0, 30), ist(21, 6, 0)),  # after midnight: the same morning
        (ist(21, 5, 59, 59), ist(21, 6, 0)),  # one second before the boundary
        (ist(21, 6, 0), ist(22, 6, 0)),  # exactly at the boundary: tomorrow
        (ist(31, 9, 0), datetime(2024, 9, 1, 6, 0, tzinfo=IST)),  # month end
        (datetime(2024, 8, 20, 20, 0, tzinfo=UTC), ist(21, 6, 0)),  # 01:30 IST given in UTC
    ],
)
def test_a_token_expires_at_the_next_0600_ist_after_issue(
    issued: datetime, expires: datetime
) -> None:
    assert token_expires_at(issued) == expires
    assert token_expires_at(issued).utcoffset() == IST.utcoffset(None)


def test_the_expiry_time_is_a_setting() -> None:
    assert token_expires_at(ist(20, 8, 30), time(7, 30)) == ist(21, 7, 30)


def test_a_naive_issue_time_is_refused_rather_than_guessed() -> None:
    with pytest.raises(ValueError, match="naive"):
        token_expires_at(datetime(2024, 8, 20, 8, 30))


@pytest.mark.parametrize(
    ("now", "left"), [(ist(21, 5, 0), 3600.0), (ist(21, 6, 0), 0.0), (ist(21, 7, 0), 0.0)]
)
def test_seconds_until_expiry_never_goes_negative(now: datetime, left: float) -> None:
    assert seconds_until(ist(21, 6, 0), now) == left


def test_the_redis_key_expires_no_later_than_the_token() -> None:
    expires = datetime(2024, 8, 21, 6, 0, 0, 999_000, tzinfo=IST)
    assert redis_expiry_epoch_s(expires) <= expires.timestamp()


@pytest.mark.parametrize(
    ("token", "fingerprint"),
    [("", ""), ("abc", "ba7816bf"), ("abd", "a52d159f")],
)
def test_a_token_fingerprint_is_the_first_8_hex_of_its_sha256(token: str, fingerprint: str) -> None:
    assert token_fingerprint(token) == fingerprint


def test_a_rejection_report_names_the_token_by_fingerprint_only() -> None:
    event = token_rejected_event("secret-token-value", "producer", ist(20, 10, 0))
    assert event.kind == "EXPIRED"
    assert event.token_fingerprint == token_fingerprint("secret-token-value")
    assert "secret-token-value" not in repr(event)
