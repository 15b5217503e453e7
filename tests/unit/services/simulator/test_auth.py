"""Login, checksum, single-use request tokens and the 06:00 IST expiry."""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime, time

import pyotp
import pytest

from services.simulator.auth import Credentials, Sessions, token_expiry
from services.simulator.errors import InputError, TokenError
from shared.clock import IST

SECRET = "SIMULATORTOTPSECRETFORTESTSONLYA"
CREDENTIALS = Credentials("key", "secret", "SIM001", "pw", SECRET)
WALL = 1_724_125_000.0
NOW = datetime(2024, 8, 20, 9, 0, tzinfo=IST).timestamp()


def sessions() -> Sessions:
    counter = itertools.count(1)
    return Sessions(
        CREDENTIALS,
        request_token_ttl_s=300,
        expiry_time=time(6, 0),
        new_token=lambda: f"t{next(counter)}",
    )


def checksum(request_token: str, secret: str = "secret") -> str:
    return hashlib.sha256(("key" + request_token + secret).encode()).hexdigest()


def logged_in_request_token(s: Sessions) -> str:
    request_id = s.login("SIM001", "pw")
    browser = s.twofa("SIM001", request_id, pyotp.TOTP(SECRET).at(WALL), "totp", WALL)
    assert s.has_browser_session(browser)
    return s.authorize("key", WALL)


@pytest.mark.parametrize(
    ("login", "expires"),
    [
        (datetime(2024, 8, 20, 9, 0), datetime(2024, 8, 21, 6, 0)),
        (datetime(2024, 8, 20, 5, 59), datetime(2024, 8, 20, 6, 0)),
        (datetime(2024, 8, 20, 6, 0), datetime(2024, 8, 21, 6, 0)),
        (datetime(2024, 8, 20, 23, 59), datetime(2024, 8, 21, 6, 0)),
    ],
)
def test_a_token_expires_at_the_next_six_am_ist(login: datetime, expires: datetime) -> None:
    assert (
        token_expiry(login.replace(tzinfo=IST).timestamp(), time(6, 0))
        == expires.replace(tzinfo=IST).timestamp()
    )


def test_the_full_login_gives_a_session_that_validates_until_six_am() -> None:
    s = sessions()
    session = s.exchange("key", logged_in_request_token(s), checksum("t3"), NOW, WALL)
    assert s.validate("key", session.access_token, NOW) is session
    six = datetime(2024, 8, 21, 6, 0, tzinfo=IST).timestamp()
    assert s.validate("key", session.access_token, six - 1) is session
    with pytest.raises(TokenError, match="expired"):
        s.validate("key", session.access_token, six)


@pytest.mark.parametrize(("user", "password"), [("SIM001", "wrong"), ("OTHER", "pw"), ("", "")])
def test_a_wrong_password_is_refused(user: str, password: str) -> None:
    with pytest.raises(InputError):
        sessions().login(user, password)


@pytest.mark.parametrize(
    ("wrong_code", "kind", "request_id"),
    [(True, "totp", "t1"), (False, "sms", "t1"), (False, "totp", "unknown")],
)
def test_a_wrong_second_factor_is_refused(wrong_code: bool, kind: str, request_id: str) -> None:
    s = sessions()
    s.login("SIM001", "pw")
    right = pyotp.TOTP(SECRET).at(WALL)
    code = f"{(int(right) + 1) % 1_000_000:06d}" if wrong_code else right
    with pytest.raises(InputError):
        s.twofa("SIM001", request_id, code, kind, WALL)


def test_a_bad_checksum_a_reused_or_stale_request_token_is_a_token_exception() -> None:
    s = sessions()
    token = logged_in_request_token(s)
    with pytest.raises(TokenError, match="checksum"):
        s.exchange("key", token, checksum(token, secret="other"), NOW, WALL)
    s.exchange("key", token, checksum(token), NOW, WALL)
    with pytest.raises(TokenError, match="expired"):
        s.exchange("key", token, checksum(token), NOW, WALL)
    stale = s.authorize("key", WALL)
    with pytest.raises(TokenError, match="expired"):
        s.exchange("key", stale, checksum(stale), NOW, WALL + 301)


def test_logout_and_expire_all_end_sessions() -> None:
    s = sessions()
    first = s.exchange("key", logged_in_request_token(s), checksum("t3"), NOW, WALL)
    second = s.exchange("key", (t := s.authorize("key", WALL)), checksum(t), NOW, WALL)
    s.invalidate("key", first.access_token)
    with pytest.raises(TokenError):
        s.validate("key", first.access_token, NOW)
    assert s.validate("key", second.access_token, NOW) is second
    assert s.expire_all() == 1
    with pytest.raises(TokenError):
        s.validate("key", second.access_token, NOW)
    with pytest.raises(TokenError):
        s.validate("otherkey", second.access_token, NOW)
