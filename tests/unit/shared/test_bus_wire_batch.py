"""batch_entry_fields splits many entries into their shared fields and payloads, equal to
entry_fields message by message, with the same model check."""

from __future__ import annotations

from datetime import datetime

import pytest

from shared import constants as c
from shared.bus.wire import batch_entry_fields, entry_fields
from shared.clock import IST
from shared.messages import Candle, DepthLevel, Message, MessageError, Tick

TS = datetime(2024, 8, 20, 9, 15, tzinfo=IST)
TICKS = [
    Tick(instrument_token=256265 + n, symbol="NSE:NIFTY 50", last_price=24_500.0 + n,
         exchange_ts=TS, received_ns=n, bids=(DepthLevel(1.0, 2, 3),) * 5)
    for n in range(5)
]  # fmt: skip
CANDLE = Candle(instrument_token=1, symbol="NSE:X", timeframe="minute", start=TS, end=TS,
                open=1.0, high=2.0, low=0.5, close=1.5, volume=10)  # fmt: skip


@pytest.mark.parametrize(
    ("stream", "messages"),
    [
        (f"{c.TICKS}:3", TICKS),
        (c.TICKS, TICKS[:1]),
        (c.CANDLES, [CANDLE, CANDLE]),
        (c.TICKS, []),
    ],
    ids=["shard of ticks", "one tick", "candles", "none"],
)
def test_batch_entries_equal_entry_fields_message_by_message(
    stream: str, messages: list[Message]
) -> None:
    entries = batch_entry_fields(stream, messages)
    assert len(entries.payloads) == len(messages)
    for message, payload in zip(messages, entries.payloads, strict=True):
        assert {**entries.shared, entries.payload_field: payload} == entry_fields(stream, message)


def test_a_message_of_another_model_is_refused_before_anything_is_encoded() -> None:
    with pytest.raises(MessageError, match="carries Tick, not Candle"):
        batch_entry_fields(c.TICKS, [*TICKS, CANDLE])
