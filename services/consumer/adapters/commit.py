"""Two scripts per tick partition: what makes candles and intents exactly-once.

Intents go out as soon as they are decided; everything else a partition handles is coalesced and
committed every `commit_interval_ms` (or once `commit_max_entries` entries are uncommitted). Both
scripts are atomic and fenced: nothing is written unless this process still holds the partition's
lease.
1. `publish_intents`, small and right away, because it is the latency that matters: each intent
   goes out only if `SET ta:consumer:intent:{signal_id} NX PX ttl` succeeds, so a signal id can
   never produce a second intent (a re-handled entry, two owners during a lease race, a restart
   that lost its checkpoint): the Consumer's own guarantee, on top of the Gatekeeper's decided set.
2. `commit`: the candles and signals handled since the last commit are appended to their streams,
   malformed ticks dead-lettered (original fields + reason), the builder states of every
   instrument touched since the last commit (each encoded once) and the last entry id written to
   the checkpoint hash, and the entries acked; a commit id already applied (a retry after a lost
   reply) is not applied twice.
A replica that dies before `commit` leaves every entry since its last commit pending and its
checkpoint at that commit: the next owner restores that checkpoint, handles the same entries
again and produces the same output: the candles and signals are published once (by the new
owner, at its commit), the intents at most once (by the NX keys). Every commit carries ALL the
work handled before it (states, entry and acks together), never a part: a checkpoint whose states
were ahead of its entry would make the successor apply entries twice. Entry fields are the bus's
wire (shared.bus.entry_fields); nothing else here knows the encoding.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.candles import CandleGap
from shared import constants as c
from shared.bus import RetryPolicy, entry_fields
from shared.bus.dead_letter import DeadLetter, dead_letter_fields
from shared.bus.io_retry import TEMPORARY_REDIS_ERRORS, call_with_retry
from shared.bus.wire import DATA_FIELD, MODEL_FIELD
from shared.messages import Candle, OrderIntent, Signal

logger = logging.getLogger(__name__)

ENTRY_FIELD = "_entry"
COMMIT_FIELD = "_commit"
STORED_PREFIX = "_stored:"

# KEYS: the intents stream, the lease of each of the G partitions, then the NX key of every
# intent (partition by partition). ARGV: owner, maxlen, ttl, G, each partition's intent count,
# then each intent's m and d. Per partition: {lease held 1/0, per-intent flags, newest entry}.
_INTENTS = """
local owner, maxlen, ttl, groups = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local out = {}
local k, a = 1 + groups, 5 + groups
for g = 1, groups do
  local held = redis.call('GET', KEYS[1 + g]) == owner
  local flags, last = {}, ''
  for j = 1, tonumber(ARGV[4 + g]) do
    k = k + 1
    if held and redis.call('SET', KEYS[k], '1', 'NX', 'PX', ttl) then
      last = redis.call('XADD', KEYS[1], 'MAXLEN', '~', maxlen, '*', 'm', ARGV[a], 'd', ARGV[a + 1])
      flags[j] = 1
    else
      flags[j] = 0
    end
    a = a + 2
  end
  out[g] = {held and 1 or 0, flags, last}
