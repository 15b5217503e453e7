"""One login, end to end (an IO adapter used by the Sentinel service and by `tradealgo login`).

automated(): user id + password + TOTP against the login pages -> request_token -> below.
with_request_token(): generate_session -> validation call (profile) -> distribution (Redis token
with expiry, session info, SessionEvent LOGIN) -> an audit row in ClickHouse `sessions`.

Every attempt ends in a `LoginResult` with an outcome (the tradealgo_logins_total label) and a
reason a person can act on; failures never raise out of here, and nothing retries a rejected
password or TOTP (see login_policy). The token's expiry is computed on OUR clock (Kite's
`login_time` is kept in the audit only), so the Redis key dies when the token does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import SecretStr

from services.sentinel.adapters.kite_session import KiteSessionClient
from services.sentinel.adapters.session_store import SessionInfo, SessionStore
from services.sentinel.kite_login import KiteLoginClient
from services.sentinel.login_policy import (
    LoginConfigError,
    LoginFailure,
    LoginMethod,
    LoginOutcome,
    ValidationFailed,
)
from services.sentinel.token_expiry import token_expires_at
from shared.clock import Clock
from shared.logs import register_secret
from shared.session import token_fingerprint

logger = logging.getLogger(__name__)


class SessionAudit(Protocol):
    def record(self, row: dict[str, Any]) -> None:
        """Queue one row of the ClickHouse `sessions` table (never raises, never blocks)."""


@dataclass(frozen=True, slots=True)
class LoginResult:
    outcome: LoginOutcome
    reason: str
    method: LoginMethod
    info: SessionInfo | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "success"


SESSION_COLUMNS = (
    "login_time",
    "user_id",
    "outcome",
    "method",
    "token_fingerprint",
    "reason",
    "expires_at",
)


def audit_row(
    ts: datetime,
    user_id: str,
    outcome: LoginOutcome,
    method: LoginMethod,
    fingerprint: str,
    reason: str,
    expires_at: datetime | None,
) -> dict[str, Any]:
    """A row of the ClickHouse `sessions` audit (SESSION_COLUMNS): never the token, only its
    fingerprint; `login_time` is when the attempt ended, whatever its outcome."""
    return {
        "login_time": ts,
        "user_id": user_id,
        "outcome": outcome,
        "method": method,
        "token_fingerprint": fingerprint,
        "reason": reason,
        "expires_at": expires_at,
    }


@dataclass(frozen=True, slots=True)
class Credentials:
    api_secret: SecretStr
    user_id: str
    password: SecretStr
    totp_secret: SecretStr


class LoginFlow:
    def __init__(
        self,
        credentials: Credentials,
        login_client: KiteLoginClient,
        session_client: KiteSessionClient,
        store: SessionStore,
        audit: SessionAudit,
        clock: Clock,
        expiry_time: Any,
    ) -> None:
        self.credentials = credentials
        self.login_client = login_client
        self.session_client = session_client
        self.store = store
        self.audit = audit
        self.clock = clock
        self.expiry_time = expiry_time

    async def automated(self, method: LoginMethod = "auto") -> LoginResult:
        """The full automated login; never raises a LoginFailure (it becomes the result)."""
        c = self.credentials
        try:
            request_token = await self.login_client.request_token(
                c.user_id, c.password.get_secret_value(), c.totp_secret.get_secret_value()
            )
        except LoginFailure as exc:
            return self._failed(exc, method)
        return await self.with_request_token(request_token, method)

    async def with_request_token(self, request_token: str, method: LoginMethod) -> LoginResult:
        """generate_session + validation + distribution + audit for a request_token."""
        request_token = request_token.strip()
        register_secret(request_token)
        secret = self.credentials.api_secret.get_secret_value()
        try:
            if not request_token:
                raise LoginConfigError("no request_token given")
            if not secret:
                raise LoginConfigError("SENTINEL_API_SECRET is not set")
            issued = await self.session_client.generate_session(request_token, secret)
            profile = await self.session_client.profile(issued.access_token)
        except LoginFailure as exc:
            return self._failed(exc, method)
        now = self.clock.now()
        expected_user = self.credentials.user_id
        if expected_user and profile.user_id != expected_user:
            # A token of another account would trade someone else's money: refuse it.
            failure = ValidationFailed(
                f"the session belongs to {profile.user_id}, not SENTINEL_USER_ID {expected_user}"
            )
            return self._failed(failure, method)
        info = SessionInfo(
            user_id=profile.user_id,
            issued_at=now,
            expires_at=token_expires_at(now, self.expiry_time),
            fingerprint=token_fingerprint(issued.access_token),
            method=method,
            kite_login_time=issued.kite_login_time,
        )
        try:
            await self.store.distribute(issued.access_token, info)
        except Exception as exc:  # Redis down: the token is useless to the services
            reason = (
                f"the token could not be distributed through Redis: {type(exc).__name__}: {exc}"
            )
            logger.error("login failed (%s, distribution_failed): %s", method, reason)
            self.audit.record(
                audit_row(
                    now, info.user_id, "distribution_failed", method, info.fingerprint, reason,
                    info.expires_at,
                )
            )  # fmt: skip
            return LoginResult("distribution_failed", reason, method)
        self.audit.record(
            audit_row(
                now, info.user_id, "success", method, info.fingerprint,
                f"Kite login_time {info.kite_login_time}" if info.kite_login_time else "",
                info.expires_at,
            )
        )  # fmt: skip
        logger.info(
            "login succeeded (%s): user %s, token %s, expires %s",
            method,
            info.user_id,
            info.fingerprint,
            info.expires_at.isoformat(),
        )
        return LoginResult("success", "", method, info)

    def _failed(self, exc: LoginFailure, method: LoginMethod) -> LoginResult:
        logger.error("login failed (%s, %s): %s", method, exc.outcome, exc.message)
        self.audit.record(
            audit_row(
                self.clock.now(), self.credentials.user_id, exc.outcome, method, "", exc.message,
                None,
            )
        )  # fmt: skip
        return LoginResult(exc.outcome, exc.message, method)
