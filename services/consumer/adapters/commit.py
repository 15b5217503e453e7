"""One atomic commit per round of a tick partition: what makes candles and intents exactly-once.

A round (a batch of tick entries, or a timer sweep) is committed by ONE Lua script, atomically:
1. fence: nothing is written unless this process still holds the partition's lease;
2. idempotence: a commit id already applied (a retry after a lost reply) is not applied again;
3. the candles, signals and intents the round produced are appended to their streams; each
   intent only if `SET ta:consumer:intent:{signal_id} NX PX ttl` succeeds, so a signal id can
   never produce a second intent (replays, two owners during a lease race, restarts that lost
   their checkpoint): the Consumer's own guarantee, on top of the Gatekeeper's decided set;
4. malformed ticks are dead-lettered (original fields + reason);
5. the builder states of the instruments the round touched and the last entry id are written
   to the checkpoint hash, and the round's entries are acked.
So a replica that dies before the script leaves every entry of the round pending and its
checkpoint at the previous round: the next owner restores that checkpoint and handles the same
entries again, producing the same output, and publishes it once. Entry ids are the bus's wire
(shared.bus.entry_fields); nothing else here knows the encoding.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.consumer.adapters.metrics import ConsumerMetrics
from shared import constants as c
from shared.bus import RetryPolicy, entry_fields
from shared.bus.dead_letter import DeadLetter, dead_letter_fields
from shared.bus.io_retry import call_with_retry
from shared.messages import Candle, OrderIntent, Signal

ENTRY_FIELD = "_entry"
COMMIT_FIELD = "_commit"
STORED_PREFIX = "_stored:"

_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if ARGV[7] ~= '' and redis.call('HGET', KEYS[2], '_commit') == ARGV[7] then return {2} end
local maxlen, dl_maxlen, ttl = ARGV[3], ARGV[4], ARGV[5]
local i = 8
local function take() local v = ARGV[i]; i = i + 1; return v end
local function add(stream, limit)
  local m = take(); local d = take()
  return redis.call('XADD', stream, 'MAXLEN', '~', limit, '*', 'm', m, 'd', d)
end
local acks = {}
for _ = 1, tonumber(take()) do acks[#acks + 1] = take() end
local states = {}
for _ = 1, tonumber(take()) do states[#states + 1] = take(); states[#states + 1] = take() end
local last = {'', '', ''}
for _ = 1, tonumber(take()) do last[1] = add(KEYS[4], maxlen) end
for _ = 1, tonumber(take()) do last[2] = add(KEYS[5], maxlen) end
local flags = {}
for n = 1, tonumber(take()) do
  if redis.call('SET', KEYS[7 + n], '1', 'NX', 'PX', ttl) then
    last[3] = add(KEYS[6], maxlen); flags[n] = 1
  else
    take(); take(); flags[n] = 0
  end
end
for _ = 1, tonumber(take()) do
  local fields = {}
  for _ = 1, tonumber(take()) do fields[#fields + 1] = take(); fields[#fields + 1] = take() end
  redis.call('XADD', KEYS[7], 'MAXLEN', '~', dl_maxlen, '*', unpack(fields))
end
if #states > 0 then redis.call('HSET', KEYS[2], unpack(states)) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], '_entry', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('HSET', KEYS[2], '_commit', ARGV[7]) end
if #acks > 0 then redis.call('XACK', KEYS[3], ARGV[2], unpack(acks)) end
return {1, flags, last[1], last[2], last[3]}
"""


@dataclass
class Round:
    """What one round of a partition produced."""

    acks: list[str] = field(default_factory=list)
    entry: str = ""  # the last tick entry handled ("" for a timer sweep)
    states: dict[int, bytes] = field(default_factory=dict)  # token -> encoded builder states
    candles: list[Candle] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.acks or self.entry or self.states or self.candles or self.signals
            or self.intents or self.dead_letters
        )  # fmt: skip


