"""StreamBus: typed messages over Redis Streams (an IO adapter; the decisions live in policy.py).

Publishing appends entries with an approximate MAXLEN, pipelined in batches. Consuming is in
group_consumer.py (consumer groups, at-least-once) and broadcast.py (every replica sees every
message). Only this package knows the wire layout (wire.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from shared import constants as c
from shared.bus.broadcast import last_id, listen, listen_batches
from shared.bus.dead_letter import DeadLetter, dead_letter_fields
from shared.bus.group_consumer import BatchHandler, GroupConsumer
from shared.bus.io_retry import RetryPolicy, call_with_retry
from shared.bus.metrics import NO_BUS_METRICS, BusMetrics
from shared.bus.policy import ConsumeOptions
from shared.bus.wire import entry_fields
from shared.messages import Message, MessageError

logger = logging.getLogger(__name__)

Handler = Callable[[str, str, Message], Awaitable[None]]
"""An async handler of one delivery: (stream, entry_id, message)."""

DeadLetterSink = Callable[[DeadLetter], None]
"""Called (synchronously, must not block) after a dead letter was written, e.g. to queue a row for
the ClickHouse `dead_letters` table."""


def instrument_key(message: Any) -> int:
    """The default partition key: the message's instrument token."""
    try:
        return int(message.instrument_token)
    except AttributeError:
        name = type(message).__name__
        raise MessageError(f"{name} has no instrument_token to partition on") from None


