"""When the Sentinel logs in (pure: `now` and the calendar are passed in).

A login happens:
- at the daily login time (08:30 IST by default), on trading days only unless told otherwise,
  unless the current token was issued after the last 06:00 expiry and still validates;
- whenever there is no usable token (none, expired, or rejected by Kite), subject to the
  `LoginGate` (credential failures block, rejections are debounced).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from shared.calendar import NseCalendar
from shared.clock import IST, to_ist

# How far ahead to look for the next login day before giving up (a calendar gap longer than this
# means a broken calendar file).
SCHEDULE_HORIZON_DAYS = 15


@dataclass(frozen=True, slots=True)
class TokenState:
    """What the Sentinel knows about the current access token (never the token itself)."""

    fingerprint: str = ""
    issued_at: datetime | None = None
    expires_at: datetime | None = None
    valid: bool | None = None  # None: not validated yet; False: Kite rejected it

    @property
    def present(self) -> bool:
        return bool(self.fingerprint)


def next_login_at(
    now: datetime,
    login_time: time,
    calendar: NseCalendar | None,
    trading_days_only: bool = True,
) -> datetime:
    """The first daily login time strictly after `now` on an eligible day (IST)."""
    local = to_ist(now)
    for offset in range(SCHEDULE_HORIZON_DAYS):
        day = local.date() + timedelta(days=offset)
        at = datetime.combine(day, login_time, IST)
        if at <= local:
            continue
        if trading_days_only and calendar is not None and not calendar.is_trading_day(day):
            continue
        return at
    raise ValueError(f"no login day within {SCHEDULE_HORIZON_DAYS} days after {local}")


def token_problem(token: TokenState, now: datetime) -> str | None:
    """Why the current token is not usable, or None when it is (or may be: not validated yet)."""
    if not token.present:
        return "no access token"
    if token.expires_at is not None and now >= token.expires_at:
        return f"access token {token.fingerprint} expired at {to_ist(token.expires_at):%Y-%m-%d %H:%M} IST"
    if token.valid is False:
        return f"access token {token.fingerprint} was rejected by Kite"
    return None


def scheduled_login_skip_reason(token: TokenState, now: datetime, expiry_time: time) -> str | None:
    """At the daily login time: why a new login is unnecessary, or None to log in.

    A token issued after the most recent expiry boundary (06:00) is today's token: logging in again
    would only mint a second one."""
    if token_problem(token, now) is not None or token.issued_at is None or token.valid is not True:
        return None
    local = to_ist(now)
    boundary = datetime.combine(local.date(), expiry_time, IST)
    if boundary > local:
        boundary -= timedelta(days=1)
    if token.issued_at >= boundary:
        return (
            f"token {token.fingerprint} issued at {to_ist(token.issued_at):%H:%M} IST is "
            "today's and valid"
        )
    return None
