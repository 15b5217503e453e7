from __future__ import annotations

import os
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from shared.clock import IST
from shared.store.spool import (
    Spool,
    SpooledBatch,
    SpoolError,
    decode_batch,
    encode_batch,
    new_batch_id,
)

VALUES: list[Any] = [
    0,
    -(2**63),
    2**64 - 1,
    1.5,
    float("inf"),
    "text; with ünïcode",
    "",
    None,
    True,
    b"\x00\xff",
    datetime(2024, 8, 1, 9, 15, 0, 123456, tzinfo=IST),
    datetime(2024, 8, 1, 3, 45, tzinfo=UTC),
    datetime(2024, 8, 1, 9, 15),  # naive stays naive
    date(2024, 8, 29),
    Decimal("24500.05"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    [1.0, 2.0],
    [],
    {"reason": "x", "mtm": "-1234.5"},
    [datetime(2024, 1, 1, tzinfo=IST)],
]


def batch(rows: list[tuple[Any, ...]], table: str = "ticks") -> SpooledBatch:
    columns = tuple(f"c{i}" for i in range(len(rows[0]))) if rows else ("c0",)
    return SpooledBatch(new_batch_id(), table, columns, rows)


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_a_value_survives_the_spool_exactly(value: Any) -> None:
    original = batch([(value, 1)])
    restored = decode_batch(encode_batch(original))
    assert restored == original
    [(back, _)] = restored.rows
    assert type(back) is type(value)
    if isinstance(value, datetime):
        assert back.utcoffset() == value.utcoffset()


def test_tuples_inside_values_come_back_as_lists() -> None:
    restored = decode_batch(encode_batch(batch([((1, 2), "x")])))
    assert restored.rows == [([1, 2], "x")]


@pytest.mark.parametrize("data", [b"", b"\xc1", b"\x93\x01\x02\x03", b"\x85\xa6format\x09"])
def test_decode_batch_refuses_what_is_not_a_spool_file(data: bytes) -> None:
    with pytest.raises(SpoolError):
        decode_batch(data)


def test_spool_files_come_back_oldest_first_across_restarts(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    first = batch([(1,)])
    second = batch([(2,), (3,)])
    spool.write(first)
    spool.write(second)
    assert spool.backlog() == (2, 3)
    reopened = Spool(tmp_path)  # a restarted process continues the sequence
    third = batch([(4,)])
    reopened.write(third)
    assert [reopened.read(p) for p in reopened.files()] == [first, second, third]
    reopened.remove(reopened.files()[0])
    assert reopened.backlog() == (2, 3)


def test_spool_removes_a_write_that_crashed_before_its_rename(tmp_path: Path) -> None:
    Spool(tmp_path).write(batch([(1,)]))
    stale = tmp_path / f".000000000002-1-{new_batch_id()}.batch.tmp"
    stale.write_bytes(b"half a batch")
    spool = Spool(tmp_path)
    assert not stale.exists()
    assert spool.backlog() == (1, 1)


def test_spool_leaves_no_temp_file_after_a_write(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.write(batch([(1,)]))
    assert sorted(os.listdir(tmp_path)) == [path.name]


def test_reject_moves_a_batch_aside_with_its_reason(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.write(batch([(1,)]))
    target = spool.reject(path, "ServerException: type mismatch")
    assert spool.files() == []
    assert target.exists()
    assert target.with_suffix(".reason").read_text() == "ServerException: type mismatch"
    assert Spool(tmp_path).files() == []  # never replayed
