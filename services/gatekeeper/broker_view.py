"""The broker's view of orders and positions as plain values (parsed from Kite's JSON rows).

Pure parsers: the shell fetches `kite.orders()` / `kite.positions()["net"]` and hands the rows here;
recovery and reconciliation only ever see these types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.messages import Side


@dataclass(frozen=True)
class BrokerOrder:
    broker_order_id: str
    tag: str | None
    status: str  # Kite's own status string
    symbol: str  # "EXCHANGE:TRADINGSYMBOL"
    side: Side
    quantity: int
    filled_quantity: int = 0
    average_price: float = 0.0
    price: float = 0.0
    status_message: str = ""

    @classmethod
    def from_kite(cls, row: Mapping[str, Any]) -> BrokerOrder:
        """One row of `GET /orders` (or an order postback / WebSocket update)."""
        side = str(row["transaction_type"]).upper()
        if side not in ("BUY", "SELL"):
            raise ValueError(f"order {row.get('order_id')}: transaction_type {side!r}")
        return cls(
            broker_order_id=str(row["order_id"]),
            tag=row.get("tag") or None,
            status=str(row.get("status") or ""),
            symbol=f"{row['exchange']}:{row['tradingsymbol']}",
            side="BUY" if side == "BUY" else "SELL",
            quantity=int(row.get("quantity") or 0),
            filled_quantity=int(row.get("filled_quantity") or 0),
            average_price=float(row.get("average_price") or 0.0),
            price=float(row.get("price") or 0.0),
            status_message=str(row.get("status_message") or ""),
        )


@dataclass(frozen=True)
class BrokerPosition:
    symbol: str
    product: str
    quantity: int
    average_price: float = 0.0

    @classmethod
    def from_kite(cls, row: Mapping[str, Any]) -> BrokerPosition:
        """One row of `GET /portfolio/positions` -> data.net."""
        return cls(
            symbol=f"{row['exchange']}:{row['tradingsymbol']}",
            product=str(row.get("product") or ""),
            quantity=int(row.get("quantity") or 0),
            average_price=float(row.get("average_price") or 0.0),
        )
