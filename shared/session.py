"""What every service needs to know about the Kite session, without ever holding the token in a
message or a log line.

- `token_fingerprint`: a short, one-way name for an access token (the first 8 hex digits of its
  sha256), safe for logs, SessionEvents and the ClickHouse `sessions` audit.
- `token_rejected_event`: the SessionEvent a service publishes on `shared.constants.SESSION_EVENTS`
  when Kite answers 403 / TokenException with the token it read from
  `shared.constants.ACCESS_TOKEN_KEY`. The Sentinel reacts by logging in again (once, however many
  services report the same token) and publishes a LOGIN event; services then re-read the key.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from shared.messages import SessionEvent

FINGERPRINT_HEX_DIGITS = 8


def token_fingerprint(token: str) -> str:
    """First 8 hex digits of sha256(token): tells tokens apart, reveals nothing ("" for none)."""
    if not token:
        return ""
    return hashlib.sha256(token.encode()).hexdigest()[:FINGERPRINT_HEX_DIGITS]


def token_rejected_event(token: str, reporter: str, ts: datetime) -> SessionEvent:
    """An EXPIRED SessionEvent saying that `reporter` saw Kite reject this token.

    `user_id` carries the reporting service's name (the event is about the token, whose user the
    reporter may not know); the Sentinel compares the fingerprint with its current token and
    ignores reports about a token it has already replaced."""
    return SessionEvent(
        kind="EXPIRED", user_id=reporter, token_fingerprint=token_fingerprint(token), ts=ts
    )
