"""The HALT state in Redis and the Control stream (an IO adapter).

HALT_KEY hash (read by every service and `tradealgo status`): halted "1"/"0", reasons (JSON list
of "check: reason" strings), since (ISO time the current state began), source ("sentinel" for its
own halts; "cli:<operator>" for an operator's), updated (ISO time of the last write).
CHECKS_KEY hash: one field per pre-market check, "ok" or the failure reason.
Every HALT/RESUME is also a shared.messages.Control on CONTROL, which services obey.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from redis.exceptions import WatchError

from services.sentinel.checks import (
    SENTINEL_SOURCE,
    HaltDecision,
    HaltState,
    decide_halt,
    halt_hash,
)
from shared import constants as c
from shared.bus import StreamBus
from shared.messages import Control

logger = logging.getLogger(__name__)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class HaltStore:
    def __init__(self, redis: Any, bus: StreamBus) -> None:
        self.redis = redis
        self.bus = bus

    async def read(self) -> HaltState:
        raw = await self.redis.hgetall(c.HALT_KEY)
        return HaltState.from_hash({_text(k): _text(v) for k, v in raw.items()})

    async def write_checks(self, fields: Mapping[str, str]) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(c.CHECKS_KEY)
            pipe.hset(c.CHECKS_KEY, mapping=dict(fields))
            await pipe.execute()

    async def apply(
        self, results_reasons: tuple[str, ...], now: datetime, attempts: int = 5
    ) -> HaltDecision:
        """Decide and write the HALT state atomically (WATCH/MULTI): an operator's halt written
        between our read and our write is never overwritten; we read again and re-decide."""
        for _ in range(attempts):
            try:
                async with self.redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(c.HALT_KEY)
                    raw = await pipe.hgetall(c.HALT_KEY)
                    current = HaltState.from_hash({_text(k): _text(v) for k, v in raw.items()})
                    decision = decide_halt(current, results_reasons)
                    if decision.action == "NONE":
                        await pipe.unwatch()
                        return decision
                    halted = decision.action != "RESUME"
                    since = current.since if decision.action == "UPDATE" and current.since else ""
                    fields = halt_hash(
                        halted,
                        decision.reasons,
                        datetime.fromisoformat(since) if since else now,
                        now,
                    )
                    pipe.multi()
                    pipe.delete(c.HALT_KEY)
                    pipe.hset(c.HALT_KEY, mapping=fields)
                    await pipe.execute()
            except WatchError:
                logger.info("HALT_KEY changed while deciding; deciding again")
                continue
            await self._announce(decision, now)
            return decision
        raise RuntimeError(f"HALT_KEY kept changing during {attempts} attempts")

    async def _announce(self, decision: HaltDecision, now: datetime) -> None:
        if decision.action == "RESUME":
            control = Control(command="RESUME", reason=decision.why, source=SENTINEL_SOURCE, ts=now)
        else:
            control = Control(
                command="HALT", reason="; ".join(decision.reasons), source=SENTINEL_SOURCE, ts=now
            )
        await self.bus.publish(c.CONTROL, control)
