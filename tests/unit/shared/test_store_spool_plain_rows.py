"""Rows that declare themselves plain (spool.PlainRows) are stored byte for byte like the same
rows walked value by value."""

from __future__ import annotations

from typing import Any

import pytest

from shared.store.spool import PlainRows, SpooledBatch, decode_batch, encode_batch

ROWS: list[tuple[Any, ...]] = [
    (1, "NSE:X", 1.5, None, [1.0, 2.0], [], True, b"raw"),
    (2, "NSE:Y", -0.25, 7, [3.5], [1, 2], False, b""),
]


class Declared:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return self.rows[index]

    def plain_rows(self) -> list[tuple[Any, ...]]:
        return self.rows


@pytest.mark.parametrize("rows", [ROWS, ROWS[:1], []], ids=["two rows", "one row", "none"])
def test_plain_rows_are_stored_exactly_like_walked_rows(rows: list[tuple[Any, ...]]) -> None:
    declared = Declared(rows)
    assert isinstance(declared, PlainRows)
    columns = tuple(f"c{i}" for i in range(8))
    fast = encode_batch(SpooledBatch("1" * 32, "t", columns, declared))  # type: ignore[arg-type]
    assert fast == encode_batch(SpooledBatch("1" * 32, "t", columns, rows))
    assert decode_batch(fast).rows == rows
