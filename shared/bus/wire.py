"""The wire layout of a stream entry. Only the bus knows it; services see message models.

An entry is two fields: `m`, the model name (for humans reading the stream with redis-cli and as a
check), and `d`, the msgpack payload from `shared.messages.encode`. The model is chosen by the base
stream name: a shard of a partitioned stream ("ta:ticks:3") carries the model of its base ("ta:ticks").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

from shared.messages import STREAM_MODELS, Message, MessageError, decode, encode

MODEL_FIELD = b"m"
DATA_FIELD = b"d"


def base_stream(stream: str) -> str:
    """The stream whose model an entry of `stream` carries ("ta:ticks:3" -> "ta:ticks")."""
    if stream in STREAM_MODELS:
        return stream
    head, sep, tail = stream.rpartition(":")
    if sep and tail.isdigit() and head in STREAM_MODELS:
        return head
    return stream


def model_for(stream: str) -> type[Message]:
    """The message model of a stream, or MessageError for a stream that carries none."""
    model = STREAM_MODELS.get(base_stream(stream))
    if model is None:
        raise MessageError(f"no message model for stream {stream!r}")
    return model


def entry_fields(stream: str, message: Message) -> dict[bytes, bytes]:
    """The fields of the stream entry that carries `message`; a message of the wrong model for the
    stream is refused before anything is written (MessageError)."""
    model = model_for(stream)
    if type(message) is not model:
        raise MessageError(
            f"stream {stream!r} carries {model.__name__}, not {type(message).__name__}"
        )
    return {MODEL_FIELD: model.__name__.encode(), DATA_FIELD: encode(message)}


class BatchEntries(NamedTuple):
    """The entries of many messages on one stream, split into what they share and what not:
    entry i is `{**shared, payload_field: payloads[i]}`."""

    shared: dict[bytes, bytes]
    payload_field: bytes
    payloads: list[bytes]


def batch_entry_fields(stream: str, messages: Sequence[Message]) -> BatchEntries:
    """The fields of the entries that carry `messages`, equal to `entry_fields` message by
    message, for a caller that appends many entries in one call (the Producer's scripted
    append); checks each message's model like `entry_fields` (MessageError)."""
    model = model_for(stream)
    for message in messages:
        if type(message) is not model:
            raise MessageError(
                f"stream {stream!r} carries {model.__name__}, not {type(message).__name__}"
            )
    return BatchEntries(
        {MODEL_FIELD: model.__name__.encode()}, DATA_FIELD, [encode(m) for m in messages]
    )


def decode_entry(stream: str, fields: Mapping[bytes, bytes] | None) -> Message:
    """The message in a stream entry, or MessageError saying why there is none."""
    model = model_for(stream)
    if not fields:
        raise MessageError(f"empty entry on {stream!r}")
    name = fields.get(MODEL_FIELD)
    payload = fields.get(DATA_FIELD)
    if name is None or payload is None:
        found = sorted(k.decode(errors="replace") for k in fields)
        raise MessageError(f"entry on {stream!r} lacks the m/d fields (has {found})")
    if name != model.__name__.encode():
        raise MessageError(
            f"entry on {stream!r} carries model {name.decode(errors='replace')!r},"
            f" expected {model.__name__!r}"
        )
    return decode(model, payload)


def flat_entry_decoder(stream: str) -> Callable[[Sequence[bytes] | None], Message]:
    """`decode_entry` for the entries of one stream as a raw XREAD reply carries them (a flat
    [field, value, ...] list, not a dict): the model is looked up once, an entry of exactly the
    bus's layout is decoded without building its dict, and any other entry goes through
    `decode_entry` (the same MessageError reasons)."""
    try:
        model = model_for(stream)
    except MessageError:
        return lambda flat: decode_entry(stream, flat_fields(flat))
    name = model.__name__.encode()

    def decode_flat(flat: Sequence[bytes] | None) -> Message:
        if (
            flat is not None
            and len(flat) == 4
            and flat[0] == MODEL_FIELD
            and flat[1] == name
            and flat[2] == DATA_FIELD
        ):
            return decode(model, flat[3])
        return decode_entry(stream, flat_fields(flat))

    return decode_flat


def flat_fields(flat: Sequence[bytes] | None) -> dict[bytes, bytes]:
    """A raw reply's flat [field, value, ...] list as the entry's fields."""
    if not flat:
        return {}
    it = iter(flat)
    return dict(zip(it, it, strict=False))
