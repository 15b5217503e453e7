"""Tick -> a `ticks` row as a tuple in the table's column order (pure, hot path).

Equivalent to shared.store.tick_row (a test proves it), but built directly as a tuple and with the
two DateTime64(6) columns as integer microseconds since the epoch, which clickhouse-driver writes
as they are (its per-value timezone conversion of datetimes costs more than the rest of the row).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.messages import Tick
from shared.store.rows import TICK_COLUMNS

# The order this module writes; a change of the table's columns must fail loudly here.
COLUMNS = (
    "instrument_token",
    "symbol",
    "last_price",
    "exchange_ts",
    "received_ns",
    "volume",
    "last_quantity",
    "average_price",
    "buy_quantity",
    "sell_quantity",
    "open",
    "high",
    "low",
    "close",
    "oi",
    "last_trade_ts",
    "bid_prices",
    "bid_quantities",
    "bid_orders",
    "ask_prices",
    "ask_quantities",
    "ask_orders",
)
if COLUMNS != TICK_COLUMNS:
    raise ImportError(f"ticks columns changed: {TICK_COLUMNS} (tick_rows writes {COLUMNS})")

MICROS = 1_000_000


class TickRows:
    """Builds rows, caching the microsecond value of each datetime (ticks share a few)."""

    def __init__(self, cache_size: int = 4096) -> None:
        self._micros: dict[datetime, int] = {}
        self._cache_size = cache_size

    def micros(self, when: datetime) -> int:
        """Microseconds since the epoch of an aware datetime."""
        cached = self._micros.get(when)
        if cached is None:
            if len(self._micros) >= self._cache_size:
                self._micros.clear()
            cached = self._micros[when] = int(when.timestamp()) * MICROS + when.microsecond
        return cached

    def row(self, t: Tick) -> tuple[Any, ...]:
        b, a = t.bids, t.asks
        last_trade = t.last_trade_ts
        return (
            t.instrument_token,
            t.symbol,
            t.last_price,
            self.micros(t.exchange_ts),
            t.received_ns,
            t.volume,
            t.last_quantity,
            t.average_price,
            t.buy_quantity,
            t.sell_quantity,
            t.open,
            t.high,
            t.low,
            t.close,
            t.oi,
            None if last_trade is None else self.micros(last_trade),
            [level.price for level in b],
            [level.quantity for level in b],
            [level.orders for level in b],
            [level.price for level in a],
            [level.quantity for level in a],
            [level.orders for level in a],
        )
