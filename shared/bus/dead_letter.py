"""Dead letters: an entry the bus gave up on, kept with its ORIGINAL fields and the reason.

A dead-letter entry on `shared.constants.DEAD_LETTERS` holds the original entry's fields unchanged
plus metadata fields under the reserved `dl:` prefix. `dead_letter_fields` and `parse_dead_letter`
are inverse pure functions; `dead_letter_row` maps one to a row of the ClickHouse `dead_letters`
table (the raw fields kept as base64 of a msgpack list of [name, value] pairs).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import msgspec

from shared.bus.wire import MODEL_FIELD

META_PREFIX = b"dl:"
_REASON = META_PREFIX + b"reason"
_KIND = META_PREFIX + b"kind"
_SERVICE = META_PREFIX + b"service"
_STREAM = META_PREFIX + b"stream"
_ENTRY_ID = META_PREFIX + b"entry_id"
_DELIVERIES = META_PREFIX + b"deliveries"


class DeadLetterKind(StrEnum):
    """Why an entry was given up on (also the metrics label)."""

    MALFORMED = "malformed"  # the payload could not be decoded into the stream's model
    REJECTED = "rejected"  # the handler raised RejectedInput (or MessageError)
    POISON = "poison"  # the handler failed on it max_deliveries times


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One entry given up on, where it came from, and why."""

    kind: DeadLetterKind
    reason: str
    service: str
    stream: str
    entry_id: str
    deliveries: int
    fields: Mapping[bytes, bytes]  # the original entry, unchanged

    @property
    def model(self) -> str:
        """The model name the entry claimed to carry ("" when it had none)."""
        return self.fields.get(MODEL_FIELD, b"").decode(errors="replace")


def dead_letter_fields(letter: DeadLetter) -> dict[bytes, bytes]:
    """The fields of the dead-letter stream entry: original fields first, then `dl:` metadata.
    An original field that itself starts with `dl:` is overwritten by the metadata (reserved)."""
    fields = dict(letter.fields)
    fields[_KIND] = letter.kind.value.encode()
    fields[_REASON] = letter.reason.encode()
    fields[_SERVICE] = letter.service.encode()
    fields[_STREAM] = letter.stream.encode()
    fields[_ENTRY_ID] = letter.entry_id.encode()
    fields[_DELIVERIES] = str(letter.deliveries).encode()
    return fields


def parse_dead_letter(fields: Mapping[bytes, bytes]) -> DeadLetter:
    """A dead-letter stream entry back into a DeadLetter (ValueError if it is not one)."""
    try:
        return DeadLetter(
            kind=DeadLetterKind(fields[_KIND].decode()),
            reason=fields[_REASON].decode(errors="replace"),
            service=fields[_SERVICE].decode(),
            stream=fields[_STREAM].decode(),
            entry_id=fields[_ENTRY_ID].decode(),
            deliveries=int(fields[_DELIVERIES]),
            fields={k: v for k, v in fields.items() if not k.startswith(META_PREFIX)},
        )
    except (KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a dead-letter entry: {exc!r}") from None


def encode_raw_fields(fields: Mapping[bytes, bytes]) -> str:
    """The original fields as text for a String column: base64(msgpack([[name, value], ...]))."""
    pairs = [[k, v] for k, v in fields.items()]
    return base64.b64encode(msgspec.msgpack.encode(pairs)).decode()


def decode_raw_fields(payload: str) -> dict[bytes, bytes]:
    """Inverse of `encode_raw_fields`."""
    pairs = msgspec.msgpack.decode(base64.b64decode(payload), type=list[tuple[bytes, bytes]])
    return dict(pairs)


def dead_letter_row(letter: DeadLetter, ts: datetime) -> dict[str, Any]:
    """A row of the ClickHouse `dead_letters` table."""
    return {
        "ts": ts,
        "service": letter.service,
        "stream": letter.stream,
        "entry_id": letter.entry_id,
        "kind": letter.kind.value,
        "reason": letter.reason,
        "deliveries": letter.deliveries,
        "model": letter.model,
        "payload": encode_raw_fields(letter.fields),
    }
