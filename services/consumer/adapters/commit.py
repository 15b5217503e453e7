"""Two scripts per round of a tick partition: what makes candles and intents exactly-once.

A round (a batch of tick entries, or a timer sweep) ends with two Lua scripts, each atomic and
each fenced: nothing is written unless this process still holds the partition's lease.
1. `publish_intents`, first and small, because it is the latency that matters: each intent goes
   out only if `SET ta:consumer:intent:{signal_id} NX PX ttl` succeeds, so a signal id can never
   produce a second intent (a replayed round, two owners during a lease race, a restart that lost
   its checkpoint): the Consumer's own guarantee, on top of the Gatekeeper's decided set.
2. `commit`: the candles and signals of the round are appended to their streams, malformed ticks
   dead-lettered (original fields + reason), the builder states of the instruments the round
   touched and its last entry id written to the checkpoint hash, and its entries acked; a commit
   id already applied (a retry after a lost reply) is not applied twice.
A replica that dies before `commit` leaves every entry of the round pending and its checkpoint at
the previous round: the next owner restores that checkpoint, handles the same entries again and
produces the same output: the candles and signals are published once (by the new owner), the
intents were published at most once (by the NX keys). Entry fields are the bus's wire
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

_INTENTS = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local flags, last = {}, ''
for n = 1, #KEYS - 2 do
  if redis.call('SET', KEYS[2 + n], '1', 'NX', 'PX', ARGV[3]) then
    last = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[2 + 2 * n],
                      'd', ARGV[3 + 2 * n])
    flags[n] = 1
  else
    flags[n] = 0
  end
end
return {1, flags, last}
"""

_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if redis.call('HGET', KEYS[2], '_commit') == ARGV[6] then return {2} end
local maxlen, dl_maxlen = ARGV[3], ARGV[4]
local i = 7
local function take() local v = ARGV[i]; i = i + 1; return v end
local function add(stream)
  local m = take(); local d = take()
  return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'm', m, 'd', d)
end
local acks = {}
for _ = 1, tonumber(take()) do acks[#acks + 1] = take() end
local states = {}
for _ = 1, tonumber(take()) do states[#states + 1] = take(); states[#states + 1] = take() end
local last = {'', ''}
for _ = 1, tonumber(take()) do last[1] = add(KEYS[4]) end
for _ = 1, tonumber(take()) do last[2] = add(KEYS[5]) end
for _ = 1, tonumber(take()) do
  local fields = {}
  for _ = 1, tonumber(take()) do fields[#fields + 1] = take(); fields[#fields + 1] = take() end
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', dl_maxlen, '*', unpack(fields))
end
if #states > 0 then redis.call('HSET', KEYS[2], unpack(states)) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], '_entry', ARGV[5]) end
redis.call('HSET', KEYS[2], '_commit', ARGV[6])
if #acks > 0 then redis.call('XACK', KEYS[3], ARGV[2], unpack(acks)) end
return {1, last[1], last[2]}
"""


@dataclass
class Round:
    """What one round of a partition produced."""

    acks: list[str] = field(default_factory=list)
    entry: str = ""  # the last tick entry handled ("" for a timer sweep)
    states: dict[int, bytes] = field(default_factory=dict)  # token -> encoded builder states
    candles: list[Candle] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def empty(self) -> bool:
        return not (
            self.acks or self.entry or self.states or self.candles or self.signals
            or self.dead_letters
        )  # fmt: skip


@dataclass(frozen=True)
class Published:
    """Per intent, whether it went out now; the newest INTENTS entry id written ("" if none)."""

    flags: tuple[bool, ...]
    last_id: str


@dataclass(frozen=True)
class Committed:
    """The outcome of a commit. `last_ids`: stream -> newest entry id written."""

    last_ids: Mapping[str, str]
    replayed: bool = False  # the same commit id had been applied (a retry after a lost reply)


class LeaseLost(RuntimeError):
    """The partition's lease is no longer this process's: nothing was written."""


class RoundCommitter:
    """Runs the two scripts for the partitions of one replica."""

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
        self._intents = redis.register_script(_INTENTS)
        self._commit = redis.register_script(_COMMIT)

    async def publish_intents(self, partition: int, intents: Sequence[OrderIntent]) -> Published:
        """Publish each intent unless its signal id was published before (`flags`: per intent,
        whether it went out now). LeaseLost when the partition is not ours any more. A retry
        after a lost reply is safe: the NX keys turn it into "published before"."""
        if not intents:
            return Published((), "")
        keys = [
            c.PARTITION_LEASE_KEY.format(p=partition),
            c.INTENTS,
            *(c.INTENT_ONCE_KEY.format(signal_id=i.intent_id) for i in intents),
        ]
        args: list[Any] = [self.owner, self.maxlen, self.intent_ttl_ms]
        for intent in intents:
            args.extend(entry_fields(c.INTENTS, intent).values())
        reply = await call_with_retry(
            self.retry, "publish_intents", self.metrics,
            lambda: self._intents(keys=keys, args=args),
        )  # fmt: skip
        if int(reply[0]) == 0:
            raise LeaseLost(f"tick partition {partition} is not ours: intents not published")
        flags = tuple(bool(int(f)) for f in reply[1])
        if any(flags):
            self.metrics.published(c.INTENTS, sum(flags))
        return Published(flags, _text(reply[2]))

    async def commit(self, partition: int, round_: Round) -> Committed:
        """Apply a round atomically; LeaseLost when the partition is not ours any more."""
        keys = [
            c.PARTITION_LEASE_KEY.format(p=partition),
            c.CONSUMER_CHECKPOINT_KEY.format(p=partition),
            c.partitioned(c.TICKS, partition),
            c.CANDLES,
            c.SIGNALS,
            c.DEAD_LETTERS,
        ]
        commit_id = uuid.uuid4().hex
        args: list[Any] = [
            self.owner, self.group, self.maxlen, self.dead_letter_maxlen, round_.entry,
            commit_id,
        ]  # fmt: skip
        args.append(len(round_.acks))
        args.extend(round_.acks)
        args.append(len(round_.states))
        for token, payload in round_.states.items():
            args.extend((str(token), payload))
        _messages(args, c.CANDLES, round_.candles)
        _messages(args, c.SIGNALS, round_.signals)
        args.append(len(round_.dead_letters))
        for letter in round_.dead_letters:
            fields = dead_letter_fields(letter)
            args.append(len(fields))
            for name, value in fields.items():
                args.extend((name, value))
        reply = await call_with_retry(
            self.retry, "commit", self.metrics, lambda: self._commit(keys=keys, args=args)
        )
        status = int(reply[0])
        if status == 0:
            raise LeaseLost(f"tick partition {partition} is not ours: round not committed")
        if status == 2:
            return Committed({}, replayed=True)
        last_ids = {
            stream: _text(value)
            for stream, value in zip((c.CANDLES, c.SIGNALS), reply[1:3], strict=True)
            if _text(value)
        }
        self._count(partition, round_)
        return Committed(last_ids)

    def _count(self, partition: int, round_: Round) -> None:
        for stream, count in ((c.CANDLES, len(round_.candles)), (c.SIGNALS, len(round_.signals))):
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
