"""Spreading instruments over KiteTicker connections (pure).

Kite allows 3 connections per API key and 3000 instruments per connection. The Producer opens as
FEW connections as the instruments need (a connection of only quiet strikes would look stalled to
the watchdog) and balances the instruments over them round-robin, so each connection carries a
mix of busy and quiet ones. Instruments beyond the capacity are refused with a reason, never
silently dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Shards:
    connections: tuple[tuple[int, ...], ...]  # instrument tokens per connection
    refused: tuple[int, ...]  # tokens beyond capacity, in input order
    reason: str  # why some were refused ("" when none)


def shard_tokens(tokens: Sequence[int], max_connections: int, per_connection: int) -> Shards:
    """Tokens (deduplicated, order kept) over ceil(n / per_connection) connections."""
    if max_connections < 1 or per_connection < 1:
        raise ValueError(
            f"need >= 1 connection and instrument ({max_connections}, {per_connection})"
        )
    unique = list(dict.fromkeys(tokens))
    capacity = max_connections * per_connection
    kept, refused = unique[:capacity], unique[capacity:]
    count = -(-len(kept) // per_connection)  # ceiling
    connections = tuple(tuple(kept[i::count]) for i in range(count)) if count else ()
    reason = ""
    if refused:
        reason = (
            f"{len(unique)} instruments exceed the capacity of {max_connections} connections x "
            f"{per_connection} = {capacity}; {len(refused)} not subscribed"
        )
    return Shards(connections, tuple(refused), reason)
