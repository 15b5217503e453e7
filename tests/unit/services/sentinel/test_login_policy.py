from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.sentinel.login_policy import (
    CredentialsRejected,
    LoginFailure,
    LoginGate,
    LoginOutcome,
    LoginStep,
    LoginTrigger,
    NetworkFailure,
    TotpRejected,
    UnexpectedResponse,
    classify_login_response,
)
from shared.clock import IST

NOW = datetime(2024, 8, 20, 8, 30, tzinfo=IST)
OK_BODY = {"status": "success", "data": {"request_id": "r1"}}
ERROR_BODY = {"status": "error", "message": "Invalid TOTP", "error_type": "TwoFAException"}


@pytest.mark.parametrize(
    ("step", "status", "body", "expected"),
    [
        ("password", 200, OK_BODY, None),
        ("twofa", 200, OK_BODY, None),
        ("password", 403, {"status": "error", "message": "Invalid password"}, CredentialsRejected),
        ("password", 400, None, CredentialsRejected),
        ("twofa", 403, ERROR_BODY, TotpRejected),
        ("twofa", 400, ERROR_BODY, TotpRejected),
        ("twofa", 200, ERROR_BODY, TotpRejected),  # an error envelope with 200 is still an error
        ("password", 500, ERROR_BODY, NetworkFailure),
        ("twofa", 503, None, NetworkFailure),
        ("password", 429, None, NetworkFailure),
        ("password", 200, None, UnexpectedResponse),
        ("connect", 404, None, UnexpectedResponse),
    ],
)
def test_login_page_answers_are_classified_by_step_and_status(
    step: LoginStep, status: int, body: dict[str, Any] | None, expected: type | None
) -> None:
    failure = classify_login_response(step, status, body)
    if expected is None:
        assert failure is None
    else:
        assert type(failure) is expected


@pytest.mark.parametrize(
    ("failure", "outcome", "retryable"),
    [
        (CredentialsRejected("x"), "bad_credentials", False),
        (TotpRejected("x"), "bad_totp", False),
        (NetworkFailure("x"), "network_error", True),
        (UnexpectedResponse("x"), "unexpected_response", False),
    ],
)
def test_only_network_failures_are_retryable(
    failure: LoginFailure, outcome: LoginOutcome, retryable: bool
) -> None:
    assert failure.outcome == outcome and failure.retryable is retryable


def test_a_totp_rejection_says_which_setting_to_check_and_that_nothing_retries() -> None:
    failure = classify_login_response("twofa", 403, ERROR_BODY)
    assert failure is not None
    assert "SENTINEL_TOTP_SECRET" in failure.message
    assert "stopped until the next scheduled login" in failure.message


BLOCKED = LoginGate().after_attempt("bad_totp", "wrong TOTP", NOW, 120)
AFTER_NETWORK = LoginGate().after_attempt("network_error", "timeout", NOW, 120)
AFTER_SUCCESS = LoginGate().after_attempt("success", "", NOW, 120)


@pytest.mark.parametrize(
    ("gate", "trigger", "seconds_later", "refused"),
    [
        (LoginGate(), "startup", 0, False),
        (LoginGate(), "token_rejected", 0, False),
        # A credential failure blocks everything but the schedule, a restart or a command.
        (BLOCKED, "token_rejected", 3600, True),
        (BLOCKED, "no_token", 3600, True),
        (BLOCKED, "retry", 3600, True),
        (BLOCKED, "schedule", 1, False),
        (BLOCKED, "command", 1, False),
        (BLOCKED, "startup", 1, False),
        # A network failure: tried again after the retry delay, not before.
        (AFTER_NETWORK, "retry", 60, True),
        (AFTER_NETWORK, "retry", 121, False),
        # Rejection reports are debounced (30 s here): many services, one login.
        (AFTER_SUCCESS, "token_rejected", 10, True),
        (AFTER_SUCCESS, "token_rejected", 31, False),
        (AFTER_SUCCESS, "no_token", 10, True),
        (AFTER_SUCCESS, "command", 1, False),
    ],
)
def test_the_login_gate_decides_whether_an_automated_login_may_run(
    gate: LoginGate, trigger: LoginTrigger, seconds_later: float, refused: bool
) -> None:
    reason = gate.refusal(trigger, NOW + timedelta(seconds=seconds_later), min_interval_s=30)
    assert (reason is not None) is refused


def test_consecutive_credential_failures_are_counted_and_a_success_resets_them() -> None:
    gate = LoginGate()
    for n in range(1, 4):
        gate = gate.after_attempt("bad_credentials", "wrong password", NOW, 120)
        assert gate.credential_failures == n
    assert gate.blocked_outcome == "bad_credentials"
    gate = gate.after_attempt("success", "", NOW, 120)
    assert gate.credential_failures == 0 and gate.blocked_reason is None


def test_a_login_made_elsewhere_lifts_the_block() -> None:
    assert BLOCKED.unblocked().refusal("token_rejected", NOW + timedelta(hours=1), 30) is None
