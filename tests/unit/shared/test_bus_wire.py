from __future__ import annotations

from datetime import datetime

import msgspec
import pytest

from shared import constants as c
from shared.bus.wire import DATA_FIELD, MODEL_FIELD, base_stream, decode_entry, entry_fields
from shared.clock import IST
from shared.messages import Candle, Control, DepthLevel, MessageError, Tick, encode

TS = datetime(2024, 8, 1, 9, 15, 0, 250_000, tzinfo=IST)
TICK = Tick(
    instrument_token=256265,
    symbol="NSE:NIFTY 50",
    last_price=24_500.5,
    exchange_ts=TS,
    received_ns=1_722_483_900_300_000_000,
    bids=(DepthLevel(24_500.0, 75, 3),),
)
HALT = Control(command="HALT", reason="manual", source="cli", ts=TS)


@pytest.mark.parametrize(
    ("stream", "base"),
    [
        (c.TICKS, c.TICKS),
        (c.partitioned(c.TICKS, 3), c.TICKS),
        (c.partitioned(c.TICKS, 12), c.TICKS),
        (c.CONTROL, c.CONTROL),
        ("ta:ticks:x", "ta:ticks:x"),  # not a shard: the suffix is not a number
        ("ta:unknown:1", "ta:unknown:1"),
        (c.DEAD_LETTERS, c.DEAD_LETTERS),
    ],
)
def test_base_stream_maps_shards_to_their_base_and_leaves_others(stream: str, base: str) -> None:
    assert base_stream(stream) == base


@pytest.mark.parametrize(
    ("stream", "message"),
    [(c.TICKS, TICK), (c.partitioned(c.TICKS, 5), TICK), (c.CONTROL, HALT)],
)
def test_entry_fields_round_trip_through_decode_entry(stream: str, message: object) -> None:
    fields = entry_fields(stream, message)  # type: ignore[arg-type]
    assert set(fields) == {MODEL_FIELD, DATA_FIELD}
    assert fields[MODEL_FIELD] == type(message).__name__.encode()
    assert decode_entry(stream, fields) == message


@pytest.mark.parametrize(
    ("stream", "message", "error"),
    [
        (c.CANDLES, TICK, "carries Candle, not Tick"),
        (c.DEAD_LETTERS, TICK, "no message model"),
        ("ta:nowhere", HALT, "no message model"),
    ],
)
def test_entry_fields_refuses_a_message_of_the_wrong_model(
    stream: str, message: object, error: str
) -> None:
    with pytest.raises(MessageError, match=error):
        entry_fields(stream, message)  # type: ignore[arg-type]


TICK_FIELDS = {MODEL_FIELD: b"Tick", DATA_FIELD: encode(TICK)}


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (None, "empty entry"),
        ({}, "empty entry"),
        ({b"x": b"1"}, r"lacks the m/d fields \(has \['x'\]\)"),
        ({MODEL_FIELD: b"Tick"}, "lacks the m/d fields"),
        ({MODEL_FIELD: b"Candle", DATA_FIELD: encode(TICK)}, "carries model 'Candle'"),
        ({MODEL_FIELD: b"Tick", DATA_FIELD: b"\xc1garbage"}, "malformed Tick"),
        (
            {MODEL_FIELD: b"Tick", DATA_FIELD: msgspec.msgpack.encode({"v": 9})},
            "unknown Tick version 9",
        ),
        (
            {MODEL_FIELD: b"Tick", DATA_FIELD: msgspec.msgpack.encode({"v": 1, "symbol": 5})},
            "malformed Tick",
        ),
    ],
)
def test_decode_entry_names_what_is_wrong(fields: dict[bytes, bytes] | None, error: str) -> None:
    with pytest.raises(MessageError, match=error):
        decode_entry(c.TICKS, fields)


def test_decode_entry_of_a_candle_shard_stream_uses_the_base_model() -> None:
    candle = Candle(
        instrument_token=1,
        symbol="NSE:INFY",
        timeframe="minute",
        start=TS,
        end=TS,
        open=1.0,
        high=2.0,
        low=0.5,
        close=1.5,
        volume=10,
    )
    assert decode_entry(f"{c.CANDLES}:0", entry_fields(f"{c.CANDLES}:0", candle)) == candle
    assert TICK_FIELDS[MODEL_FIELD] == b"Tick"
