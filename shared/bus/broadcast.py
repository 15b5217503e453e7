"""Broadcast reading (XREAD, no group): every replica sees every message (Control, SessionEvent).

There is no ack and no redelivery. Positions start at the stream's current last entry (so nothing
published after `listen` starts is missed, even on an empty stream) or at stored ids (`after`).
A malformed entry or one the handler rejects (RejectedInput/MessageError) is dead-lettered with
its reason and skipped; any other handler error propagates: the service should stop, and on
restart rebuild its state from Redis (e.g. HALT_KEY) rather than trust a half-applied message.

`listen_batches` is the same read for a firehose (the Gatekeeper reads every tick): the decoded
entries of one read of one stream go to a batch handler together (one outcome per entry, as in
`consume_batches`), over a connection held for the reads, with the reply left unparsed by
redis-py (entries decoded straight from the raw field list) and the handled entries counted once
per stream and read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from shared.bus.dead_letter import DeadLetter, DeadLetterKind
from shared.bus.io_retry import call_with_retry
from shared.bus.policy import Disposition, disposition_of, failure_reason
from shared.bus.wire import decode_entry, flat_entry_decoder, flat_fields
from shared.messages import Message, MessageError

if TYPE_CHECKING:
    from shared.bus.group_consumer import BatchHandler
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
    positions = await _start_positions(bus, streams, after)
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


async def listen_batches(
    bus: StreamBus,
    streams: Sequence[str],
    handler: BatchHandler,
    stop: asyncio.Event,
    *,
    after: Mapping[str, str] | None = None,
    count: int = 500,
    block_ms: int = 1000,
) -> dict[str, str]:
    """`listen` with a handler of the decoded entries of each read of each stream together
    (in order; one outcome per entry: None handled, RejectedInput/MessageError dead-lettered,
    any other exception propagates, as does an exception the handler raises). Other tasks get a
    loop turn before each stream's entries are decoded. Returns the last ids seen."""
    if not streams:
        raise ValueError("listen_batches needs at least one stream")
    positions = await _start_positions(bus, streams, after)
    logger.info("listening to %s in batches of up to %s from %s", list(streams), count, positions)
    # A connection held for the reads: one taken from the pool for each read is first checked
    # with a zero-timeout read, one more turn of the event loop before every read. Its replies
    # are left raw: redis-py would build a dict per entry that is thrown away at once.
    reader: Any = bus.redis.client()
    reader.set_response_callback("XREAD", _raw_reply)
    decoders: dict[str, Callable[[Sequence[bytes] | None], Message]] = {}
    try:
        while not stop.is_set():
            reply = await call_with_retry(
                bus.retry,
                "xread",
                bus.metrics,
                lambda: reader.xread(positions, count=count, block=block_ms),
            )
            for raw_stream, entries in _stream_pairs(reply):
                if not entries:
                    continue
                stream = _text(raw_stream)
                positions[stream] = _text(entries[-1][0])
                decode = decoders.get(stream)
                if decode is None:
                    decode = decoders[stream] = flat_entry_decoder(stream)
                # A loop turn first: reading the reply, decoding a stream's entries and the
                # handler's work are separate steps, and whatever arrived meanwhile goes first.
                await asyncio.sleep(0)
                await _deliver_read(bus, handler, stream, entries, decode)
            await asyncio.sleep(0)  # yield even when the client answered without blocking
    finally:
        await reader.aclose()  # the held connection back to the pool
    return dict(positions)


async def _deliver_read(
    bus: StreamBus,
    handler: BatchHandler,
    stream: str,
    entries: Sequence[Any],
    decode: Callable[[Sequence[bytes] | None], Message],
) -> None:
    """One read's entries of one stream: malformed ones dead-lettered, the rest to `handler`."""
    ready: list[tuple[str, Message]] = []
    for raw_id, flat in entries:
        entry_id = raw_id.decode() if type(raw_id) is bytes else raw_id
        try:
            ready.append((entry_id, decode(flat)))
        except MessageError as exc:
            await _dead_letter(bus, DeadLetterKind.MALFORMED, failure_reason(exc), stream,
                               entry_id, flat_fields(flat))  # fmt: skip
    if not ready:
        return
    outcomes = await handler(stream, ready)
    if len(outcomes) != len(ready):
        raise RuntimeError(f"batch handler gave {len(outcomes)} outcomes for {len(ready)} entries")
    handled = 0
    unexpected: BaseException | None = None
    for i, outcome in enumerate(outcomes):
        if outcome is None:
            handled += 1
        elif disposition_of(outcome) is Disposition.DEAD_LETTER:
            entry_id = ready[i][0]
            flat = next(f for raw_id, f in entries if _text(raw_id) == entry_id)
            await _dead_letter(bus, DeadLetterKind.REJECTED, failure_reason(outcome), stream,
                               entry_id, flat_fields(flat))  # fmt: skip
        elif unexpected is None:
            unexpected = outcome
    if handled:
        bus.metrics.handled_many(stream, handled)
    if unexpected is not None:
        raise unexpected


async def _dead_letter(
    bus: StreamBus,
    kind: DeadLetterKind,
    reason: str,
    stream: str,
    entry_id: str,
    fields: dict[bytes, bytes],
) -> None:
    letter = DeadLetter(
        kind=kind,
        reason=reason,
        service=bus.service,
        stream=stream,
        entry_id=entry_id,
        deliveries=1,
        fields=fields,
    )
    await bus.dead_letter(letter)


async def _deliver(
    bus: StreamBus, handler: Handler, stream: str, entry_id: str, fields: dict[bytes, bytes]
) -> None:
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
    await _dead_letter(bus, kind, reason, stream, entry_id, fields or {})


async def _start_positions(
    bus: StreamBus, streams: Sequence[str], after: Mapping[str, str] | None
) -> dict[str, str]:
    positions: dict[str, str] = {}
    for stream in streams:
        stored = (after or {}).get(stream)
        positions[stream] = stored if stored and stored != "$" else await last_id(bus, stream)
    return positions


async def last_id(bus: StreamBus, stream: str) -> str:
    """The id of the stream's newest entry, "0-0" for an empty or missing stream."""
    newest: Any = await call_with_retry(
        bus.retry, "xrevrange", bus.metrics, lambda: bus.redis.xrevrange(stream, count=1)
    )
    return _text(newest[0][0]) if newest else "0-0"


def _raw_reply(response: Any, **options: Any) -> Any:
    """XREAD's reply as the server sent it (RESP2 list or RESP3 map of raw entries)."""
    return response


def _stream_pairs(reply: Any) -> Any:
    if not reply:
        return ()
    return reply.items() if isinstance(reply, dict) else reply


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
