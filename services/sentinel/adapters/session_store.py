"""Distribution of the Kite session through Redis (an IO adapter).

Written by the Sentinel (and by `tradealgo login` through the same code):
- ACCESS_TOKEN_KEY (string): the access token itself, for the services only, with EXPIREAT at
  the token's death (next 06:00 IST), so a stale token simply disappears;
- SESSION_INFO_KEY (hash, same expiry): user_id, login_time (ISO, our clock), expires_at (ISO),
  fingerprint (first 8 hex of sha256), method (auto|manual|cli), kite_login_time (as Kite said);
- a SessionEvent LOGIN on SESSION_EVENTS (fingerprint only). Services re-read the key on it.
The token never appears in a message, a log line or ClickHouse.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import constants as c
from shared.bus import StreamBus
from shared.messages import SessionEvent
from shared.session import token_fingerprint

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SessionInfo:
    user_id: str
    issued_at: datetime
    expires_at: datetime
    fingerprint: str
    method: str
    kite_login_time: str = ""

    def fields(self) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "login_time": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "fingerprint": self.fingerprint,
            "method": self.method,
            "kite_login_time": self.kite_login_time,
        }

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> SessionInfo | None:
        try:
            return cls(
                user_id=fields["user_id"],
                issued_at=datetime.fromisoformat(fields["login_time"]),
                expires_at=datetime.fromisoformat(fields["expires_at"]),
                fingerprint=fields["fingerprint"],
                method=fields.get("method", ""),
                kite_login_time=fields.get("kite_login_time", ""),
            )
        except (KeyError, ValueError):
            return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SessionStore:
    def __init__(self, redis: Any, bus: StreamBus) -> None:
        self.redis = redis
        self.bus = bus

    async def distribute(self, token: str, info: SessionInfo) -> None:
        """Store the token and its info (both expiring with the token), then announce it."""
        if info.fingerprint != token_fingerprint(token):
            raise ValueError("session info fingerprint does not match the token")
        expire_at = int(info.expires_at.timestamp())
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(c.ACCESS_TOKEN_KEY, token, exat=expire_at)
            pipe.delete(c.SESSION_INFO_KEY)
            pipe.hset(c.SESSION_INFO_KEY, mapping=info.fields())
            pipe.expireat(c.SESSION_INFO_KEY, expire_at)
            await pipe.execute()
        event = SessionEvent(
            kind="LOGIN",
            user_id=info.user_id,
            token_fingerprint=info.fingerprint,
            ts=info.issued_at,
            expires_at=info.expires_at,
        )
        await self.bus.publish(c.SESSION_EVENTS, event)
        logger.info(
            "access token %s of %s distributed (expires %s, method %s)",
            info.fingerprint,
            info.user_id,
            info.expires_at.isoformat(),
            info.method,
        )

    async def token(self) -> str | None:
        raw = await self.redis.get(c.ACCESS_TOKEN_KEY)
        return _text(raw) if raw else None

    async def info(self) -> SessionInfo | None:
        raw = await self.redis.hgetall(c.SESSION_INFO_KEY)
        return SessionInfo.from_fields({_text(k): _text(v) for k, v in raw.items()})

    async def publish_expired(self, fingerprint: str, user_id: str, ts: datetime) -> None:
        """Announce that the current token is dead (expired or rejected on validation)."""
        event = SessionEvent(kind="EXPIRED", user_id=user_id, token_fingerprint=fingerprint, ts=ts)
        await self.bus.publish(c.SESSION_EVENTS, event)
