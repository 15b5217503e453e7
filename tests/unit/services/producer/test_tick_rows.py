"""The Producer's fast `ticks` rows equal the store's mapping, with times as microseconds."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.producer.tick_rows import TickRows
from shared.clock import IST, ManualClock
from shared.messages import DepthLevel, Tick
from shared.store import MESSAGE_TABLES, BatchWriter, spool_for, tick_row

TS = datetime(2024, 8, 20, 9, 15, 1, 250_000, tzinfo=IST)
LEVELS = tuple(DepthLevel(100.0 + i * 0.05, 25 * (i + 1), i + 1) for i in range(5))


def micros(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


TICKS = [
    Tick(instrument_token=256265, symbol="NSE:NIFTY 50", last_price=24572.65, exchange_ts=TS,
         received_ns=1),
    Tick(instrument_token=8970242, symbol="NFO:NIFTY2482224550CE", last_price=165.5,
         exchange_ts=TS, received_ns=2, volume=1200, last_quantity=25, average_price=160.1,
         buy_quantity=5000, sell_quantity=6000, open=150.0, high=170.0, low=149.0, close=138.3,
         oi=98_765, last_trade_ts=datetime(2024, 8, 20, 9, 15, tzinfo=IST), bids=LEVELS,
         asks=LEVELS[::-1]),
]  # fmt: skip


@pytest.mark.parametrize("tick", TICKS, ids=["index without depth", "option full"])
def test_a_fast_row_equals_the_store_mapping_with_times_in_microseconds(tick: Tick) -> None:
    spec = MESSAGE_TABLES[Tick]
    expected = tick_row(tick)
    row = dict(zip(spec.columns, TickRows().row(tick), strict=True))
    for column in ("exchange_ts", "last_trade_ts"):
        value = expected[column]
        expected[column] = None if value is None else micros(value)
    assert row == expected


def test_equal_datetimes_are_converted_once_and_the_cache_stays_bounded() -> None:
    rows = TickRows(cache_size=2)
    for second in range(5):
        rows.micros(datetime(2024, 8, 20, 9, 15, second, tzinfo=IST))
    assert len(rows._micros) <= 2
    assert rows.micros(TS) == micros(TS)


class Recorder:
    def __init__(self) -> None:
        self.batches: list[Sequence[Any]] = []

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Any], token: str) -> None:
        self.batches.append(rows)


def test_the_writer_takes_prebuilt_value_rows_and_refuses_a_wrong_arity(tmp_path: Path) -> None:
    spec = MESSAGE_TABLES[Tick]
    inserter = Recorder()
    writer = BatchWriter(
        spec.table, spec.columns, inserter=inserter, spool=spool_for(tmp_path, "ticks"),
        clock=ManualClock(TS),
    )  # fmt: skip
    rows = [TickRows().row(t) for t in TICKS]
    writer.add_values(rows)
    with pytest.raises(ValueError, match="values"):
        writer.add_values([(1, 2)])
    assert writer.flush() == 2
    assert inserter.batches == [rows]
