"""Rows of the Gatekeeper's own ClickHouse tables (shared/schema/001_initial.sql), built purely.

- orders (ReplacingMergeTree(version)): one row per state of an order; `created_at` is when it
  was recorded and never changes; the writer passes an increasing `version`;
- positions (ReplacingMergeTree(version)): a position's state after each fill; its id is the
  mode, symbol and opening time, so a position closed and opened again is a new row;
- options_data: an option chain snapshot with IV and delta (NULL when Black-76 finds no volatility;
  gamma, theta and vega are not computed: NULL).
order_events and risk_events store the messages as they are (shared.store.MESSAGE_TABLES).
Datetimes go in timezone-aware (the schema stores instants).
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from services.gatekeeper.options import YEAR_S, OptionQuote, black76_greeks, expiry_at
from services.gatekeeper.order_journal import JournalEntry
from services.gatekeeper.positions import Position

ORDER_COLUMNS = (
    "order_id", "intent_id", "tag", "broker_order_id", "mode", "status", "strategy", "symbol",
    "instrument_token", "side", "order_type", "product", "quantity", "filled_quantity", "price",
    "trigger_price", "average_price", "reason", "created_at", "updated_at", "version",
)  # fmt: skip
POSITION_COLUMNS = (
    "position_id", "symbol", "instrument_token", "product", "mode", "strategy", "quantity",
    "average_price", "last_price", "realised_pnl", "unrealised_pnl", "stop_loss", "target",
    "opened_at", "updated_at", "closed_at", "status", "version",
)  # fmt: skip
OPTIONS_COLUMNS = (
    "ts", "underlying", "underlying_price", "expiry", "strike", "option_type", "instrument_token",
    "tradingsymbol", "ltp", "iv", "delta", "gamma", "theta", "vega", "oi", "volume", "bid", "ask",
)  # fmt: skip


def order_row(entry: JournalEntry, version: int) -> dict[str, Any]:
    order, plan = entry.order, entry.order.plan
    values = (
        plan.order_id, plan.intent_id, plan.tag, order.broker_order_id, order.mode,
        order.status, entry.strategy, plan.symbol, plan.instrument_token, plan.side,
        plan.order_type, plan.product, plan.quantity, order.filled_quantity, plan.price, None,
        order.average_price, order.reason, entry.recorded_at, order.updated_at, version,
    )  # fmt: skip
    return dict(zip(ORDER_COLUMNS, values, strict=True))


def position_id(position: Position, mode: str, now: datetime) -> str:
    opened = position.opened_at or now
    return f"{mode}:{position.symbol}:{opened.isoformat()}"


def position_row(position: Position, mode: str, now: datetime, version: int) -> dict[str, Any]:
    """The position's current state; a flat position is CLOSED at `now`."""
    open_ = position.is_open
    terms = position.terms
    values = (
        position_id(position, mode, now), position.symbol, position.instrument_token,
        terms.product, mode, "", position.quantity, position.average_price,
        position.last_price or 0.0, position.realised_pnl, position.unrealised_pnl,
        terms.stop_loss, terms.target, position.opened_at or now, now,
        None if open_ else now, "OPEN" if open_ else "CLOSED", version,
    )  # fmt: skip
    return dict(zip(POSITION_COLUMNS, values, strict=True))


def option_rows(
    underlying: str,
    underlying_price: float,
    quotes: tuple[OptionQuote, ...],
    ts: datetime,
    rate: float,
    expiry_time: time,
) -> list[dict[str, Any]]:
    """A chain snapshot, one row per contract."""
    rows = []
    for q in quotes:
        years = (expiry_at(q.expiry, expiry_time) - ts).total_seconds() / YEAR_S
        greeks = (
            black76_greeks(q, underlying_price, years, rate) if years > 0 and q.mid > 0 else None
        )
        iv, delta = greeks if greeks is not None else (None, None)
        values = (
            ts, underlying, underlying_price, q.expiry, q.strike, q.option_type,
            q.instrument_token, q.symbol.split(":", 1)[-1], q.ltp, iv, delta, None, None, None,
            q.oi, q.volume, q.bid, q.ask,
        )  # fmt: skip
        rows.append(dict(zip(OPTIONS_COLUMNS, values, strict=True)))
    return rows
