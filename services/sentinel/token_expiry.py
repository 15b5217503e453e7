"""When a Kite access token dies: at the next 06:00 IST after it was issued (a setting).

Kite invalidates every access token at 06:00 IST the next morning (exchanges want API sessions
logged out before each trading day). A token issued after midnight but before 06:00 therefore
lives only until 06:00 the same morning.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from shared.clock import IST, to_ist

DEFAULT_EXPIRY_TIME = time(6, 0)


def token_expires_at(issued_at: datetime, expiry_time: time = DEFAULT_EXPIRY_TIME) -> datetime:
    """The first `expiry_time` IST strictly after `issued_at` (aware), as an IST datetime."""
    issued = to_ist(issued_at)
    same_day = datetime.combine(issued.date(), expiry_time, IST)
    return same_day if same_day > issued else same_day + timedelta(days=1)


def seconds_until(expires_at: datetime, now: datetime) -> float:
    """Seconds left before `expires_at`; 0 once it has passed (never negative)."""
    return max(0.0, (expires_at - now).total_seconds())


def redis_expiry_epoch_s(expires_at: datetime) -> int:
    """The EXPIREAT argument for the token key (whole epoch seconds, rounded down so the key
    never outlives the token)."""
    return int(expires_at.timestamp())
