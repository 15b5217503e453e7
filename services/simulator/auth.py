"""The simulated account's login and API sessions.

The daily login as Kite does it: user id + password (-> request_id), TOTP (-> a browser session),
the connect/login redirect (-> a single-use request_token that lives `request_token_ttl_s` wall
seconds), then POST /session/token with checksum = sha256(api_key + request_token + api_secret)
(-> access_token). Access tokens die at the first `expiry_time` (06:00 IST) after login on the
SIMULATED clock. Times are passed in: `wall` is epoch seconds (TOTP and token lifetimes), `now`
the simulated epoch. Secrets are compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

import pyotp

from services.simulator.errors import InputError, TokenError
from shared.clock import IST, from_epoch_s

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    api_secret: str
    user_id: str
    password: str
    totp_secret: str


@dataclass(slots=True)
class ApiSession:
    access_token: str
    public_token: str
    login_time: float  # simulated epoch
    expires_at: float  # simulated epoch
    valid: bool = True


def token_expiry(login_epoch: float, expiry_time: time) -> float:
    """The first `expiry_time` IST strictly after the login (06:00 the next morning)."""
    login = from_epoch_s(login_epoch)
    candidate = datetime.combine(login.date(), expiry_time, IST)
    if candidate <= login:
        candidate += timedelta(days=1)
    return candidate.timestamp()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class Sessions:
    """Login state of the one simulated user; every failure raises a Kite error."""

    def __init__(
        self,
        credentials: Credentials,
        request_token_ttl_s: float,
        expiry_time: time,
        new_token: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        self.credentials = credentials
        self.request_token_ttl_s = request_token_ttl_s
        self.expiry_time = expiry_time
        self._new_token = new_token
        self._request_ids: set[str] = set()
        self._browser_sessions: set[str] = set()
        self._request_tokens: dict[str, float] = {}  # token -> wall deadline
        self._sessions: dict[str, ApiSession] = {}

    def login(self, user_id: str, password: str) -> str:
        """Step 1: user id and password -> request_id."""
        c = self.credentials
        if not (_same(user_id, c.user_id) and _same(password, c.password)):
            logger.info("login refused: wrong user id or password")
            raise InputError("Invalid `user_id` or `password`.")
        request_id = self._new_token()
        self._request_ids.add(request_id)
        return request_id

    def twofa(self, user_id: str, request_id: str, value: str, kind: str, wall: float) -> str:
        """Step 2: the TOTP of now -> a browser session (the cookie)."""
        if kind != "totp":
            raise InputError("Invalid `twofa_type`: the simulated account uses totp.")
        if not _same(user_id, self.credentials.user_id) or request_id not in self._request_ids:
            raise InputError("Invalid `request_id`: log in again.")
        if not pyotp.TOTP(self.credentials.totp_secret).verify(
            value, for_time=wall, valid_window=1
        ):
            logger.info("two-factor refused: wrong TOTP")
            raise InputError("Invalid TOTP.")
        self._request_ids.discard(request_id)
        browser = self._new_token()
        self._browser_sessions.add(browser)
        return browser

    def has_browser_session(self, browser: str | None) -> bool:
        return browser is not None and browser in self._browser_sessions

    def authorize(self, api_key: str, wall: float) -> str:
        """connect/login with a logged-in browser -> request_token for the redirect."""
        if not _same(api_key, self.credentials.api_key):
            raise InputError("Invalid `api_key`.")
        token = self._new_token()
        self._request_tokens[token] = wall + self.request_token_ttl_s
        return token

    def exchange(
        self, api_key: str, request_token: str, checksum: str, now: float, wall: float
    ) -> ApiSession:
        """POST /session/token: a valid, unexpired request_token and checksum -> session."""
        c = self.credentials
        if not _same(api_key, c.api_key):
            raise InputError("Invalid `api_key`.")
        expected = hashlib.sha256((api_key + request_token + c.api_secret).encode()).hexdigest()
        if not _same(checksum, expected):
            raise TokenError("Invalid `checksum`.")
        deadline = self._request_tokens.pop(request_token, None)
        if deadline is None or wall > deadline:
            raise TokenError("Token is invalid or has expired.")
        session = ApiSession(
            self._new_token(), self._new_token(), now, token_expiry(now, self.expiry_time)
        )
        self._sessions[session.access_token] = session
        logger.info("session created, expires at %s", from_epoch_s(session.expires_at))
        return session

    def validate(self, api_key: str, access_token: str, now: float) -> ApiSession:
        """The session of a request, or TokenException (403) when unknown or expired."""
        session = self._sessions.get(access_token)
        if session is None or not _same(api_key, self.credentials.api_key):
            raise TokenError("Incorrect `api_key` or `access_token`.")
        if not session.valid or now >= session.expires_at:
            raise TokenError("Token is invalid or has expired.")
        return session

    def invalidate(self, api_key: str, access_token: str) -> None:
        """DELETE /session/token (logout)."""
        session = self._sessions.get(access_token)
        if session is None or not _same(api_key, self.credentials.api_key):
            raise TokenError("Incorrect `api_key` or `access_token`.")
        session.valid = False

    def expire_all(self) -> int:
        """Fault injection: every access token dies now; returns how many were alive."""
        alive = [s for s in self._sessions.values() if s.valid]
        for session in alive:
            session.valid = False
        return len(alive)
