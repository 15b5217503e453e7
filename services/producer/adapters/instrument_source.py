"""Reading the Sentinel's instruments hashes from Redis (an IO adapter)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from services.producer.subscriptions import InstrumentRef, parse_instrument_json
from shared import constants as c

logger = logging.getLogger(__name__)

SCAN_COUNT = 5000


class RedisInstruments:
    def __init__(self, redis: Any) -> None:
        self.redis = redis

    async def loaded(self) -> bool:
        return bool(await self.redis.exists(c.INSTRUMENTS_KEY))

    async def by_symbols(self, symbols: Iterable[str]) -> dict[str, InstrumentRef]:
        keys = list(dict.fromkeys(symbols))
        if not keys:
            return {}
        values = await self.redis.hmget(c.INSTRUMENTS_KEY, keys)
        out: dict[str, InstrumentRef] = {}
        for key, value in zip(keys, values, strict=True):
            if value is None:
                continue
            try:
                out[key] = parse_instrument_json(value)
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("unreadable instruments entry %s: %s", key, exc)
        return out

    async def options_of(self, exchange: str, name: str) -> list[InstrumentRef]:
        """Every CE/PE of `name` on `exchange` (HSCAN on "EXCHANGE:NAME*", then exact name)."""
        out: list[InstrumentRef] = []
        pattern = f"{exchange}:{name}*"
        async for _, value in self.redis.hscan_iter(
            c.INSTRUMENTS_KEY, match=pattern, count=SCAN_COUNT
        ):
            try:
                ref = parse_instrument_json(value)
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("unreadable instruments entry under %s: %s", pattern, exc)
                continue
            if ref.name.upper() == name.upper() and ref.instrument_type in ("CE", "PE"):
                out.append(ref)
        return out
