"""The consumer-group loop: at-least-once delivery with reclaim, dead letters and a poison limit.

Guarantees, for one (group, consumer) over one or more streams:
- an entry is acked only after the handler returned; entries of one stream are handled in order
  (an entry whose handler failed is retried later, so it may come after newer ones);
- a batch handler (`BatchHandler`, `StreamBus.consume_batches`) gets the decodable new entries of
  one read together, in order, and says per entry how it went (None: done; an exception: as if a
  single handler raised it); the entries it handled are acked together after it returned (one
  XACK), so a crash during a batch delivers the whole batch again. The Gatekeeper decides a burst
  of intents with one Redis round trip instead of one each. Redelivered entries come one by one;
- an entry that cannot be decoded, or whose handler raises RejectedInput/MessageError, is written to
  the dead-letter stream with the reason and acked in one MULTI transaction; the loop goes on;
- any other handler error leaves the entry pending; once idle for `reclaim_idle_ms` it is claimed
  (XAUTOCLAIM) and retried, by this consumer or another one, and after `max_deliveries` deliveries
  it is dead-lettered as poison. An entry left pending by a consumer that died is reclaimed the same
  way, so `reclaim_idle_ms` must be longer than the slowest handler call;
- entries this consumer had pending when it last stopped are handled first (same consumer name);
- `stop` is checked between entries and after each XREADGROUP (at most `block_ms`); entries read
  but not handled stay pending for a later run or another consumer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from shared.bus.dead_letter import DeadLetter, DeadLetterKind
from shared.bus.io_retry import call_with_retry
from shared.bus.policy import (
    ConsumeOptions,
    Disposition,
    disposition_of,
    failure_reason,
    is_poison,
    poison_reason,
    reclaim_due,
)
from shared.bus.wire import decode_entry
from shared.messages import Message, MessageError

if TYPE_CHECKING:
    from shared.bus.stream_bus import Handler, StreamBus

logger = logging.getLogger(__name__)

# Last failure per pending entry, for the poison reason; bounded so a flood cannot grow it.
_LAST_ERRORS_KEPT = 10_000

Entry = tuple[bytes, dict[bytes, bytes] | None]

BatchHandler = Callable[
    [str, Sequence[tuple[str, Message]]], Awaitable[Sequence[BaseException | None]]
]
"""An async handler of the new entries of one read of one stream: (stream, [(entry_id,
message)]) -> one outcome per entry, in order (None: handled; an exception: failed)."""


class GroupConsumer:
    """One run of `StreamBus.consume`."""

    def __init__(
        self,
        bus: StreamBus,
        streams: Sequence[str],
        group: str,
        consumer: str,
        handler: Handler | None,
        options: ConsumeOptions,
        batch_handler: BatchHandler | None = None,
    ) -> None:
        if not streams:
            raise ValueError("consume needs at least one stream")
        if (handler is None) == (batch_handler is None):
            raise ValueError("consume needs exactly one of handler and batch_handler")
        self._bus = bus
        self._streams = list(streams)
        self._group = group
        self._consumer = consumer
        self._handler = handler
        self._batch_handler = batch_handler
        self._options = options
        self._last_errors: OrderedDict[tuple[str, str], str] = OrderedDict()

    async def run(self, stop: asyncio.Event) -> None:
        for stream in self._streams:
            await self._bus.ensure_group(stream, self._group, self._options.group_start)
        logger.info(
            "consumer %s of group %s reading %s", self._consumer, self._group, self._streams
        )
        await self._handle_own_pending(stop)
        # A connection held for the reads: one taken from the pool for each read is first
        # checked with a zero-timeout read, one more turn of the event loop before every read.
        reader = self._bus.redis.client()
        try:
            await self._read_loop(stop, reader)
        finally:
            await reader.aclose()  # back to the pool
        logger.info("consumer %s of group %s stopped", self._consumer, self._group)

    async def _read_loop(self, stop: asyncio.Event, reader: Any) -> None:
        clock = asyncio.get_running_loop()
        last_reclaim: float | None = None
        while not stop.is_set():
            if reclaim_due(last_reclaim, clock.time(), self._options.reclaim_interval_s):
                await self._reclaim(stop)
                last_reclaim = clock.time()
            if stop.is_set():
                break
            reply = await self._io(
                "xreadgroup",
                lambda: reader.xreadgroup(
                    self._group,
                    self._consumer,
                    dict.fromkeys(self._streams, ">"),
                    count=self._options.count,
                    block=self._options.block_ms,
                ),
            )
            for stream, entries in _stream_entries(reply):
                if self._batch_handler is not None:
                    await self._deliver_batch(stream, entries)
                    continue
                for entry_id, fields in entries:
                    if stop.is_set():
                        return
                    await self._deliver(stream, _as_text(entry_id), fields, deliveries=1)
            # Yield to other tasks even when the client answered without blocking (fakeredis).
            await asyncio.sleep(0)

    async def _handle_own_pending(self, stop: asyncio.Event) -> None:
        """Entries delivered to this consumer name before (a restart) come first."""
        for stream in self._streams:
            after = "0"
            while not stop.is_set():
                reply = await self._io(
                    "xreadgroup",
                    lambda after=after, stream=stream: self._bus.redis.xreadgroup(
                        self._group, self._consumer, {stream: after}, count=self._options.count
                    ),
                )
                # Redis reads history strictly after `after`; fakeredis includes it: drop it.
                entries = [
                    e
                    for _, batch in _stream_entries(reply)
                    for e in batch
                    if _as_text(e[0]) != after
                ]
                if not entries:
                    break
                logger.info("handling %s entries of %s left pending earlier", len(entries), stream)
                await self._deliver_redelivered(stream, entries, stop)
                after = entries[-1][0].decode()

    async def _reclaim(self, stop: asyncio.Event) -> None:
        """Claim entries idle longer than reclaim_idle_ms (their consumer died or failed)."""
        for stream in self._streams:
            cursor = "0-0"
            while not stop.is_set():
                reply = await self._io(
                    "xautoclaim",
                    lambda cursor=cursor, stream=stream: self._bus.redis.xautoclaim(
                        stream,
                        self._group,
                        self._consumer,
                        min_idle_time=self._options.reclaim_idle_ms,
                        start_id=cursor,
                        count=self._options.count,
                    ),
                )
                cursor = _as_text(reply[0])
                claimed: list[Entry] = list(reply[1])
                deleted = list(reply[2]) if len(reply) > 2 else []
                if deleted:
                    self._bus.metrics.trimmed(stream, len(deleted))
                    logger.warning(
                        "%s pending entries of %s were trimmed before anyone handled them: %s",
                        len(deleted),
                        stream,
                        [_as_text(d) for d in deleted],
                    )
                if claimed:
                    self._bus.metrics.reclaimed(stream, len(claimed))
                    logger.info(
                        "consumer %s reclaimed %s idle entries of %s",
                        self._consumer,
                        len(claimed),
                        stream,
                    )
                    await self._deliver_redelivered(stream, claimed, stop)
                if cursor == "0-0":
                    break

    async def _deliver_redelivered(
        self, stream: str, entries: Sequence[Entry], stop: asyncio.Event
    ) -> None:
        counts = await self._delivery_counts(stream, [e[0] for e in entries])
        for entry_id, fields in entries:
            if stop.is_set():
                return
            key = _as_text(entry_id)
            deliveries = counts.get(key)
            if deliveries is None:  # acked or claimed by someone else meanwhile
                logger.info("entry %s of %s is no longer ours; skipped", key, stream)
                continue
            await self._deliver(stream, key, fields, deliveries)

    async def _delivery_counts(self, stream: str, ids: Iterable[bytes]) -> dict[str, int]:
        """Delivery count of each id that is still pending for THIS consumer."""
        id_list = list(ids)

        async def send() -> list[Any]:
            async with self._bus.redis.pipeline(transaction=False) as pipe:
                for entry_id in id_list:
                    pipe.xpending_range(stream, self._group, min=entry_id, max=entry_id, count=1)
                result: list[Any] = await pipe.execute()
                return result

        counts: dict[str, int] = {}
        for rows in await self._io("xpending", send):
            for row in rows:
                if _as_text(row["consumer"]) == self._consumer:
                    counts[_as_text(row["message_id"])] = int(row["times_delivered"])
        return counts

    async def _deliver_batch(
        self, stream: str, entries: Sequence[Entry], deliveries: int = 1
    ) -> None:
        """Entries of one read (or one redelivered entry): trimmed ones acked, poison and
        malformed ones dead-lettered, the rest handled (a batch handler: in one call), then the
        handled ones acked together; failed ones left pending."""
        options = self._options
        done: list[str] = []
        ready: list[tuple[str, Message]] = []
        fields_of: dict[str, dict[bytes, bytes]] = {}
        for raw_id, fields in entries:
            entry_id = _as_text(raw_id)
            if not fields:  # deleted (trimmed) while pending: nothing left to handle
                self._bus.metrics.trimmed(stream, 1)
                logger.warning("entry %s of %s was trimmed before it was handled; acked",
                               entry_id, stream)  # fmt: skip
                done.append(entry_id)
                continue
            if is_poison(deliveries, options.max_deliveries):
                last = self._last_errors.pop((stream, entry_id), None)
                reason = poison_reason(deliveries, options.max_deliveries, last)
                await self._dead_letter(
                    DeadLetterKind.POISON, reason, stream, entry_id, fields, deliveries
                )
                continue
            try:
                ready.append((entry_id, decode_entry(stream, fields)))
                fields_of[entry_id] = fields
            except MessageError as exc:
                await self._dead_letter(DeadLetterKind.MALFORMED, failure_reason(exc), stream,
                                        entry_id, fields, deliveries)  # fmt: skip
        outcomes = await self._handle(stream, ready)
        for (entry_id, _), outcome in zip(ready, outcomes, strict=True):
            if outcome is None:
                done.append(entry_id)
                self._last_errors.pop((stream, entry_id), None)
                self._bus.metrics.handled(stream)
            else:
                await self._failed(stream, entry_id, fields_of[entry_id], deliveries, outcome)
        if done:
            await self._io("xack", lambda: self._bus.redis.xack(stream, self._group, *done))

    async def _handle(
        self, stream: str, ready: Sequence[tuple[str, Message]]
    ) -> Sequence[BaseException | None]:
        """One outcome per entry (None: handled) from whichever handler this consumer has."""
        if not ready:
            return []
        if self._batch_handler is not None:
            try:
                outcomes = await self._batch_handler(stream, ready)
            except Exception as exc:  # the whole batch failed: every entry stays pending
                return [exc] * len(ready)
            if len(outcomes) != len(ready):
                error = RuntimeError(f"batch handler gave {len(outcomes)} outcomes for "
                                     f"{len(ready)} entries")  # fmt: skip
                return [error] * len(ready)
            return outcomes
        assert self._handler is not None
        results: list[BaseException | None] = []
        for entry_id, message in ready:
            try:
                await self._handler(stream, entry_id, message)
                results.append(None)
            except Exception as exc:
                results.append(exc)
        return results

    async def _failed(
        self,
        stream: str,
        entry_id: str,
        fields: dict[bytes, bytes],
        deliveries: int,
        exc: BaseException,
    ) -> None:
        reason = failure_reason(exc)
        if isinstance(exc, Exception) and disposition_of(exc) is Disposition.DEAD_LETTER:
            await self._dead_letter(
                DeadLetterKind.REJECTED, reason, stream, entry_id, fields, deliveries
            )
            return
        self._remember_failure(stream, entry_id, reason)
        self._bus.metrics.handler_failed(stream)
        logger.error(
            "handler failed on %s entry %s (delivery %s of max %s); left pending for a retry"
            " after %s ms: %s",
            stream, entry_id, deliveries, self._options.max_deliveries,
            self._options.reclaim_idle_ms, reason, exc_info=exc,
        )  # fmt: skip

    async def _deliver(
        self, stream: str, entry_id: str, fields: dict[bytes, bytes] | None, deliveries: int
    ) -> None:
        """One entry, acked right after its handler returned."""
        await self._deliver_batch(stream, [(entry_id.encode(), fields)], deliveries)

    async def _dead_letter(
        self,
        kind: DeadLetterKind,
        reason: str,
        stream: str,
        entry_id: str,
        fields: dict[bytes, bytes],
        deliveries: int,
    ) -> None:
        letter = DeadLetter(
            kind=kind,
            reason=reason,
            service=self._bus.service,
            stream=stream,
            entry_id=entry_id,
            deliveries=deliveries,
            fields=fields,
        )
        await self._bus.dead_letter(letter, ack_group=self._group)

    def _remember_failure(self, stream: str, entry_id: str, reason: str) -> None:
        self._last_errors[(stream, entry_id)] = reason
        self._last_errors.move_to_end((stream, entry_id))
        while len(self._last_errors) > _LAST_ERRORS_KEPT:
            self._last_errors.popitem(last=False)

    async def _io(self, operation: str, call: Any) -> Any:
        return await call_with_retry(self._bus.retry, operation, self._bus.metrics, call)


def _stream_entries(reply: Any) -> list[tuple[str, list[Entry]]]:
    """XREAD/XREADGROUP reply (RESP2 list or RESP3 dict) -> [(stream, [(id, fields)])]."""
    if not reply:
        return []
    pairs = reply.items() if isinstance(reply, dict) else reply
    return [(_as_text(stream), [(e[0], e[1]) for e in entries]) for stream, entries in pairs]


def _as_text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
