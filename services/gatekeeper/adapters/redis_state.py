"""What the Gatekeeper keeps in Redis (an IO adapter).

Keys (shared.constants):
- KILL_SWITCH_KEY hash: tripped "1"/"0", reason, at, mtm, released_at, released_by,
  release_reason (KillSwitchState.to_fields; the CLI's `kill-switch release` writes the same);
- HALT_KEY hash: halted, reasons (JSON), since, source, updated (written with source
  "gatekeeper" on a kill-switch trip or reconciliation differences; read at start);
- GATEKEEPER_ORDERS_KEY.format(day=YYYY-MM-DD) hash: our order id -> JournalEntry JSON, written
  BEFORE place_order and at every change (crash recovery reads it);
- GATEKEEPER_DECIDED_KEY.format(day=...) set: intent ids already decided (idempotency across
  restarts), written in the same atomic step as the first record of an approved intent;
- GATEKEEPER_QUEUED_KEY hash: intent id -> msgpack OrderIntent while it waits for the order rate;
- ACCESS_TOKEN_KEY (read only), HEARTBEAT_KEY.format(service="gatekeeper").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from services.gatekeeper.halting import halted_fields
from services.gatekeeper.order_journal import JournalEntry, decode_entry, encode_entry
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.sentinel.checks import HaltState
from shared import constants as c
from shared.bus import entry_fields, open_connections
from shared.clock import to_ist
from shared.messages import Message, MessageError, OrderIntent, decode, encode

logger = logging.getLogger(__name__)

SERVICE = "gatekeeper"

# One atomic step, like MULTI/EXEC, but one command for the client to pack instead of ~12 (a
# burst's records went from ~0.3 to ~0.2 ms before the first order could be sent).
# KEYS: decided set, orders hash, then each events stream. ARGV: ttl, maxlen, the decided ids
# (count first), the order id/record pairs (count first), then per events stream its entry count
# followed by each entry as a field count and its name/value pairs.
_RECORD = """
local ttl, maxlen = ARGV[1], ARGV[2]
local call = redis.call
local a = 3
local n = tonumber(ARGV[a])
a = a + 1
if n > 0 then
  call('SADD', KEYS[1], unpack(ARGV, a, a + n - 1))
  call('EXPIRE', KEYS[1], ttl)
  a = a + n
end
n = tonumber(ARGV[a])
a = a + 1
if n > 0 then
  call('HSET', KEYS[2], unpack(ARGV, a, a + 2 * n - 1))
  call('EXPIRE', KEYS[2], ttl)
  a = a + 2 * n
end
for k = 3, #KEYS do
  n = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n do
    local pairs = tonumber(ARGV[a])
    call('XADD', KEYS[k], 'MAXLEN', '~', maxlen, '*', unpack(ARGV, a + 1, a + 2 * pairs))
    a = a + 1 + 2 * pairs
  end
end
return a
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def trading_day(now: datetime) -> str:
    """The IST date the day's keys are named after."""
    return to_ist(now).date().isoformat()


