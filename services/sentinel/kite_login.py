"""The automated Kite login over HTTP (an IO adapter): user id + password, TOTP, then the
connect/login redirect that carries the request_token.

    POST {login_root}/api/login   user_id, password                      -> data.request_id
    POST {login_root}/api/twofa   user_id, request_id, twofa_value (TOTP now), twofa_type=totp
                                                                          -> session cookies
    GET  {login_root}/connect/login?v=3&api_key=..  (with the cookies)    -> 302 ... request_token=..

These pages are not a documented API (Zerodha neither allows nor forbids it in writing), so the
manual way (paste a request_token) always exists too. Network errors (connection, timeout, 5xx,
429) are retried per step with tenacity back-off; a rejected password or TOTP raises at once and
is never retried (accounts lock after repeated failures). Nothing here logs the password, the TOTP
secret, the TOTP value or the request_token.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import pyotp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from services.sentinel.login_policy import (
    LoginConfigError,
    LoginStep,
    NetworkFailure,
    UnexpectedResponse,
    classify_login_response,
)

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 10


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    attempts: int = 5
    initial_s: float = 1.0
    max_s: float = 30.0


def connect_login_url(login_root: str, api_key: str) -> str:
    """The official login page (a human opens it for the manual way)."""
    return urljoin(login_root.rstrip("/") + "/", f"connect/login?v=3&api_key={api_key}")


def request_token_in(url: str) -> str | None:
    """The request_token of a redirect URL, or None."""
    values = parse_qs(urlsplit(url).query).get("request_token")
    return values[0] if values and values[0] else None


def totp_now(secret: str) -> str:
    """The current TOTP; LoginConfigError when the secret is not base32 (no request is sent)."""
    try:
        return pyotp.TOTP(secret.replace(" ", "").upper()).now()
    except (binascii.Error, ValueError, TypeError) as exc:
        # pyotp's messages ("Non-base32 digit found", "at least 112 bits") never echo the secret.
        raise LoginConfigError(
            f"SENTINEL_TOTP_SECRET is unusable ({exc}): it is the base32 text shown when 2FA was "
            "set up, not a 6-digit code"
        ) from None


class KiteLoginClient:
    """One automated login per `request_token()` call, against `login_root`."""

    def __init__(
        self, login_root: str, api_key: str, timeout_s: float, backoff: BackoffPolicy
    ) -> None:
        self.login_root = login_root.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.backoff = backoff

    async def request_token(self, user_id: str, password: str, totp_secret: str) -> str:
        """Log in and return a fresh request_token; raises a LoginFailure subclass."""
        missing = [
            name
            for name, value in (
                ("SENTINEL_API_KEY", self.api_key),
                ("SENTINEL_USER_ID", user_id),
                ("SENTINEL_PASSWORD", password),
                ("SENTINEL_TOTP_SECRET", totp_secret),
            )
            if not value
        ]
        if missing:
            raise LoginConfigError(f"automated login needs {', '.join(missing)}")
        totp_now(totp_secret)  # fail on a malformed secret before the password is sent
        jar = aiohttp.CookieJar(unsafe=True)  # unsafe: accept cookies from IP hosts (simulator)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as http:
            login: dict[str, Any] = await self._step(
                "password",
                lambda: self._post(
                    http, "password", "/api/login", {"user_id": user_id, "password": password}
                ),
            )
            request_id = str((login.get("data") or {}).get("request_id") or "")
            if not request_id:
                raise UnexpectedResponse("Kite login answered without a request_id")
            # A fresh TOTP per attempt: a retried step must not resend an expired code.
            await self._step(
                "twofa",
                lambda: self._post(
                    http,
                    "twofa",
                    "/api/twofa",
                    {
                        "user_id": user_id,
                        "request_id": request_id,
                        "twofa_value": totp_now(totp_secret),
                        "twofa_type": "totp",
                    },
                ),
            )
            return await self._step("connect", lambda: self._follow_connect(http))

    async def _step[T](self, step: LoginStep, call: Callable[[], Awaitable[T]]) -> T:
        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.warning(
                "Kite login %s step failed (attempt %s of %s), retrying: %s",
                step,
                state.attempt_number,
                self.backoff.attempts,
                error,
            )

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
                return await call()
        raise AssertionError("unreachable: tenacity returns or reraises")

    async def _post(
        self, http: aiohttp.ClientSession, step: LoginStep, path: str, form: dict[str, str]
    ) -> dict[str, Any]:
        try:
            async with http.post(self.login_root + path, data=form) as response:
                body = await _json_or_none(response)
                failure = classify_login_response(step, response.status, body)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NetworkFailure(f"Kite login {step} step: {type(exc).__name__}: {exc}") from None
        if failure is not None:
            raise failure
        assert body is not None  # classify_login_response returns a failure for no body
        return body

    async def _follow_connect(self, http: aiohttp.ClientSession) -> str:
        url = connect_login_url(self.login_root, self.api_key)
        try:
            for _ in range(MAX_REDIRECTS):
                async with http.get(url, allow_redirects=False) as response:
                    location = response.headers.get("Location", "")
                    status = response.status
                    body = await _json_or_none(response) if not location else None
                if location:
                    url = urljoin(url, location)
                    token = request_token_in(url)
                    if token:
                        return token
                    continue
                token = request_token_in(str(response.url))
                if token:
                    return token
                failure = classify_login_response("connect", status, body)
                raise failure or UnexpectedResponse(
                    f"Kite connect/login answered HTTP {status} without a request_token"
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise NetworkFailure(f"Kite connect/login: {type(exc).__name__}: {exc}") from None
        raise UnexpectedResponse(f"Kite connect/login redirected more than {MAX_REDIRECTS} times")


async def _json_or_none(response: aiohttp.ClientResponse) -> dict[str, Any] | None:
    try:
        body = await response.json(content_type=None)
    except (ValueError, aiohttp.ContentTypeError, asyncio.IncompleteReadError):
        return None
    return body if isinstance(body, dict) else None
