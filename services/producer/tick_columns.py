"""A block of `ticks` rows held as numpy columns (pure; the ClickHouse writer's hot path).

The worker process used to build one Tick and one row tuple per packet (~13 ms per 1,000 ticks
of CPU before the insert even started); a block keeps each column as one array, so a whole batch
is decoded, concatenated and handed to the driver as arrays (frame_columns.py builds them).

A block IS a Sequence of row tuples, equal to TickRows' rows (a test proves it on captured and
simulator packets): the two DateTime64(6) columns are integer microseconds since the epoch, depth
columns are lists of 5 levels (or empty). That is how a block that cannot reach ClickHouse is
spooled (row by row, the spool's format unchanged) and replayed (as plain rows).

Column conventions inside a block: `last_trade_ts` 0 means no last trade (NULL; Kite sends 0
when there was none and the parser maps it to None), `depth_levels` is 0 (ltp, quote and index
packets: empty depth arrays) or DEPTH_LEVELS (full packets); depth arrays are (rows, 5) with
zeros where a row has no depth.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from services.producer.packets import DEPTH_LEVELS
from services.producer.tick_rows import COLUMNS
from shared.store.flush_policy import FlushReason, flush_reason

Row = tuple[Any, ...]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]

DEPTH_COLUMNS = COLUMNS[-6:]


@dataclass(frozen=True, slots=True, eq=False)
class TickColumns(Sequence[Row]):
    """`ticks` rows as columns: one array per table column (same names and order as
    tick_rows.COLUMNS) plus `depth_levels`. Build it with `from_rows`, `concat` or
    frame_columns.FrameColumnParser; every array has the same length."""

    instrument_token: IntArray
    symbol: ObjectArray  # str
    last_price: FloatArray
    exchange_ts: IntArray  # microseconds since the epoch
    received_ns: IntArray
    volume: IntArray
    last_quantity: IntArray
    average_price: FloatArray
    buy_quantity: IntArray
    sell_quantity: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    oi: IntArray
    last_trade_ts: IntArray  # microseconds since the epoch, 0: none
    bid_prices: FloatArray  # (rows, DEPTH_LEVELS)
    bid_quantities: IntArray
    bid_orders: IntArray
    ask_prices: FloatArray
    ask_quantities: IntArray
    ask_orders: IntArray
    depth_levels: IntArray  # 0 or DEPTH_LEVELS per row

    def __post_init__(self) -> None:
        rows = len(self.instrument_token)
        for name in FIELD_NAMES:
            array: np.ndarray[Any, Any] = getattr(self, name)
            shape = (rows, DEPTH_LEVELS) if name in DEPTH_COLUMNS else (rows,)
            if array.shape != shape:
                raise ValueError(f"column {name} has shape {array.shape}, expected {shape}")

    def __len__(self) -> int:
        return len(self.instrument_token)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        if isinstance(index, slice):
            return self.rows()[index]
        return self.take(np.array([index], dtype=np.int64)).rows()[0]

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows())

    def rows(self) -> list[Row]:
        """The rows as TickRows builds them (Python ints, floats, str, None and lists)."""
        levels = self.depth_levels.tolist()

        def depth(array: np.ndarray[Any, Any]) -> list[list[Any]]:
            return [values if n else [] for values, n in zip(array.tolist(), levels, strict=True)]

        last_trade = [None if us == 0 else us for us in self.last_trade_ts.tolist()]
        columns: list[list[Any]] = []
        for name in COLUMNS:
            if name == "last_trade_ts":
                columns.append(last_trade)
            elif name in DEPTH_COLUMNS:
                columns.append(depth(getattr(self, name)))
            else:
                columns.append(getattr(self, name).tolist())
        return list(zip(*columns, strict=True))

    def plain_rows(self) -> list[Row]:
        """The rows (ints, floats, str, None and lists only): shared.store.spool's PlainRows, so
        a spooled block skips the spool's per-value walk for datetimes and decimals."""
        return self.rows()

    def take(self, order: IntArray) -> TickColumns:
        """The rows at these positions, in this order."""
        return TickColumns(*(getattr(self, name)[order] for name in FIELD_NAMES))

    @staticmethod
    def concat(blocks: Sequence[TickColumns]) -> TickColumns:
        """One block with the rows of `blocks`, in order."""
        if len(blocks) == 1:
            return blocks[0]
        if not blocks:
            return TickColumns.from_rows([])
        return TickColumns(
            *(np.concatenate([getattr(b, name) for b in blocks]) for name in FIELD_NAMES)
        )

    @staticmethod
    def from_rows(rows: Sequence[Row]) -> TickColumns:
        """A block from TickRows rows (the slow path: ltp, quote and index packets). Depth
        arrays must be all empty or all DEPTH_LEVELS long (ValueError otherwise); a last trade
        time of exactly the epoch cannot be told from none and is refused."""
        by_column = list(zip(*rows, strict=True)) if rows else [() for _ in COLUMNS]
        values = dict(zip(COLUMNS, by_column, strict=True))
        levels: list[int] = []
        for row in rows:
            lengths = {len(row[COLUMNS.index(name)]) for name in DEPTH_COLUMNS}
            if lengths not in ({0}, {DEPTH_LEVELS}):
                raise ValueError(f"depth of {DEPTH_LEVELS} or 0 levels expected, got {lengths}")
            levels.extend(lengths)
        if any(us == 0 for us in values["last_trade_ts"]):
            raise ValueError("a last trade time at the epoch cannot be stored (0 means none)")
        columns: dict[str, np.ndarray[Any, Any]] = {}
        for name in COLUMNS:
            column = values[name]
            if name == "symbol":
                columns[name] = _object_array(column)
            elif name == "last_trade_ts":
                columns[name] = np.array([0 if us is None else us for us in column], np.int64)
            elif name in DEPTH_COLUMNS:
                dtype = np.float64 if name in FLOAT_COLUMNS else np.int64
                padded = [v if v else [0] * DEPTH_LEVELS for v in column]
                columns[name] = np.array(padded, dtype).reshape(len(rows), DEPTH_LEVELS)
            else:
                dtype = np.float64 if name in FLOAT_COLUMNS else np.int64
                columns[name] = np.array(column, dtype)
        columns["depth_levels"] = np.array(levels, np.int64)
        return TickColumns(**columns)


