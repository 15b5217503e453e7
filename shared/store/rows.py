"""Message -> table row mappings for the tables that store bus messages as they are.

`MESSAGE_TABLES[Model]` gives the table, its insertable columns and the row function, so a
service builds its writer as `BatchWriter(spec.table, spec.columns, ...)` and adds
`spec.row(message)`. Tables that are not one message per row (orders, positions, instruments,
options_data, sessions, historical_data, performance_metrics) get their rows from their owning
service; their columns are in shared/schema.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from shared.messages import (
    Candle,
    Message,
    OrderEvent,
    OrderIntent,
    RiskEvent,
    Signal,
    Tick,
    to_builtins,
)


def model_columns(model: type[Message]) -> tuple[str, ...]:
    """The columns of a table that stores `model` field by field (the version `v` is not stored)."""
    return tuple(f.name for f in msgspec.structs.fields(model) if f.name != "v")


def message_row(message: Message) -> dict[str, Any]:
    """A row with one column per message field (without `v`)."""
    row = to_builtins(message)
    del row["v"]
    return row


DEPTH_COLUMNS = (
    "bid_prices",
    "bid_quantities",
    "bid_orders",
    "ask_prices",
    "ask_quantities",
    "ask_orders",
)
TICK_COLUMNS = (*(c for c in model_columns(Tick) if c not in ("bids", "asks")), *DEPTH_COLUMNS)


def tick_row(tick: Tick) -> dict[str, Any]:
    """A `ticks` row: market depth as parallel arrays (price, quantity, orders per level)."""
    row = message_row(tick)
    del row["bids"], row["asks"]
    row["bid_prices"] = [level.price for level in tick.bids]
    row["bid_quantities"] = [level.quantity for level in tick.bids]
    row["bid_orders"] = [level.orders for level in tick.bids]
    row["ask_prices"] = [level.price for level in tick.asks]
    row["ask_quantities"] = [level.quantity for level in tick.asks]
    row["ask_orders"] = [level.orders for level in tick.asks]
    return row


def risk_event_row(event: RiskEvent) -> dict[str, Any]:
    """A `risk_events` row: details as Map(String, String) (numbers written with repr)."""
    row = message_row(event)
    row["details"] = {k: v if isinstance(v, str) else repr(v) for k, v in event.details.items()}
    return row


@dataclass(frozen=True, slots=True)
class MessageTable:
    """Where a message model is stored."""

    table: str
    columns: tuple[str, ...]
    row: Callable[[Any], dict[str, Any]]


MESSAGE_TABLES: dict[type[Message], MessageTable] = {
    Tick: MessageTable("ticks", TICK_COLUMNS, tick_row),
    Candle: MessageTable("candles", model_columns(Candle), message_row),
    Signal: MessageTable("trading_signals", model_columns(Signal), message_row),
    OrderIntent: MessageTable("order_intents", model_columns(OrderIntent), message_row),
    OrderEvent: MessageTable("order_events", model_columns(OrderEvent), message_row),
    RiskEvent: MessageTable("risk_events", model_columns(RiskEvent), risk_event_row),
}

DEAD_LETTER_COLUMNS = (
    "ts",
    "service",
    "stream",
    "entry_id",
    "kind",
    "reason",
    "deliveries",
    "model",
    "payload",
)
"""Columns of `dead_letters`; rows come from shared.bus.dead_letter_row."""
