"""The Redis Streams bus: typed messages in, typed messages out; only this package knows the wire.

Typical use (in a service's async shell)::

    redis = redis_client(settings.redis_url)              # decode_responses=False
    bus = StreamBus(redis, service="consumer", maxlen=settings.stream_maxlen, metrics=metrics)
    await bus.publish(c.SIGNALS, signal)
    await bus.publish_partitioned(c.TICKS, ticks, partitions=settings.tick_partitions)
    await bus.consume([c.INTENTS], c.GROUP_GATEKEEPER, consumer_name, handle, stop, options)
    await bus.listen([c.CONTROL, c.SESSION_EVENTS], on_broadcast, stop)

Handlers are `async def handle(stream: str, entry_id: str, message: Message) -> None`. Raise
`shared.errors.RejectedInput` for input that can never be processed (it is dead-lettered with your
message as the reason); any other exception leaves the entry pending for a bounded retry.
"""

from __future__ import annotations

import asyncio

from pydantic import SecretStr
from redis.asyncio import Redis

from shared.bus.dead_letter import (
    DeadLetter,
    DeadLetterKind,
    dead_letter_row,
    decode_raw_fields,
    parse_dead_letter,
)
from shared.bus.io_retry import RetryPolicy
from shared.bus.metrics import NO_BUS_METRICS, BusMetrics, NoBusMetrics
from shared.bus.policy import ConsumeOptions
from shared.bus.stream_bus import DeadLetterSink, Handler, StreamBus, instrument_key
from shared.bus.wire import base_stream, decode_entry, entry_fields
from shared.errors import RejectedInput


def redis_client(url: str | SecretStr, **kwargs: object) -> Redis:
    """An asyncio Redis client as the bus needs it (bytes replies). The URL may hold a password,
    so it is accepted as SecretStr and never logged."""
    raw = url.get_secret_value() if isinstance(url, SecretStr) else url
    client: Redis = Redis.from_url(raw, decode_responses=False, **kwargs)  # type: ignore[arg-type]
    return client


async def open_connections(redis: Redis, count: int) -> None:
    """`count` pooled connections opened now (concurrent pings), not on a first decision: a new
    connection's handshake is several round trips."""
    await asyncio.gather(*(redis.ping() for _ in range(count)))


__all__ = [
    "NO_BUS_METRICS",
    "BusMetrics",
    "ConsumeOptions",
    "DeadLetter",
    "DeadLetterKind",
    "DeadLetterSink",
    "Handler",
    "NoBusMetrics",
    "RejectedInput",
    "RetryPolicy",
    "StreamBus",
    "base_stream",
    "dead_letter_row",
    "decode_entry",
    "decode_raw_fields",
    "entry_fields",
    "instrument_key",
    "open_connections",
    "parse_dead_letter",
    "redis_client",
]
