"""Partition leases and the replica registry in Redis.

A lease is `SET ta:consumer:partition:{p} <owner> NX PX ttl`; the owner value is unique to this
process run (replica name + a random suffix), so a restarted replica never mistakes its previous
run's lease for its own. Renewal and release compare the value first (Lua), so a replica whose
lease lapsed cannot extend or delete its successor's. The commit script checks the same value
before it writes anything (adapters/commit.py): a replica that lost its lease while paused
cannot write a stale checkpoint or publish.

The registry is a sorted set of replica -> registration expiry (ms); the live replicas set each
one's fair share of partitions (ownership.py).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from shared import constants as c

logger = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def lease_key(partition: int) -> str:
    return c.PARTITION_LEASE_KEY.format(p=partition)


def owner_value(replica: str) -> str:
    """This process run's lease value."""
    return f"{replica}:{uuid.uuid4().hex[:12]}"


def replica_of(owner: str) -> str:
    """The replica name inside a lease value."""
    return owner.rpartition(":")[0] or owner


class PartitionLeases:
    """The leases one replica holds."""

    def __init__(self, redis: Any, owner: str, ttl_ms: int) -> None:
        self.redis = redis
        self.owner = owner
        self.ttl_ms = ttl_ms
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def acquire(self, partition: int) -> bool:
        """Take a free partition; False when someone holds it."""
        taken = await self.redis.set(lease_key(partition), self.owner, nx=True, px=self.ttl_ms)
        if taken:
            logger.info("acquired the lease of tick partition %s as %s", partition, self.owner)
        return bool(taken)

    async def renew(self, partitions: Iterable[int]) -> set[int]:
        """Extend our leases; returns the partitions still ours (a lapsed one is lost)."""
        held = sorted(partitions)
        kept: set[int] = set()
        for partition in held:
            if await self._renew(keys=[lease_key(partition)], args=[self.owner, self.ttl_ms]):
                kept.add(partition)
            else:
                logger.error("lost the lease of tick partition %s (it lapsed)", partition)
        return kept

    async def release(self, partition: int) -> bool:
        """Give a partition back now (after its last commit)."""
        released = bool(await self._release(keys=[lease_key(partition)], args=[self.owner]))
        logger.info("released the lease of tick partition %s: %s", partition, released)
        return released

    async def holders(self, partitions: int) -> dict[int, str]:
        """Who holds each held partition (value of its lease)."""
        keys = [lease_key(p) for p in range(partitions)]
        values: Sequence[bytes | None] = await self.redis.mget(keys)
        return {p: v.decode() for p, v in enumerate(values) if v is not None}


class ReplicaRegistry:
    """Live Consumer replicas (registration renewed every ownership round)."""

    def __init__(self, redis: Any, replica: str, ttl_ms: int) -> None:
        self.redis = redis
        self.replica = replica
        self.ttl_ms = ttl_ms

    async def beat(self, now_ms: int) -> int:
        """Renew this replica's registration; returns how many replicas are live."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(c.CONSUMER_REPLICAS_KEY, "-inf", now_ms)
            pipe.zadd(c.CONSUMER_REPLICAS_KEY, {self.replica: now_ms + self.ttl_ms})
            pipe.zcount(c.CONSUMER_REPLICAS_KEY, now_ms, "+inf")
            result = await pipe.execute()
        return max(1, int(result[-1]))

    async def leave(self) -> None:
        await self.redis.zrem(c.CONSUMER_REPLICAS_KEY, self.replica)
