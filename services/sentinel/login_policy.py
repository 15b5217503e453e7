"""What a login failure means and whether another attempt may run (pure, no IO, time passed in).

The account is protected first: Zerodha locks an account after a handful of wrong passwords or
TOTPs, so a credential failure is never retried automatically. It blocks automated logins until
the next scheduled login, a restart, or an explicit command (CLI); token-rejection reports from the
services do not unblock it. Network errors are retried by tenacity inside one attempt, and a failed
attempt is tried again later (`network_retry_after_s`), never in a tight loop.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

LoginOutcome = Literal[
    "success",
    "bad_credentials",  # wrong user id or password
    "bad_totp",  # wrong TOTP (wrong secret or clock skew)
    "bad_request_token",  # generate_session refused the request_token (stale, reused, checksum)
    "network_error",  # the network or Kite itself failed (timeouts, 5xx, 429)
    "validation_failed",  # the new token did not pass the profile call
    "config_error",  # a credential setting is missing
    "unexpected_response",  # Kite answered something this code does not understand
    "distribution_failed",  # the token could not be stored in Redis / announced
]
LoginMethod = Literal["auto", "manual", "cli"]
LoginTrigger = Literal["startup", "schedule", "token_rejected", "command", "retry", "no_token"]

# Outcomes after which an automated login must not run again by itself.
BLOCKING_OUTCOMES: frozenset[LoginOutcome] = frozenset(
    {"bad_credentials", "bad_totp", "config_error"}
)
# Triggers a human (or the daily schedule) stands behind: they lift a credential block.
UNBLOCKING_TRIGGERS: frozenset[LoginTrigger] = frozenset({"startup", "schedule", "command"})


class LoginFailure(Exception):
    """A login attempt that failed; `outcome` is the metrics label, the message says what to do."""

    outcome: LoginOutcome = "unexpected_response"
    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CredentialsRejected(LoginFailure):
    outcome: LoginOutcome = "bad_credentials"


class TotpRejected(LoginFailure):
    outcome: LoginOutcome = "bad_totp"


class RequestTokenRejected(LoginFailure):
    outcome: LoginOutcome = "bad_request_token"


class NetworkFailure(LoginFailure):
    outcome: LoginOutcome = "network_error"
    retryable = True


class ValidationFailed(LoginFailure):
    outcome: LoginOutcome = "validation_failed"


class LoginConfigError(LoginFailure):
    outcome: LoginOutcome = "config_error"


class UnexpectedResponse(LoginFailure):
    outcome: LoginOutcome = "unexpected_response"


LoginStep = Literal["password", "twofa", "connect"]


def classify_login_response(
    step: LoginStep, status: int, body: dict[str, Any] | None
) -> LoginFailure | None:
    """The failure an HTTP answer of the login pages means, or None when it is a success.

    5xx and 429 are Kite's trouble (network_error, retried); any other 4xx or an error envelope is a
    rejection of what we sent: the password step -> bad_credentials, the 2FA step -> bad_totp."""
    message = ""
    if isinstance(body, dict):
        message = str(body.get("message") or "")
        if 200 <= status < 300 and body.get("status") != "error":
            return None
    if status >= 500 or status == 429:
        return NetworkFailure(f"Kite login {step} step answered HTTP {status}: {message}".rstrip())
    if 200 <= status < 300 and not isinstance(body, dict):
        return UnexpectedResponse(f"Kite login {step} step answered HTTP {status} without JSON")
    detail = message or f"HTTP {status}"
    if step == "password":
        return CredentialsRejected(
            f"Kite rejected the user id or password ({detail}); automated login is stopped until "
            "the next scheduled login or an explicit `tradealgo login` (no retries: Zerodha locks "
            "accounts after repeated failures). Check SENTINEL_USER_ID / SENTINEL_PASSWORD."
        )
    if step == "twofa":
        return TotpRejected(
            f"Kite rejected the TOTP ({detail}); automated login is stopped until the next "
            "scheduled login or an explicit `tradealgo login`. Check SENTINEL_TOTP_SECRET (the "
            "base32 secret shown when 2FA was set up) and the machine's clock."
        )
    return UnexpectedResponse(f"Kite login {step} step failed: {detail}")


@dataclass(frozen=True, slots=True)
class LoginGate:
    """Whether automated logins are allowed, and why not."""

    blocked_reason: str | None = None
    blocked_outcome: LoginOutcome | None = None
    credential_failures: int = 0  # consecutive, reset by a success
    last_attempt_at: datetime | None = None
    retry_at: datetime | None = None  # after a network failure: the next try

    def refusal(self, trigger: LoginTrigger, now: datetime, min_interval_s: float) -> str | None:
        """Why an automated login triggered by `trigger` must not run now, or None to go ahead."""
        if self.blocked_reason is not None and trigger not in UNBLOCKING_TRIGGERS:
            return f"automated login blocked after {self.blocked_outcome}: {self.blocked_reason}"
        if trigger == "retry" and self.retry_at is not None and now < self.retry_at:
            return f"network retry not due until {self.retry_at.isoformat()}"
        if (
            trigger in ("token_rejected", "no_token")
            and self.last_attempt_at is not None
            and (now - self.last_attempt_at).total_seconds() < min_interval_s
        ):
            return (
                f"a login ran {(now - self.last_attempt_at).total_seconds():.0f} s ago "
                f"(minimum interval {min_interval_s:.0f} s)"
            )
        return None

    def after_attempt(
        self, outcome: LoginOutcome, reason: str, now: datetime, network_retry_after_s: float
    ) -> LoginGate:
        """The gate after an attempt ended with `outcome`."""
        if outcome == "success":
            return LoginGate(last_attempt_at=now)
        if outcome in BLOCKING_OUTCOMES:
            return replace(
                self,
                blocked_reason=reason,
                blocked_outcome=outcome,
                credential_failures=self.credential_failures + 1,
                last_attempt_at=now,
                retry_at=None,
            )
        retry_at = now + timedelta(seconds=network_retry_after_s)
        return replace(self, last_attempt_at=now, retry_at=retry_at)

    def unblocked(self) -> LoginGate:
        """A manual or CLI login succeeded elsewhere: automation may run again."""
        return LoginGate(last_attempt_at=self.last_attempt_at)