end
return out
"""

# The lists travel packed into a few arguments (ids and lengths comma-joined, payloads
# concatenated): a commit of thousands of items is a dozen arguments, cheap to pack and to send.
_COMMIT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if redis.call('HGET', KEYS[2], '_commit') == ARGV[6] then return {2} end
local maxlen, dl_maxlen = ARGV[3], ARGV[4]
local function split(text)
  local out = {}
  for v in string.gmatch(text, '[^,]+') do out[#out + 1] = v end
  return out
end
local function pieces(lengths, blob)
  local out, pos = {}, 1
  for _, n in ipairs(split(lengths)) do
    local stop = pos + tonumber(n)
    out[#out + 1] = string.sub(blob, pos, stop - 1)
    pos = stop
  end
  return out
end
local function each_chunk(values, call)
  for k = 1, #values, 1000 do call(unpack(values, k, math.min(k + 999, #values))) end
end
local function add_all(stream, model, lengths, blob)
  local last = ''
  for _, d in ipairs(pieces(lengths, blob)) do
    last = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'm', model, 'd', d)
  end
  return last
end
local acks = split(ARGV[7])
local states = {}
local payloads = pieces(ARGV[9], ARGV[10])
for n, token in ipairs(split(ARGV[8])) do
  states[#states + 1] = token
  states[#states + 1] = payloads[n]
end
local last_candle = add_all(KEYS[4], ARGV[11], ARGV[12], ARGV[13])
local last_signal = add_all(KEYS[5], ARGV[14], ARGV[15], ARGV[16])
local i = 18
for _ = 1, tonumber(ARGV[17]) do
  local fields = {}
  for _ = 1, tonumber(ARGV[i]) do
    fields[#fields + 1] = ARGV[i + 1]; fields[#fields + 1] = ARGV[i + 2]; i = i + 2
  end
  i = i + 1
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', dl_maxlen, '*', unpack(fields))
end
each_chunk(states, function(...) redis.call('HSET', KEYS[2], ...) end)
if ARGV[5] ~= '' then redis.call('HSET', KEYS[2], '_entry', ARGV[5]) end
redis.call('HSET', KEYS[2], '_commit', ARGV[6])
each_chunk(acks, function(...) redis.call('XACK', KEYS[3], ARGV[2], ...) end)
return {1, last_candle, last_signal}
"""


@dataclass
class Uncommitted:
    """What a partition has handled since its last commit (intents aside: they went out already).

    Everything here is applied to the partition's builders and strategies; the next commit
    publishes it together with the states of `dirty` (taken at that moment) and acks `acks`."""

    acks: list[str] = field(default_factory=list)
    entry: str = ""  # the last tick entry handled ("" while only timer work is uncommitted)
    dirty: set[int] = field(default_factory=set)  # instruments whose state changed
    candles: list[Candle] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    gaps: list[CandleGap] = field(default_factory=list)
    intents: list[OrderIntent] = field(default_factory=list)  # published: their rows to store
    intents_last_id: str = ""  # the newest INTENTS entry they made
    ticks: int = 0  # ticks built into candles (the entries minus dead letters and skips)
    since: float = 0.0  # monotonic time of the oldest uncommitted work

    def empty(self) -> bool:
        return not (
            self.acks or self.entry or self.dirty or self.candles or self.signals
            or self.dead_letters or self.gaps or self.intents
        )  # fmt: skip


@dataclass(frozen=True)
class Published:
    """Per intent, whether it went out now; the newest INTENTS entry id written ("" if none);
    whether the partition's lease was ours (if not, nothing was written)."""

    flags: tuple[bool, ...]
    last_id: str
    lease_held: bool = True


@dataclass(frozen=True)
class Committed:
    """The outcome of a commit. `last_ids`: stream -> newest entry id written."""

    last_ids: Mapping[str, str]
    replayed: bool = False  # the same commit id had been applied (a retry after a lost reply)


class LeaseLost(RuntimeError):
    """The partition's lease is no longer this process's: nothing was written."""


