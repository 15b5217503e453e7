"""Kite REST calls of the Sentinel through the official client (an IO adapter).

`kiteconnect.KiteConnect` is synchronous (requests): each call runs in a worker thread with its own
client instance. Errors are mapped onto the login policy's failures: a network problem (requests
error, Kite NetworkException, 5xx/429) is retryable; a TokenException is a rejection of what we
sent (the request_token, or the access token when validating). Secrets handed in here (api_secret,
request_token, access token) are registered with the log redactor before any request is made,
since the official client logs its requests at DEBUG level.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from kiteconnect import KiteConnect
from kiteconnect import exceptions as kite_errors
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from services.sentinel.kite_login import BackoffPolicy
from services.sentinel.login_policy import (
    LoginFailure,
    NetworkFailure,
    RequestTokenRejected,
    UnexpectedResponse,
    ValidationFailed,
)
from shared.logs import register_secret

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IssuedSession:
    """What generate_session returned; `access_token` never leaves this process but via Redis."""

    access_token: str
    user_id: str
    kite_login_time: str  # as Kite reported it (IST text), for the audit


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    user_name: str


def _network(exc: BaseException) -> bool:
    if isinstance(exc, requests.RequestException):
        return True
    if isinstance(exc, kite_errors.NetworkException):
        return True
    code = getattr(exc, "code", 0) or 0
    return isinstance(exc, kite_errors.KiteException) and (code >= 500 or code == 429)


class KiteSessionClient:
    """generate_session, profile (validation) and the instruments dump."""

    def __init__(
        self, api_key: str, api_root: str, timeout_s: float, backoff: BackoffPolicy
    ) -> None:
        self.api_key = api_key
        self.api_root = api_root
        self.timeout_s = timeout_s
        self.backoff = backoff

    def _client(self, access_token: str | None = None) -> KiteConnect:
        kite = KiteConnect(self.api_key, root=self.api_root, timeout=self.timeout_s)
        if access_token:
            kite.set_access_token(access_token)
        return kite

    async def _call[T](
        self, what: str, call: Callable[[], T], on_token_error: type[LoginFailure]
    ) -> T:
        def before_sleep(state: RetryCallState) -> None:
            logger.warning(
                "Kite %s failed (attempt %s of %s), retrying: %s",
                what,
                state.attempt_number,
                self.backoff.attempts,
                state.outcome.exception() if state.outcome else None,
            )

        async def attempt() -> T:
            try:
                return await asyncio.to_thread(call)
            except Exception as exc:
                if _network(exc):
                    raise NetworkFailure(f"Kite {what}: {type(exc).__name__}: {exc}") from None
                if isinstance(exc, kite_errors.TokenException):
                    raise on_token_error(f"Kite {what} refused: {exc}") from None
                if isinstance(exc, kite_errors.KiteException):
                    raise UnexpectedResponse(f"Kite {what}: {type(exc).__name__}: {exc}") from None
                raise

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.backoff.attempts),
            wait=wait_exponential(multiplier=self.backoff.initial_s, max=self.backoff.max_s),
            retry=retry_if_exception_type(NetworkFailure),
            before_sleep=before_sleep,
            reraise=True,
        )
        # An explicit loop: tenacity awaits only coroutine FUNCTIONS, not lambdas returning one.
        async for trial in retrying:
            with trial:
                return await attempt()
        raise AssertionError("unreachable: tenacity returns or reraises")

    async def generate_session(self, request_token: str, api_secret: str) -> IssuedSession:
        """Exchange a request_token; RequestTokenRejected when Kite refuses it (stale, reused)."""
        register_secret(request_token)
        register_secret(api_secret)

        def call() -> dict[str, Any]:
            data: dict[str, Any] = self._client().generate_session(request_token, api_secret)
            token = str(data.get("access_token") or "")
            register_secret(token)
            return data

        data = await self._call("generate_session", call, RequestTokenRejected)
        token = str(data.get("access_token") or "")
        if not token:
            raise UnexpectedResponse("Kite generate_session answered without an access_token")
        login_time = data.get("login_time")
        kite_time = (
            login_time.isoformat() if isinstance(login_time, datetime) else str(login_time or "")
        )
        return IssuedSession(token, str(data.get("user_id") or ""), kite_time)

    async def profile(self, access_token: str) -> Profile:
        """The validation call; ValidationFailed when Kite rejects the token (403)."""
        register_secret(access_token)
        data = await self._call(
            "profile", lambda: self._client(access_token).profile(), ValidationFailed
        )
        if not isinstance(data, dict) or not data.get("user_id"):
            raise UnexpectedResponse("Kite profile answered without a user_id")
        return Profile(str(data["user_id"]), str(data.get("user_name") or ""))

    async def instruments(
        self, access_token: str, exchanges: Sequence[str]
    ) -> list[dict[str, Any]]:
        """The day's instruments of these exchanges (all exchanges when empty)."""
        register_secret(access_token)
        kite = self._client(access_token)
        if not exchanges:
            rows: list[dict[str, Any]] = await self._call(
                "instruments", lambda: kite.instruments(), ValidationFailed
            )
            return rows
        out: list[dict[str, Any]] = []
        for exchange in exchanges:

            def dump(exchange: str = exchange) -> list[dict[str, Any]]:
                rows: list[dict[str, Any]] = kite.instruments(exchange)
                return rows

            out.extend(await self._call(f"instruments {exchange}", dump, ValidationFailed))
        return out
