"""Exit decisions of the position monitor, on every price update (and at least every 5 s).

Checked in this order; the first that applies is the reason (all of them close the position):
1. STOP_LOSS: long at or below the stop, short at or above it;
2. TRAILING_STOP: the best price since entry moved against by trailing_stop_pct % or more;
3. TARGET: long at or above the target, short at or below it;
4. EXPIRY: less than `exit_before_expiry_s` to the contract's expiry (strictly less);
5. SQUARE_OFF: an intraday (MIS) position at or after the square-off time (IST).
A position whose exit is already in flight gets no new decision until that exit finishes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, time
from typing import Literal

from services.gatekeeper.positions import Position, PositionBook
from shared.clock import to_ist
from shared.messages import OrderIntent, Side

ExitKind = Literal["STOP_LOSS", "TRAILING_STOP", "TARGET", "EXPIRY", "SQUARE_OFF", "KILL_SWITCH"]


@dataclass(frozen=True)
class ExitDecision:
    symbol: str
    kind: ExitKind
    side: Side  # the closing side
    quantity: int
    price: float  # the price the decision was made on
    reason: str


def trailing_stop_level(position: Position, pct: float | None) -> float | None:
    """The trailing stop implied by the best price since entry, or None when off."""
    if pct is None or position.best_price is None or not position.is_open:
        return None
    factor = pct / 100
    if position.quantity > 0:
        return position.best_price * (1 - factor)
    return position.best_price * (1 + factor)


def exit_decision(
    position: Position,
    now: datetime,
    square_off: time,
    exit_before_expiry_s: float,
    default_trailing_pct: float | None = None,
) -> ExitDecision | None:
    """Whether this position must be closed now, and why."""
    if not position.is_open or position.exit_pending is not None:
        return None
    price = position.last_price
    long = position.quantity > 0
    terms = position.terms

    def close(kind: ExitKind, reason: str) -> ExitDecision:
        return ExitDecision(
            position.symbol,
            kind,
            "SELL" if long else "BUY",
            abs(position.quantity),
            price if price is not None else position.average_price,
            reason,
        )

    if price is not None:
        stop = terms.stop_loss
        if stop is not None and (price <= stop if long else price >= stop):
            return close("STOP_LOSS", f"price {price} hit the stop-loss {stop}")
        trailing_pct = terms.trailing_stop_pct or default_trailing_pct
        trail = trailing_stop_level(position, trailing_pct)
        if trail is not None and (price <= trail if long else price >= trail):
            return close(
                "TRAILING_STOP",
                f"price {price} hit the trailing stop {trail:.2f} "
                f"({trailing_pct} % from the best {position.best_price})",
            )
        target = terms.target
        if target is not None and (price >= target if long else price <= target):
            return close("TARGET", f"price {price} reached the target {target}")
    if terms.expires_at is not None:
        left = (terms.expires_at - now).total_seconds()
        if left < exit_before_expiry_s:
            return close(
                "EXPIRY",
                f"{left / 60:.0f} min to expiry at {terms.expires_at.isoformat()}, "
                f"less than {exit_before_expiry_s / 60:.0f} min",
            )
    local = to_ist(now).time()
    if terms.product == "MIS" and local >= square_off:
        return close("SQUARE_OFF", f"intraday square-off at {square_off} IST (now {local})")
    return None


def exit_decisions(
    book: PositionBook,
    now: datetime,
    square_off: time,
    exit_before_expiry_s: float,
    default_trailing_pct: float | None = None,
) -> list[ExitDecision]:
    """One decision per open position that must close now."""
    decisions = []
    for position in book.open_positions():
        decision = exit_decision(
            position, now, square_off, exit_before_expiry_s, default_trailing_pct
        )
        if decision is not None:
            decisions.append(decision)
    return decisions


def exit_intent_id(position: Position) -> str:
    """Deterministic: the same position's same attempt always gets the same id (idempotent)."""
    origin = position.terms.entry_intent_id or (
        f"{position.symbol}@{position.opened_at.isoformat() if position.opened_at else ''}"
    )
    digest = hashlib.sha256(origin.encode()).hexdigest()[:16]
    return f"exit-{digest}-{position.exit_attempts + 1}"


def exit_intent(position: Position, decision: ExitDecision, now: datetime) -> OrderIntent:
    """The OrderIntent that closes the position; the engine prices it as a protected LIMIT."""
    intent_id = exit_intent_id(position)
    return OrderIntent(
        intent_id=intent_id,
        signal_id=intent_id,
        strategy="gatekeeper-exit",
        symbol=position.symbol,
        instrument_token=position.instrument_token,
        side=decision.side,
        order_type="MARKET",
        reference_price=decision.price,
        confidence=1.0,
        timeframe="minute",
        candle_start=now,
        created_at=now,
        reason=f"{decision.kind}: {decision.reason}",
        quantity=decision.quantity,
        product=position.terms.product,
        is_exit=True,
    )


def flatten_decisions(book: PositionBook, reason: str) -> list[ExitDecision]:
    """Kill switch with flatten_on_kill: close every open position (protected LIMIT orders)."""
    return [
        ExitDecision(
            p.symbol,
            "KILL_SWITCH",
            "SELL" if p.quantity > 0 else "BUY",
            abs(p.quantity),
            p.last_price if p.last_price is not None else p.average_price,
            f"flatten on kill switch: {reason}",
        )
        for p in book.open_positions()
        if p.exit_pending is None
    ]
