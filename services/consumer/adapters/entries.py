"""Tick stream entries as the Consumer reads them: ids, replies, and a tick's symbol at a glance."""

from __future__ import annotations

from typing import Any

import msgspec

from shared.bus.wire import DATA_FIELD

Entries = list[tuple[str, dict[bytes, bytes] | None]]


def entry_key(entry_id: str) -> tuple[int, int]:
    """An entry id as a sortable (ms, seq)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def stream_entries(reply: Any) -> Entries:
    """The (entry id, fields) of an XREADGROUP reply of one stream."""
    return [(_text(entry_id), fields) for _, batch in _pairs(reply) for entry_id, fields in batch]


def entries_by_stream(reply: Any) -> list[tuple[str, Entries]]:
    """An XREADGROUP reply of several streams: (stream, its entries) each."""
    return [(_text(stream), stream_entries({stream: batch})) for stream, batch in _pairs(reply)]


class _Symbol(msgspec.Struct):
    symbol: str = ""


_symbol_decoder = msgspec.msgpack.Decoder(_Symbol)


def symbol_of(fields: dict[bytes, bytes]) -> str:
    """The symbol of a tick entry, from a decode of that field alone (a fraction of a full
    decode); "" if unreadable (the full decode says why)."""
    try:
        return _symbol_decoder.decode(fields.get(DATA_FIELD, b"")).symbol
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""


def _pairs(reply: Any) -> list[tuple[Any, list[Any]]]:
    if not reply:
        return []
    items = reply.items() if isinstance(reply, dict) else reply
    return [(stream, list(entries)) for stream, entries in items]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