@dataclass(frozen=True)
class Committed:
    """The outcome of a commit; `published[i]` says whether intent i went out (False: its
    signal id had been published before). `last_ids`: stream -> newest entry id written."""

    published: tuple[bool, ...]
    last_ids: Mapping[str, str]
    replayed: bool = False  # the same commit id had been applied (a retry after a lost reply)


class LeaseLost(RuntimeError):
    """The partition's lease is no longer this process's: nothing was written."""


class RoundCommitter:
    """Runs the commit script for the partitions of one replica."""

    def __init__(
        self,
        redis: Any,
        *,
        owner: str,
        group: str,
        maxlen: int,
        dead_letter_maxlen: int,
        intent_ttl_ms: int,
        retry: RetryPolicy,
        metrics: ConsumerMetrics,
    ) -> None:
        self.owner = owner
        self.group = group
        self.maxlen = maxlen
        self.dead_letter_maxlen = dead_letter_maxlen
        self.intent_ttl_ms = intent_ttl_ms
        self.retry = retry
        self.metrics = metrics
        self._script = redis.register_script(_SCRIPT)

    async def commit(self, partition: int, round_: Round) -> Committed:
        """Apply a round atomically; LeaseLost when the partition is not ours any more."""
        keys = [
            c.PARTITION_LEASE_KEY.format(p=partition),
            c.CONSUMER_CHECKPOINT_KEY.format(p=partition),
            c.partitioned(c.TICKS, partition),
            c.CANDLES,
            c.SIGNALS,
            c.INTENTS,
            c.DEAD_LETTERS,
            *(c.INTENT_ONCE_KEY.format(signal_id=i.intent_id) for i in round_.intents),
        ]
        commit_id = uuid.uuid4().hex
        args: list[Any] = [
            self.owner, self.group, self.maxlen, self.dead_letter_maxlen, self.intent_ttl_ms,
            round_.entry, commit_id,
        ]  # fmt: skip
        args.append(len(round_.acks))
        args.extend(round_.acks)
        args.append(len(round_.states))
        for token, payload in round_.states.items():
            args.extend((str(token), payload))
        _messages(args, c.CANDLES, round_.candles)
        _messages(args, c.SIGNALS, round_.signals)
        _messages(args, c.INTENTS, round_.intents)
        args.append(len(round_.dead_letters))
        for letter in round_.dead_letters:
            fields = dead_letter_fields(letter)
            args.append(len(fields))
            for name, value in fields.items():
                args.extend((name, value))
        reply = await call_with_retry(
            self.retry, "commit", self.metrics, lambda: self._script(keys=keys, args=args)
        )
        status = int(reply[0])
        if status == 0:
            raise LeaseLost(f"tick partition {partition} is not ours: round not committed")
        if status == 2:
            return Committed(tuple(True for _ in round_.intents), {}, replayed=True)
        flags = tuple(bool(int(f)) for f in reply[1])
        last_ids = {
            stream: _text(value)
            for stream, value in zip((c.CANDLES, c.SIGNALS, c.INTENTS), reply[2:5], strict=True)
            if _text(value)
        }
        self._count(partition, round_, flags)
        return Committed(flags, last_ids)

    def _count(self, partition: int, round_: Round, flags: Sequence[bool]) -> None:
        for stream, count in (
            (c.CANDLES, len(round_.candles)),
            (c.SIGNALS, len(round_.signals)),
            (c.INTENTS, sum(flags)),
        ):
            if count:
                self.metrics.published(stream, count)
        for letter in round_.dead_letters:
            self.metrics.dead_lettered(letter.stream, letter.kind)
        if round_.acks:
            self.metrics.consumed(c.partitioned(c.TICKS, partition), len(round_.acks))


def _messages(args: list[Any], stream: str, messages: Sequence[Any]) -> None:
    args.append(len(messages))
    for message in messages:
        fields = entry_fields(stream, message)
        args.extend(fields.values())


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
