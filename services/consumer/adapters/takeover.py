"""What a replica reads when it takes a tick partition over (the IO of PartitionWorker.start).

1. the checkpoint: per instrument the builder states after the last committed entry, that entry,
   and the `_stored:` marks (instruments idle for `checkpoint_keep_days` are dropped from it);
2. rows the previous owner committed but may not have flushed to ClickHouse, re-read from the
   streams from the `_stored:` marks on (ReplacingMergeTree makes a second copy harmless);
3. the group's pending entries (read by the previous owner, never committed), claimed for this
   replica's consumer so it handles them first, in order.

While it owns the partition, entries still turning up pending with another consumer are claimed
too (`claim_strays`): Redis serves a blocked read even of a replica that has stalled past its
lease, so one may be handed entries after the new owner's take-over claim.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.exceptions import ResponseError

from services.consumer.adapters.commit import ENTRY_FIELD, STORED_PREFIX
from services.consumer.adapters.entries import entry_key
from services.consumer.adapters.store import ConsumerStore
from services.consumer.builder_state import BuilderState, CheckpointError, decode_instrument
from shared import constants as c
from shared.bus import decode_entry
from shared.messages import MessageError

logger = logging.getLogger(__name__)

ROWS_STREAMS = (c.CANDLES, c.SIGNALS, c.INTENTS)


@dataclass
class Checkpoint:
    """A partition's checkpoint as read: instrument states, the last committed entry and the
    raw hash (the `_stored:` marks)."""

    states: list[tuple[BuilderState, ...]] = field(default_factory=list)
    entry: str = ""
    raw: dict[bytes, bytes] = field(default_factory=dict)


async def read_checkpoint(redis: Any, partition: int, keep: timedelta) -> Checkpoint:
    """The checkpoint of a partition; unreadable instruments are logged and left out, idle
    ones deleted from it."""
    key = c.CONSUMER_CHECKPOINT_KEY.format(p=partition)
    raw: dict[bytes, bytes] = await redis.hgetall(key)
    restored: dict[bytes, tuple[BuilderState, ...]] = {}
    for name, value in raw.items():
        if name.startswith(b"_"):
            continue
        try:
            restored[name] = decode_instrument(value)
        except CheckpointError as exc:
            logger.error("partition %s: instrument %s not restored: %s", partition,
                         name.decode(), exc)  # fmt: skip
    stale = idle_instruments(restored, keep)
    if stale:
        await redis.hdel(key, *stale)
        logger.info("partition %s: %s instruments idle for over %s dropped from the checkpoint",
                    partition, len(stale), keep)  # fmt: skip
    return Checkpoint(
        [states for name, states in restored.items() if name not in stale],
        raw.get(ENTRY_FIELD.encode(), b"").decode(),
        raw,
    )


async def restore_rows(
    redis: Any, store: ConsumerStore, partition: int, partitions: int, raw: dict[bytes, bytes]
) -> int:
    """Re-add this partition's rows after the `_stored:` marks to the store and flush them;
    returns how many."""
    restored = 0
    for stream in ROWS_STREAMS:
        mark = raw.get(f"{STORED_PREFIX}{stream}".encode())
        start = f"({mark.decode()}" if mark else "-"
        while True:
            entries = await redis.xrange(stream, min=start, max="+", count=1000)
            if not entries:
                break
            mine: list[Any] = []
            for _, fields in entries:
                try:
                    message = decode_entry(stream, fields)
                except MessageError:
                    continue
                token = getattr(message, "instrument_token", -1)
                if c.partition_of(token, partitions) == partition:
                    mine.append(message)
            if stream == c.CANDLES:
                store.add_candles(mine)
            elif stream == c.SIGNALS:
                store.add_signals(mine)
            else:
                store.add_intents(mine)
            restored += len(mine)
            start = f"({_text(entries[-1][0])}"
    if restored:
        await store.flush()
    return restored


async def claim_pending(redis: Any, stream: str, consumer: str) -> int:
    """Create the group if needed, claim every pending entry for `consumer` and delete the
    other consumers left with none; returns how many entries were claimed."""
    try:
        await redis.xgroup_create(stream, c.GROUP_CONSUMER, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
    claimed = 0
    cursor: Any = "0-0"
    while True:
        reply = await redis.xautoclaim(
            stream, c.GROUP_CONSUMER, consumer, min_idle_time=0, start_id=cursor, count=1000
        )
        cursor = _text(reply[0])
        claimed += len(reply[1])
        if cursor == "0-0":
            break
    for info in await redis.xinfo_consumers(stream, c.GROUP_CONSUMER):
        name = _text(info.get("name", b""))
        if name != consumer and int(info.get("pending", 0)) == 0:
            await redis.xgroup_delconsumer(stream, c.GROUP_CONSUMER, name)
    return claimed


async def claim_strays(redis: Any, stream: str, consumer: str) -> list[tuple[str, Any]]:
    """The entries pending with any consumer but `consumer`, claimed for it (oldest first)."""
    summary = await redis.xpending(stream, c.GROUP_CONSUMER)
    others = [x["name"] for x in summary.get("consumers") or () if _text(x["name"]) != consumer]
    ids: list[Any] = []
    for name in others:
        rows = await redis.xpending_range(
            stream, c.GROUP_CONSUMER, min="-", max="+", count=10_000, consumername=name
        )
        ids.extend(row["message_id"] for row in rows)
    if not ids:
        return []
    claimed = await redis.xclaim(stream, c.GROUP_CONSUMER, consumer, 0, ids)
    entries = [(_text(entry_id), fields) for entry_id, fields in claimed]
    entries.sort(key=lambda entry: entry_key(entry[0]))
    return entries


def idle_instruments(
    restored: dict[bytes, tuple[BuilderState, ...]], keep: timedelta
) -> list[bytes]:
    """Checkpoint entries whose newest candle ended `keep` before the partition's newest one
    (expired options, delisted symbols): dropped so a checkpoint does not grow for ever."""

    def newest(states: tuple[BuilderState, ...]) -> datetime | None:
        ends = [s.last_end for s in states if s.last_end is not None]
        return max(ends) if ends else None

    ends = {key: newest(states) for key, states in restored.items()}
    known = [e for e in ends.values() if e is not None]
    if not known:
        return []
    horizon = max(known) - keep
    return [key for key, end in ends.items() if end is not None and end < horizon]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
