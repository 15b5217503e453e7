"""Broadcast reading (XREAD, no group): every replica sees every message (Control, SessionEvent).

There is no ack and no redelivery. Positions start at the stream's current last entry (so nothing
published after `listen` starts is missed, even on an empty stream) or at stored ids (`after`).
A malformed entry or one the handler rejects (RejectedInput/MessageError) is dead-lettered with
its reason and skipped; any other handler error propagates: the service should stop, and on
restart rebuild its state from Redis (e.g. HALT_KEY) rather than trust a half-applied message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.bus.dead_letter import DeadLetter, DeadLetterKind
from shared.bus.io_retry import call_with_retry
from shared.bus.policy import Disposition, disposition_of, failure_reason
from shared.bus.wire import decode_entry
from shared.messages import MessageError

if TYPE_CHECKING:
    from shared.bus.stream_bus import Handler, StreamBus

logger = logging.getLogger(__name__)


async def listen(
    bus: StreamBus,
    streams: Sequence[str],
    handler: Handler,
    stop: asyncio.Event,
    *,
    after: Mapping[str, str] | None = None,
    count: int = 100,
    block_ms: int = 1000,
) -> dict[str, str]:
    """Call `handler` for every new entry of `streams` until `stop`; returns the last ids seen."""
    if not streams:
        raise ValueError("listen needs at least one stream")
    positions: dict[str, str] = {}
    for stream in streams:
        stored = (after or {}).get(stream)
        positions[stream] = stored if stored and stored != "$" else await last_id(bus, stream)
    logger.info("listening to %s from %s", list(streams), positions)
    while not stop.is_set():
        reply = await call_with_retry(
            bus.retry,
            "xread",
            bus.metrics,
            lambda: bus.redis.xread(dict(positions), count=count, block=block_ms),
        )
        pairs = reply.items() if isinstance(reply, dict) else (reply or [])
        for raw_stream, entries in pairs:
            stream = _text(raw_stream)
            for raw_id, fields in entries:
                entry_id = _text(raw_id)
                positions[stream] = entry_id
                await _deliver(bus, handler, stream, entry_id, fields)
        await asyncio.sleep(0)  # yield even when the client answered without blocking
    return positions


async def _deliver(
    bus: StreamBus, handler: Handler, stream: str, entry_id: str, fields: dict[bytes, bytes]
) -> None:
    kind: DeadLetterKind | None = None
    try:
        message = decode_entry(stream, fields)
    except MessageError as exc:
        kind, reason = DeadLetterKind.MALFORMED, failure_reason(exc)
    else:
        try:
            await handler(stream, entry_id, message)
            bus.metrics.handled(stream)
            return
        except Exception as exc:
            if disposition_of(exc) is not Disposition.DEAD_LETTER:
                raise
            kind, reason = DeadLetterKind.REJECTED, failure_reason(exc)
    letter = DeadLetter(
        kind=kind,
        reason=reason,
        service=bus.service,
        stream=stream,
        entry_id=entry_id,
        deliveries=1,
        fields=fields or {},
    )
    await bus.dead_letter(letter)


async def last_id(bus: StreamBus, stream: str) -> str:
    """The id of the stream's newest entry, "0-0" for an empty or missing stream."""
    newest: Any = await call_with_retry(
        bus.retry, "xrevrange", bus.metrics, lambda: bus.redis.xrevrange(stream, count=1)
    )
    return _text(newest[0][0]) if newest else "0-0"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
