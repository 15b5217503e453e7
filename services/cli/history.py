"""Queries of the trading tables for `positions`, `orders`, `signals` and `status`.

The SQL is built by pure functions from the table's real columns (read with DESCRIBE), so the
CLI shows what the table holds and a column added later needs no change here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.cli.status_view import PositionLine


@dataclass(frozen=True)
class TableView:
    """How one table is shown: its preferred columns in order, and its time column(s)."""

    table: str
    columns: tuple[str, ...]
    time_columns: tuple[str, ...]  # the first one present orders and filters rows
    latest_by: tuple[str, ...] = ()  # keep only the newest row per these columns
    final: bool = False  # ReplacingMergeTree: read with FINAL


# The columns shown, in order, of the tables in shared/schema (ReplacingMergeTree: read FINAL).
ORDERS = TableView(
    "orders",
    (
        "updated_at", "order_id", "mode", "status", "side", "quantity", "symbol", "order_type",
        "price", "filled_quantity", "average_price", "strategy", "reason",
    ),
    ("updated_at", "created_at"),
    final=True,
)  # fmt: skip
SIGNALS = TableView(
    "trading_signals",
    (
        "created_at", "strategy", "action", "symbol", "timeframe", "price", "confidence",
        "stop_loss", "target", "reason", "signal_id",
    ),
    ("created_at", "candle_start"),
    final=True,
)  # fmt: skip
POSITIONS = TableView(
    "positions",
    (
        "updated_at", "symbol", "status", "quantity", "average_price", "last_price",
        "realised_pnl", "unrealised_pnl", "stop_loss", "target", "product", "mode", "strategy",
    ),
    ("updated_at", "opened_at"),
    final=True,
)  # fmt: skip


class TableMissing(LookupError):
    pass


@dataclass(frozen=True)
class Query:
    sql: str
    params: dict[str, Any]
    columns: tuple[str, ...]


def build_query(
    view: TableView, present: Sequence[str], limit: int, since: datetime | None
) -> Query:
    """SELECT of the view's columns that exist, newest first, within `since` (pure)."""
    have = set(present)
    columns = tuple(col for col in view.columns if col in have)
    if not columns:
        raise TableMissing(f"table {view.table} has none of the expected columns")
    time_col = next((col for col in view.time_columns if col in have), None)
    final = " FINAL" if view.final else ""
    where, params = "", {}
    if since is not None:
        if time_col is None:
            raise TableMissing(f"table {view.table} has no time column to filter --since on")
        # An instant, not wall-clock text: the driver would send an aware time's wall clock
        # without its zone, read by the server in its own zone.
        where = f" WHERE {time_col} >= fromUnixTimestamp64Micro(%(since_us)s)"
        params["since_us"] = round(since.timestamp() * 1_000_000)
    order = f" ORDER BY {time_col} DESC" if time_col else ""
    latest = [col for col in view.latest_by if col in have]
    by = f" LIMIT 1 BY {', '.join(latest)}" if latest and time_col else ""
    select = ", ".join(columns)
    sql = f"SELECT {select} FROM {view.table}{final}{where}{order}{by} LIMIT {int(limit)}"
    return Query(sql, params, columns)


def table_columns(client: Any, table: str) -> list[str]:
    """The columns of a table in the client's database; TableMissing when it does not exist."""
    exists = client.execute("EXISTS TABLE " + table)
    if not exists or not exists[0][0]:
        raise TableMissing(f"table {table} does not exist (has the schema been applied?)")
    return [row[0] for row in client.execute("DESCRIBE TABLE " + table)]


def fetch(
    client: Any, view: TableView, limit: int, since: datetime | None
) -> tuple[tuple[str, ...], list[tuple[Any, ...]]]:
    query = build_query(view, table_columns(client, view.table), limit, since)
    rows = client.execute(query.sql, query.params)
    return query.columns, [tuple(row) for row in rows]


def position_lines(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[PositionLine]:
    """Open positions (quantity != 0) from `positions` rows (pure)."""
    index = {name: i for i, name in enumerate(columns)}

    def get(row: Sequence[Any], *names: str) -> Any:
        for name in names:
            if name in index:
                return row[index[name]]
        return None

    out = []
    for row in rows:
        quantity = int(get(row, "quantity") or 0)
        if quantity == 0:
            continue
        pnl = get(row, "pnl")
        if pnl is None:
            parts = [get(row, "realised_pnl"), get(row, "unrealised_pnl")]
            pnl = (
                sum(float(p) for p in parts if p is not None)
                if any(p is not None for p in parts)
                else None
            )
        last = get(row, "last_price")
        out.append(
            PositionLine(
                symbol=str(get(row, "symbol")),
                quantity=quantity,
                average_price=float(get(row, "average_price") or 0.0),
                last_price=None if last is None else float(last),
                pnl=None if pnl is None else float(pnl),
            )
        )
    return out


def open_positions(client: Any, limit: int = 1000) -> list[PositionLine]:
    columns, rows = fetch(client, POSITIONS, limit, None)
    return position_lines(columns, rows)