class RedisState:
    def __init__(self, redis: Any, ttl_s: int) -> None:
        self.redis = redis  # redis.asyncio.Redis with bytes replies
        self.ttl_s = ttl_s
        self._record = redis.register_script(_RECORD)

    async def open(self, connections: int) -> None:
        """Connections and the record script ready before the first intent: opening them then
        (handshakes, a NOSCRIPT round trip) held a first burst's orders several milliseconds."""
        await open_connections(self.redis, connections)
        await self.redis.script_load(_RECORD)

    # -- session --------------------------------------------------------------------------------

    async def access_token(self) -> str | None:
        raw = await self.redis.get(c.ACCESS_TOKEN_KEY)
        return _text(raw) if raw else None

    async def heartbeat(self, now: datetime, ttl_s: int) -> None:
        await self.redis.set(c.HEARTBEAT_KEY.format(service=SERVICE), now.isoformat(), ex=ttl_s)

    # -- kill switch and halt ----------------------------------------------------------------------

    async def kill_switch(self) -> KillSwitchState:
        """The persisted switch; a missing hash is "never tripped", an unreadable one TRIPPED."""
        raw = await self.redis.hgetall(c.KILL_SWITCH_KEY)
        if not raw:
            return KillSwitchState()
        return KillSwitchState.from_fields({_text(k): _text(v) for k, v in raw.items()})

    async def save_kill_switch(self, state: KillSwitchState) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(c.KILL_SWITCH_KEY)
            pipe.hset(c.KILL_SWITCH_KEY, mapping=state.to_fields())
            await pipe.execute()

    async def halt(self) -> HaltState:
        raw = await self.redis.hgetall(c.HALT_KEY)
        return HaltState.from_hash({_text(k): _text(v) for k, v in raw.items()})

    async def write_halt(self, reason: str, now: datetime) -> HaltState:
        """Record the Gatekeeper's halt (keeping whoever halted before); returns the new state."""
        current = await self.halt()
        fields = halted_fields(current, reason, now)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(c.HALT_KEY)
            pipe.hset(c.HALT_KEY, mapping=fields)
            await pipe.execute()
        return HaltState.from_hash(fields)

    # -- orders and decisions -----------------------------------------------------------------------

    def _orders_key(self, now: datetime) -> str:
        return c.GATEKEEPER_ORDERS_KEY.format(day=trading_day(now))

    def _decided_key(self, now: datetime) -> str:
        return c.GATEKEEPER_DECIDED_KEY.format(day=trading_day(now))

    async def record(
        self,
        now: datetime,
        entries: Iterable[JournalEntry],
        decided: Iterable[str] = (),
        events: Sequence[tuple[str, Message]] = (),
        events_maxlen: int = 100_000,
    ) -> None:
        """Write order records, decided intent ids and stream events in ONE atomic script call:
        all or nothing, and nothing about an order is published before its record exists."""
        mapping = {e.order.plan.order_id: encode_entry(e) for e in entries}
        ids = list(decided)
        if not (ids or mapping or events):
            return
        by_stream: dict[str, list[dict[bytes, bytes]]] = {}
        for stream, message in events:
            by_stream.setdefault(stream, []).append(entry_fields(stream, message))
        argv: list[Any] = [self.ttl_s, events_maxlen, len(ids), *ids, len(mapping)]
        for order_id, payload in mapping.items():
            argv += (order_id, payload)
        for fields_list in by_stream.values():
            argv.append(len(fields_list))
            for fields in fields_list:
                argv.append(len(fields))
                for name, value in fields.items():
                    argv += (name, value)
        keys = [self._decided_key(now), self._orders_key(now), *by_stream]
        await self._record(keys=keys, args=argv)

    async def decided(self, now: datetime) -> set[str]:
        return {_text(m) for m in await self.redis.smembers(self._decided_key(now))}

    async def orders(self, now: datetime) -> tuple[list[JournalEntry], list[str]]:
        """Today's order records, and the problems with unreadable ones (never silently)."""
        raw: Mapping[Any, Any] = await self.redis.hgetall(self._orders_key(now))
        entries, problems = [], []
        for key, value in raw.items():
            try:
                entries.append(decode_entry(value))
            except ValueError as exc:
                problems.append(f"order record {_text(key)} unreadable: {exc}")
        return entries, problems

    # -- intents waiting for the rate -----------------------------------------------------------

    async def queue(self, intent: OrderIntent) -> None:
        await self.redis.hset(c.GATEKEEPER_QUEUED_KEY, intent.intent_id, encode(intent))

    async def unqueue(self, intent_ids: Iterable[str]) -> None:
        ids = list(intent_ids)
        if ids:
            await self.redis.hdel(c.GATEKEEPER_QUEUED_KEY, *ids)

    async def queued(self) -> tuple[list[OrderIntent], list[str]]:
        raw: Mapping[Any, Any] = await self.redis.hgetall(c.GATEKEEPER_QUEUED_KEY)
        intents, problems = [], []
        for key, value in raw.items():
            try:
                intents.append(decode(OrderIntent, value))
            except MessageError as exc:
                problems.append(f"queued intent {_text(key)} unreadable: {exc}")
        return intents, problems