class StreamBus:
    """Publish and consume typed messages on Redis Streams.

    `redis` must be a `redis.asyncio.Redis` created with decode_responses=False (entries are bytes).
    `service` names this service in dead letters. `maxlen` bounds every stream (approximately: Redis
    trims whole macro-nodes, so a stream may hold somewhat more). Redis calls are retried on
    temporary errors per `retry`; a retried publish may append an entry twice (at-least-once), so
    consumers must be idempotent (the ClickHouse tables are keyed for it).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        service: str,
        maxlen: int,
        publish_batch: int = 500,
        dead_letter_maxlen: int | None = None,
        retry: RetryPolicy | None = None,
        metrics: BusMetrics = NO_BUS_METRICS,
        on_dead_letter: DeadLetterSink | None = None,
    ) -> None:
        if redis.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("StreamBus needs a Redis client with decode_responses=False")
        if maxlen < 1 or publish_batch < 1:
            raise ValueError(f"maxlen and publish_batch must be >= 1 ({maxlen}, {publish_batch})")
        # redis-py types every command as `T | Awaitable[T]` (sync and async share stubs), which
        # mypy cannot narrow; the async client always returns awaitables.
        self.redis: Any = redis
        self.service = service
        self.maxlen = maxlen
        self.publish_batch = publish_batch
        self.dead_letter_maxlen = dead_letter_maxlen or maxlen
        self.retry = retry or RetryPolicy()
        self.metrics = metrics
        self._on_dead_letter = on_dead_letter

    # -- publishing -----------------------------------------------------------------------------

    async def publish(self, stream: str, message: Message) -> str:
        """Append one message; returns its entry id."""
        fields = entry_fields(stream, message)
        entry_id = await call_with_retry(
            self.retry,
            "xadd",
            self.metrics,
            lambda: self.redis.xadd(stream, fields, maxlen=self.maxlen, approximate=True),
        )
        self.metrics.published(stream, 1)
        return _text(entry_id)

    async def publish_many(self, stream: str, messages: Sequence[Message]) -> list[str]:
        """Append messages in order, `publish_batch` per pipelined round trip; returns entry ids."""
        return await self._append([(stream, entry_fields(stream, m)) for m in messages])

    async def publish_partitioned[M: Message](
        self,
        stream: str,
        messages: Sequence[M],
        partitions: int,
        key: Callable[[M], str | int] = instrument_key,
    ) -> list[str]:
        """Append each message to the shard `partitioned(stream, partition_of(key(m), partitions))`.

        All messages of one key land in one shard in input order, so per-instrument order holds
        when several replicas each read their own shards. Returns entry ids in input order."""
        items = []
        for message in messages:
            shard = c.partitioned(stream, c.partition_of(key(message), partitions))
            items.append((shard, entry_fields(shard, message)))
        return await self._append(items)

    async def _append(self, items: Sequence[tuple[str, dict[bytes, bytes]]]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(items), self.publish_batch):
            chunk = items[start : start + self.publish_batch]

            async def send(chunk: Sequence[tuple[str, dict[bytes, bytes]]] = chunk) -> list[Any]:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for stream, fields in chunk:
                        pipe.xadd(stream, fields, maxlen=self.maxlen, approximate=True)
                    result: list[Any] = await pipe.execute()
                    return result

            ids.extend(
                _text(i) for i in await call_with_retry(self.retry, "xadd", self.metrics, send)
            )
            counts: dict[str, int] = {}
            for stream, _ in chunk:
                counts[stream] = counts.get(stream, 0) + 1
            for stream, n in counts.items():
                self.metrics.published(stream, n)
        return ids

    # -- groups and dead letters ----------------------------------------------------------------

    async def ensure_group(self, stream: str, group: str, start: str = "0") -> bool:
        """Create the consumer group (and the stream) unless it exists; True when created."""
        try:
            await call_with_retry(
                self.retry,
                "xgroup_create",
                self.metrics,
                lambda: self.redis.xgroup_create(stream, group, id=start, mkstream=True),
            )
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        logger.info("created consumer group %s on %s starting at %s", group, stream, start)
        return True

    async def dead_letter(self, letter: DeadLetter, *, ack_group: str | None = None) -> str:
        """Write `letter` to the dead-letter stream; with `ack_group`, ack the original entry in the
        same MULTI transaction, so an entry is never acked without its dead letter."""
        fields = dead_letter_fields(letter)

        async def send() -> list[Any]:
            async with self.redis.pipeline(transaction=ack_group is not None) as pipe:
                pipe.xadd(c.DEAD_LETTERS, fields, maxlen=self.dead_letter_maxlen, approximate=True)
                if ack_group is not None:
                    pipe.xack(letter.stream, ack_group, letter.entry_id)
                result: list[Any] = await pipe.execute()
                return result

        result = await call_with_retry(self.retry, "dead_letter", self.metrics, send)
        self.metrics.dead_lettered(letter.stream, letter.kind)
        logger.warning(
            "dead-lettered %s entry %s of %s (delivery %s): %s",
            letter.kind.value,
            letter.entry_id,
            letter.stream,
            letter.deliveries,
            letter.reason,
        )
        if self._on_dead_letter is not None:
            try:
                self._on_dead_letter(letter)
            except Exception:  # a failing sink must not stop the loop; the stream has the letter
                logger.exception(
                    "dead-letter sink failed for %s %s", letter.stream, letter.entry_id
                )
        return _text(result[0])

    # -- consuming ------------------------------------------------------------------------------

    async def consume(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        handler: Handler,
        stop: asyncio.Event,
        options: ConsumeOptions | None = None,
    ) -> None:
        """Deliver every entry of `streams` to `handler` as `consumer` of `group` until `stop` is
        set; see group_consumer.GroupConsumer for the guarantees."""
        runner = GroupConsumer(self, streams, group, consumer, handler, options or ConsumeOptions())
        await runner.run(stop)

    async def consume_batches(
        self,
        streams: Sequence[str],
        group: str,
        consumer: str,
        handler: BatchHandler,
        stop: asyncio.Event,
        options: ConsumeOptions | None = None,
    ) -> None:
        """`consume` with a handler of the new entries of each read together (one outcome per
        entry); redelivered entries come one at a time."""
        runner = GroupConsumer(
            self, streams, group, consumer, None, options or ConsumeOptions(), batch_handler=handler
        )
        await runner.run(stop)

    async def listen(
        self,
        streams: Sequence[str],
        handler: Handler,
        stop: asyncio.Event,
        *,
        after: Mapping[str, str] | None = None,
        count: int = 100,
        block_ms: int = 1000,
    ) -> dict[str, str]:
        """Broadcast read (no group): every replica sees every message, from `after` (a stored
        position per stream) or from the newest entry at start. Returns the last ids seen.
        See broadcast.py for the error rules."""
        return await listen(
            self, streams, handler, stop, after=after, count=count, block_ms=block_ms
        )

    async def listen_batches(
        self,
        streams: Sequence[str],
        handler: BatchHandler,
        stop: asyncio.Event,
        *,
        after: Mapping[str, str] | None = None,
        count: int = 500,
        block_ms: int = 1000,
    ) -> dict[str, str]:
        """`listen` with a handler of the entries of each read of each stream together (one
        outcome per entry, as `consume_batches`), for a firehose such as the ticks: one round
        trip, one handler call and one metrics update per read instead of per entry."""
        return await listen_batches(
            self, streams, handler, stop, after=after, count=count, block_ms=block_ms
        )

    async def positions(self, streams: Sequence[str]) -> dict[str, str]:
        """The id of each stream's newest entry ("0-0" when empty): a `listen(after=...)` start
        that misses nothing published from now on."""
        return {stream: await last_id(self, stream) for stream in streams}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
