"""What `tradealgo run` shows while the system runs: a live status line and notable events (pure).

`EventTally` reads the messages of the signal, order-event, risk-event and control streams in
order and keeps the counts (signals, orders, fills) and a one-line description of each event worth
a line of its own. `status_line` renders the latest `Progress`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.cli.output import format_count, format_rupees
from shared.clock import to_ist
from shared.messages import Control, Message, OrderEvent, RiskEvent, Signal

# Order statuses worth a line: what happened to an order, not its intermediate steps.
SHOWN_ORDER_STATUSES = frozenset({"COMPLETE", "REJECTED", "CANCELLED", "FAILED", "LOGGED"})
SHOWN_RISK_KINDS = frozenset(
    {"KILL_SWITCH_TRIPPED", "KILL_SWITCH_RELEASED", "BREAKER_OPEN", "BREAKER_CLOSED", "EXIT"}
)


@dataclass
class EventTally:
    """Counts of the trading events seen so far."""

    signals: int = 0
    orders: set[str] = field(default_factory=set)
    filled: set[str] = field(default_factory=set)
    denials: int = 0

    def add(self, message: Message) -> str | None:
        """Count a message; returns the line to print for it, if it deserves one."""
        if isinstance(message, Signal):
            self.signals += 1
            return (
                f"{_hhmm(message)} signal  {message.action} {message.symbol} @ "
                f"{message.price:,.2f} [{message.strategy}] {message.reason}"
            )
        if isinstance(message, OrderEvent):
            self.orders.add(message.order_id)
            if message.status == "COMPLETE":
                self.filled.add(message.order_id)
            if message.status not in SHOWN_ORDER_STATUSES:
                return None
            price = message.average_price or message.price or 0.0
            why = f" ({message.reason})" if message.reason and message.status != "COMPLETE" else ""
            return (
                f"{to_ist(message.ts):%H:%M:%S} order   {message.status} {message.side} "
                f"{message.filled_quantity or message.quantity} {message.symbol} @ {price:,.2f} "
                f"[{message.mode}]{why}"
            )
        if isinstance(message, RiskEvent):
            if message.kind == "DENIED":
                self.denials += 1
            if message.kind not in SHOWN_RISK_KINDS and not (
                message.kind == "DENIED" and self.denials <= 5
            ):
                return None
            where = f" {message.symbol}" if message.symbol else ""
            return f"{to_ist(message.ts):%H:%M:%S} risk    {message.kind}{where}: {message.reason}"
        if isinstance(message, Control):
            return (
                f"{to_ist(message.ts):%H:%M:%S} control {message.command} by {message.source}: "
                f"{message.reason}"
            )
        return None


def _hhmm(signal: Signal) -> str:
    return f"{to_ist(signal.created_at):%H:%M:%S}"


@dataclass(frozen=True)
class Progress:
    """The numbers of the live status line (None: not known yet)."""

    sim_time: str | None = None  # the newest tick's exchange time, 'YYYY-MM-DD HH:MM:SS'
    ticks: float | None = None
    candles: float | None = None
    signals: int = 0
    orders: int = 0
    fills: int = 0
    pnl: float | None = None
    open_positions: float | None = None
    services_ready: int = 0
    services_total: int = 4
    halted: bool = False
    halt_reason: str = ""


def status_line(p: Progress) -> str:
    """'10:42:15 | ticks 12,345 | candles 210 | signals 3 | orders 2 (2 filled) | P&L +1,234.50 |
    positions 1 | up 4/4' (the simulated day is in the banner; ~100 characters)."""
    parts = [
        p.sim_time[-8:] if p.sim_time else "waiting for ticks",
        f"ticks {_n(p.ticks)}",
        f"candles {_n(p.candles)}",
        f"signals {p.signals}",
        f"orders {p.orders} ({p.fills} filled)",
        f"P&L {format_rupees(p.pnl) if p.pnl is not None else '-'}",
        f"positions {_n(p.open_positions)}",
        f"up {p.services_ready}/{p.services_total}",
    ]
    line = " | ".join(parts)
    if p.halted:
        line += f" | HALTED: {p.halt_reason or 'see tradealgo status'}"
    return line


def _n(value: float | None) -> str:
    return "-" if value is None else format_count(value)
