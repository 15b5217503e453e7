"""A TickColumns block is a Sequence of the very rows TickRows builds: indexed, sliced, iterated,
concatenated, reordered and spooled as rows; PendingBlocks is due like a BatchWriter's buffer."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.producer.tick_columns import FIELD_NAMES, PendingBlocks, TickColumns
from services.producer.tick_rows import COLUMNS, TickRows
from shared.clock import IST, ManualClock
from shared.messages import DepthLevel, Tick
from shared.store import BatchPolicy, BatchWriter, Spool, spool_for
from shared.store.flush_policy import FlushReason
from shared.store.spool import SpooledBatch, decode_batch, encode_batch

TS = datetime(2024, 8, 20, 9, 15, 1, 250_000, tzinfo=IST)
LEVELS = tuple(DepthLevel(100.0 + i * 0.05, 25 * (i + 1), i + 1) for i in range(5))


def tick(n: int, depth: bool) -> Tick:
    return Tick(
        instrument_token=8970242 + n, symbol=f"NFO:X{n}", last_price=165.5 + n, exchange_ts=TS,
        received_ns=n, volume=1200 + n, last_quantity=25, average_price=160.1, buy_quantity=5000,
        sell_quantity=6000, open=150.0, high=170.0, low=149.0, close=138.3, oi=98_765,
        last_trade_ts=TS - timedelta(seconds=n) if depth else None,
        bids=LEVELS if depth else (), asks=LEVELS[::-1] if depth else (),
    )  # fmt: skip


ROWS = [TickRows().row(tick(n, depth=n % 3 != 0)) for n in range(7)]


def test_a_block_from_rows_gives_the_same_rows_by_iteration_index_and_slice() -> None:
    block = TickColumns.from_rows(ROWS)
    assert len(block) == 7
    assert block.rows() == ROWS
    assert list(block) == ROWS
    assert [block[i] for i in range(7)] == ROWS
    assert block[2:5] == ROWS[2:5]


def test_concat_and_take_keep_and_reorder_rows() -> None:
    first, second = TickColumns.from_rows(ROWS[:3]), TickColumns.from_rows(ROWS[3:])
    joined = TickColumns.concat([first, second])
    assert joined.rows() == ROWS
    assert joined.take(np.array([6, 0, 3])).rows() == [ROWS[6], ROWS[0], ROWS[3]]
    assert TickColumns.concat([]).rows() == []
    assert TickColumns.concat([first]) is first


def with_value(row: tuple[Any, ...], column: str, value: Any) -> tuple[Any, ...]:
    values = list(row)
    values[COLUMNS.index(column)] = value
    return tuple(values)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (with_value(ROWS[1], "bid_prices", [1.0, 2.0]), "depth of 5 or 0 levels"),
        (with_value(ROWS[0], "ask_orders", [1, 2, 3, 4, 5]), "depth of 5 or 0 levels"),
        (with_value(ROWS[1], "last_trade_ts", 0), "epoch"),
    ],
    ids=["two levels", "asks without bids", "last trade at the epoch"],
)
def test_rows_a_block_cannot_hold_are_refused(row: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TickColumns.from_rows([row])


def test_columns_of_different_lengths_are_refused() -> None:
    block = TickColumns.from_rows(ROWS)
    arrays = [getattr(block, name) for name in FIELD_NAMES]
    arrays[2] = arrays[2][:3]
    with pytest.raises(ValueError, match="last_price"):
        TickColumns(*arrays)


def test_a_spooled_block_is_stored_as_its_rows_byte_for_byte_and_read_back() -> None:
    block = TickColumns.from_rows(ROWS)
    data = encode_batch(SpooledBatch("0" * 32, "ticks", COLUMNS, block))
    assert data == encode_batch(SpooledBatch("0" * 32, "ticks", COLUMNS, ROWS))
    assert decode_batch(data).rows == ROWS


class Refusing:
    def insert(self, table: str, columns: Any, rows: Any, token: str) -> None:
        raise ConnectionRefusedError("ClickHouse is down")


def test_a_block_written_while_clickhouse_is_down_is_spooled_row_by_row(tmp_path: Path) -> None:
    writer = BatchWriter(
        "ticks", COLUMNS, inserter=Refusing(), spool=spool_for(tmp_path, "ticks"),
        clock=ManualClock(TS), policy=BatchPolicy(insert_attempts=1, retry_initial_s=0),
    )  # fmt: skip
    assert writer.write_batch(TickColumns.from_rows(ROWS)) == 7
    (path,) = Spool(tmp_path / "ticks").files()
    assert decode_batch(path.read_bytes()).rows == ROWS


def test_pending_blocks_are_due_by_rows_or_age_and_taken_as_one_block() -> None:
    pending = PendingBlocks(max_rows=5, max_age_s=1.0)
    assert pending.due(TS) is None
    pending.add(TickColumns.from_rows(ROWS[:2]), TS)
    pending.add(TickColumns.from_rows([]), TS)  # nothing: changes nothing
    assert pending.due(TS + timedelta(seconds=0.5)) is None
    assert pending.due(TS + timedelta(seconds=1)) is FlushReason.AGED
    pending.add(TickColumns.from_rows(ROWS[2:5]), TS + timedelta(seconds=0.5))
    assert pending.due(TS) is FlushReason.FULL
    assert pending.take().rows() == ROWS[:5]
    assert (pending.rows, pending.due(TS + timedelta(hours=1)), len(pending.take())) == (0, None, 0)
