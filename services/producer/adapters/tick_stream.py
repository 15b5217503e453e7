"""Appending ticks to the partitioned ticks stream with ONE Redis call per batch (an IO adapter).

Why not StreamBus.publish_partitioned: redis-py's asyncio pipeline packs every XADD in Python and
reads every reply under its own timeout context, ~17 us of client CPU per entry, which caps the
Producer near 20k ticks/s on one core. Here a batch goes to a small Lua script: KEYS are the
shards, ARGV the entries grouped per shard (one argument per entry): one command to pack, one
reply to read. The entries are exactly the bus's (`shared.bus.wire.batch_entry_fields`, equal
to `entry_fields` per message: the wire layout stays the bus's; the script only needs it to be a
constant field plus a payload field), each XADD keeps the approximate MAXLEN bound, and order
within a shard is the input order.

Temporary Redis errors are retried like the bus does (`call_with_retry`); a retried batch may be
appended twice (at-least-once, as with the bus), which consumers already tolerate.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.exceptions import NoScriptError

from shared import constants as c
from shared.bus import BusMetrics, RetryPolicy
from shared.bus.io_retry import call_with_retry
from shared.bus.wire import batch_entry_fields
from shared.messages import Message

logger = logging.getLogger(__name__)

# KEYS: the shards of this batch. ARGV: maxlen, the constant first field (name, value), the
# second field's name, then per shard its entry count followed by each entry's second value.
APPEND_SCRIPT = """
local maxlen, f1, v1, f2 = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local call = redis.call
local a = 5
for i = 1, #KEYS do
  local n = tonumber(ARGV[a])
  a = a + 1
  for _ = 1, n do
    call('XADD', KEYS[i], 'MAXLEN', '~', maxlen, '*', f1, v1, f2, ARGV[a])
    a = a + 1
  end
end
return a - 5 - #KEYS
"""
SCRIPT_SHA = hashlib.sha1(APPEND_SCRIPT.encode()).hexdigest()
PARTITION_CACHE_SIZE = 100_000


class LayoutError(ValueError):
    """Entries whose fields are not (constant model field, payload field): the script cannot
    carry them (the bus's wire layout changed)."""


class ScriptedStreamAppender:
    def __init__(
        self,
        redis: Any,
        maxlen: int,
        batch: int,
        metrics: BusMetrics,
        retry: RetryPolicy | None = None,
    ) -> None:
        if maxlen < 1 or batch < 1:
            raise ValueError(f"maxlen and batch must be >= 1 ({maxlen}, {batch})")
        self.redis = redis
        self.maxlen = maxlen
        self.batch = batch
        self.metrics = metrics
        self.retry = retry or RetryPolicy()
        self._partition_cache: dict[tuple[str, int], dict[int, int]] = {}

    async def publish_partitioned[M: Message](
        self,
        stream: str,
        messages: Sequence[M],
        partitions: int,
        key: Callable[[M], int],
    ) -> int:
        """Append each message to `partitioned(stream, partition_of(key(m)))`; returns the count."""
        shards = [c.partitioned(stream, p) for p in range(max(1, partitions))]
        partition = self._partitions(stream, partitions)
        total = 0
        for start in range(0, len(messages), self.batch):
            chunk = messages[start : start + self.batch]
            grouped: dict[int, list[M]] = {}
            for message in chunk:
                k = key(message)
                p = partition.get(k)
                if p is None:
                    p = partition[k] = c.partition_of(k, partitions)
                group = grouped.get(p)
                if group is None:
                    grouped[p] = [message]
                else:
                    group.append(message)
            if not grouped:
                continue
            by_shard: dict[str, list[bytes]] = {}
            layout: tuple[bytes, bytes, bytes] | None = None
            for p, group in grouped.items():
                entries = batch_entry_fields(shards[p], group)
                if len(entries.shared) != 1:
                    raise LayoutError(f"expected 1 constant field, got {sorted(entries.shared)}")
                ((name1, value1),) = entries.shared.items()
                if layout is None:
                    layout = (name1, value1, entries.payload_field)
                elif layout != (name1, value1, entries.payload_field):
                    raise LayoutError("entries of one batch differ in their constant field")
                by_shard[shards[p]] = entries.payloads
            assert layout is not None
            keys = list(by_shard)
            argv: list[bytes | int] = [self.maxlen, *layout]
            for values in by_shard.values():
                argv.append(len(values))
                argv.extend(values)

            async def append(k: list[str] = keys, a: list[bytes | int] = argv) -> Any:
                return await self._run(k, a)

            await call_with_retry(self.retry, "xadd", self.metrics, append)
            for shard, values in by_shard.items():
                self.metrics.published(shard, len(values))
            total += len(chunk)
        return total

    def _partitions(self, stream: str, partitions: int) -> dict[int, int]:
        """key -> partition, remembered (crc32 of the key's text per message cost ~0.2 ms per
        1,000 ticks); bounded like the parser's caches."""
        cache = self._partition_cache.get((stream, partitions))
        if cache is None or len(cache) >= PARTITION_CACHE_SIZE:
            cache = self._partition_cache[(stream, partitions)] = {}
        return cache

    async def _run(self, keys: list[str], argv: list[bytes | int]) -> Any:
        try:
            return await self.redis.evalsha(SCRIPT_SHA, len(keys), *keys, *argv)
        except NoScriptError:  # a restarted or flushed Redis: load it and go on
            logger.info("loading the tick append script into Redis")
            await self.redis.script_load(APPEND_SCRIPT)
            return await self.redis.evalsha(SCRIPT_SHA, len(keys), *keys, *argv)