def _object_array(values: Sequence[Any]) -> ObjectArray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


FIELD_NAMES = tuple(f.name for f in fields(TickColumns))
if FIELD_NAMES[: len(COLUMNS)] != COLUMNS:
    raise ImportError(f"TickColumns fields {FIELD_NAMES} do not follow the ticks columns {COLUMNS}")
FLOAT_COLUMNS = frozenset(
    name for name in COLUMNS if "price" in name or name in ("open", "high", "low", "close")
)


class PendingBlocks:
    """Blocks waiting to become one insert, due like a BatchWriter's buffer (shared.store's
    flush_reason: `max_rows` rows or the oldest waited `max_age_s`). Times are passed in."""

    def __init__(self, max_rows: int, max_age_s: float) -> None:
        self.max_rows = max_rows
        self.max_age_s = max_age_s
        self._blocks: list[TickColumns] = []
        self.rows = 0
        self._oldest_at: datetime | None = None

    def add(self, block: TickColumns, now: datetime) -> None:
        if not len(block):
            return
        if not self._blocks:
            self._oldest_at = now
        self._blocks.append(block)
        self.rows += len(block)

    def due(self, now: datetime) -> FlushReason | None:
        return flush_reason(self.rows, self._oldest_at, now, self.max_rows, self.max_age_s)

    def take(self) -> TickColumns:
        """Everything pending as one block (empty when nothing is); the buffer is emptied."""
        block = TickColumns.concat(self._blocks)
        self._blocks, self.rows, self._oldest_at = [], 0, None
        return block
