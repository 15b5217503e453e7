"""How tick partitions are shared between Consumer replicas (pure).

Each replica owns WHOLE partitions (every tick of an instrument lands in one partition, so one
replica sees all of an instrument's ticks, in order). Ownership is a Redis lease per partition;
this module only decides what a replica should try to hold: its fair share, ceil(partitions /
live replicas), taking free partitions lowest first and giving back its highest ones when it holds
more than its share (a replica that just joined then picks them up).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OwnershipPlan:
    """Partitions to try to acquire and to release, in order."""

    acquire: tuple[int, ...]
    release: tuple[int, ...]
    share: int


def fair_share(partitions: int, live_replicas: int) -> int:
    """The most partitions one replica should hold."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    return math.ceil(partitions / max(1, live_replicas))


def plan_ownership(
    partitions: int, live_replicas: int, owned: Collection[int], taken: Collection[int]
) -> OwnershipPlan:
    """What to do this round. `owned`: this replica's leases; `taken`: partitions other replicas
    hold. A partition nobody holds (a dead replica's, once its lease expired) is acquired while
    this replica is below its share."""
    share = fair_share(partitions, live_replicas)
    mine = sorted(owned)
    free = [p for p in range(partitions) if p not in owned and p not in taken]
    room = max(0, share - len(mine))
    release = tuple(sorted(mine, reverse=True)[: max(0, len(mine) - share)])
    return OwnershipPlan(tuple(free[:room]), release, share)