class PartitionCommitter:
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
        # A connection of the pool held for intents: a command on it is written at once. One
        # taken from the pool is first checked with a zero-timeout read, which yields to the
        # event loop: the intent would leave only once the loop is free again (after the rest
        # of the batch, milliseconds later). The pool serves a send while another one is out.
        self._held = redis.client()
        self._intents_held = self._held.register_script(_INTENTS)
        self._held_busy = False
        self._commit = redis.register_script(_COMMIT)

    async def publish_intents(
        self, groups: Sequence[tuple[int, Sequence[OrderIntent]]]
    ) -> list[Published]:
        """Publish the intents of one or more partitions in one script call: each intent
        unless its signal id was published before, and none of a partition whose lease is not
        ours (`Published.lease_held` False). A retry after a lost reply is safe: the NX keys
        turn it into "published before"."""
        groups = [(p, intents) for p, intents in groups if intents]
        if not groups:
            return []
        keys = [
            c.INTENTS,
            *(c.PARTITION_LEASE_KEY.format(p=p) for p, _ in groups),
            *(c.INTENT_ONCE_KEY.format(signal_id=i.intent_id) for _, g in groups for i in g),
        ]
        args: list[Any] = [self.owner, self.maxlen, self.intent_ttl_ms, len(groups)]
        args.extend(len(intents) for _, intents in groups)
        for _, intents in groups:
            for intent in intents:
                args.extend(entry_fields(c.INTENTS, intent).values())
        try:  # the first try without tenacity's set-up: this call is the latency that matters
            if self._held_busy:
                reply = await self._intents(keys=keys, args=args)
            else:
                self._held_busy = True
                try:
                    reply = await self._intents_held(keys=keys, args=args)
                finally:
                    self._held_busy = False
        except TEMPORARY_REDIS_ERRORS as exc:
            if self.retry.attempts < 2:
                raise
            self.metrics.io_retried("publish_intents")
            logger.warning("redis publish_intents failed (attempt 1 of %s), retrying: %r",
                           self.retry.attempts, exc)  # fmt: skip
            await asyncio.sleep(self.retry.initial_s)
            rest = replace(self.retry, attempts=self.retry.attempts - 1)
            reply = await call_with_retry(
                rest, "publish_intents", self.metrics, lambda: self._intents(keys=keys, args=args)
            )
        out = [
            Published(tuple(bool(int(f)) for f in flags), _text(last), bool(int(held)))
            for held, flags, last in reply
        ]
        sent = sum(sum(p.flags) for p in out)
        if sent:
            self.metrics.published(c.INTENTS, sent)
        return out

    async def open(self) -> None:
        """Connect the connection held for intents and load both scripts (before the first
        intent: a script Redis does not know yet costs a NOSCRIPT reply and a load)."""
        await self._held.ping()
        await self._held.script_load(_INTENTS)
        await self._held.script_load(_COMMIT)

    async def close(self) -> None:
        """Give the held connection back to the pool."""
        await self._held.aclose()

    async def commit(
        self, partition: int, work: Uncommitted, states: Mapping[int, bytes]
    ) -> Committed:
        """Apply `work` and the checkpoint `states` (token -> encoded builder states) atomically;
        LeaseLost when the partition is not ours any more."""
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
            self.owner, self.group, self.maxlen, self.dead_letter_maxlen, work.entry, commit_id,
        ]  # fmt: skip
        args.append(",".join(work.acks))
        args.append(",".join(map(str, states)))
        args.extend(_packed(list(states.values())))
        _messages(args, c.CANDLES, work.candles)
        _messages(args, c.SIGNALS, work.signals)
        args.append(len(work.dead_letters))
        for letter in work.dead_letters:
            fields = dead_letter_fields(letter)
            args.append(len(fields))
            for name, value in fields.items():
                args.extend((name, value))
        reply = await call_with_retry(
            self.retry, "commit", self.metrics, lambda: self._commit(keys=keys, args=args)
        )
        status = int(reply[0])
        if status == 0:
            raise LeaseLost(f"tick partition {partition} is not ours: work not committed")
        if status == 2:
            return Committed({}, replayed=True)
        last_ids = {
            stream: _text(value)
            for stream, value in zip((c.CANDLES, c.SIGNALS), reply[1:3], strict=True)
            if _text(value)
        }
        self._count(partition, work)
        return Committed(last_ids)

    def _count(self, partition: int, work: Uncommitted) -> None:
        for stream, count in ((c.CANDLES, len(work.candles)), (c.SIGNALS, len(work.signals))):
            if count:
                self.metrics.published(stream, count)
        for letter in work.dead_letters:
            self.metrics.dead_lettered(letter.stream, letter.kind)
        if work.acks:
            self.metrics.consumed(c.partitioned(c.TICKS, partition), len(work.acks))


def _messages(args: list[Any], stream: str, messages: Sequence[Any]) -> None:
    """The model name, the payload lengths and the payloads of a stream's entries."""
    # entry_fields refuses a message of another model: one model name stands for all.
    fields = [entry_fields(stream, message) for message in messages]
    args.append(fields[0][MODEL_FIELD] if fields else b"")
    args.extend(_packed([f[DATA_FIELD] for f in fields]))


def _packed(payloads: list[bytes]) -> tuple[str, bytes]:
    """Payloads as (their comma-joined lengths, their concatenation)."""
    return ",".join(str(len(p)) for p in payloads), b"".join(payloads)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
