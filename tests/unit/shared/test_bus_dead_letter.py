from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from shared.bus.dead_letter import (
    DeadLetter,
    DeadLetterKind,
    dead_letter_fields,
    dead_letter_row,
    decode_raw_fields,
    encode_raw_fields,
    parse_dead_letter,
)
from shared.clock import IST

LETTERS = [
    DeadLetter(
        kind=DeadLetterKind.MALFORMED,
        reason="MessageError: malformed Tick: Expected `int`, got `str`",
        service="consumer",
        stream="ta:ticks:3",
        entry_id="1722483900123-0",
        deliveries=1,
        fields={b"m": b"Tick", b"d": b"\x81\xa1v\x01"},
    ),
    DeadLetter(
        kind=DeadLetterKind.POISON,
        reason="poison entry: handler failed 5 of max 5 deliveries; last: KeyError: 'x'",
        service="gatekeeper",
        stream="ta:intents",
        entry_id="1-1",
        deliveries=6,
        fields={b"anything": b"\x00\xff", b"": b""},
    ),
    DeadLetter(
        kind=DeadLetterKind.REJECTED,
        reason="RejectedInput: quantity 0 is not tradable; ünïcode ok",
        service="gatekeeper",
        stream="ta:intents",
        entry_id="2-0",
        deliveries=2,
        fields={},
    ),
]


@pytest.mark.parametrize("letter", LETTERS, ids=lambda x: x.kind.value)
def test_dead_letter_fields_keep_the_original_and_parse_back(letter: DeadLetter) -> None:
    fields = dead_letter_fields(letter)
    for name, value in letter.fields.items():
        assert fields[name] == value
    assert parse_dead_letter(fields) == letter


def test_dead_letter_metadata_overrides_a_reserved_original_field() -> None:
    letter = LETTERS[0]
    spoofed = replace(letter, fields={b"dl:reason": b"spoofed", b"m": b"Tick"})
    assert parse_dead_letter(dead_letter_fields(spoofed)).reason == letter.reason


@pytest.mark.parametrize(
    "fields",
    [{}, {b"m": b"Tick"}, {b"dl:kind": b"nonsense", b"dl:reason": b"r"}],
)
def test_parse_dead_letter_refuses_an_ordinary_entry(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(ValueError, match="not a dead-letter entry"):
        parse_dead_letter(fields)


@pytest.mark.parametrize("letter", LETTERS, ids=lambda x: x.kind.value)
def test_dead_letter_row_keeps_raw_fields_recoverable(letter: DeadLetter) -> None:
    ts = datetime(2024, 8, 1, 10, 0, tzinfo=IST)
    row = dead_letter_row(letter, ts)
    assert row["ts"] == ts
    assert (row["service"], row["stream"], row["entry_id"]) == (
        letter.service,
        letter.stream,
        letter.entry_id,
    )
    assert (row["kind"], row["reason"], row["deliveries"]) == (
        letter.kind.value,
        letter.reason,
        letter.deliveries,
    )
    assert row["model"] == letter.fields.get(b"m", b"").decode()
    assert decode_raw_fields(row["payload"]) == dict(letter.fields)
    assert row["payload"] == encode_raw_fields(letter.fields)
