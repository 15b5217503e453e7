"""What the risk engine answers: Approved, Denied or Queued, each with its reasons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.gatekeeper.exits import ExitDecision
from services.gatekeeper.orders import PlannedOrder
from services.gatekeeper.positions import PositionTerms
from shared.messages import OrderIntent, RiskEvent


@dataclass(frozen=True)
class Approved:
    intent: OrderIntent
    orders: tuple[PlannedOrder, ...]
    terms: PositionTerms | None  # entries: stops/target/expiry for apply_fill; exits: None
    reasons: tuple[str, ...]
    is_exit: bool
    remainder: int = 0  # an exit's quantity beyond the slice cap, for a later order
    tripped: str | None = None  # the kill switch tripped during this evaluation


@dataclass(frozen=True)
class Denied:
    intent: OrderIntent
    reasons: tuple[str, ...]
    duplicate: bool = False  # a redelivery: do not overwrite the original decision
    tripped: str | None = None

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class Queued:
    intent: OrderIntent
    reason: str
    tripped: str | None = None


Decision = Approved | Denied | Queued


@dataclass(frozen=True)
class MonitorOutcome:
    """From a tick or the periodic check: a kill-switch trip (HALT + alert) and exits to send."""

    tripped: str | None
    exits: tuple[ExitDecision, ...]


def risk_event(decision: Decision, event_id: str, now: datetime) -> RiskEvent | None:
    """The audit event of a denial or a queueing (approvals are recorded as orders)."""
    intent = decision.intent
    if isinstance(decision, Denied):
        return RiskEvent(
            event_id=event_id,
            kind="DENIED",
            reason=decision.reason,
            ts=now,
            intent_id=intent.intent_id,
            symbol=intent.symbol,
            details={"duplicate": "yes" if decision.duplicate else "no"},
        )
    if isinstance(decision, Queued):
        return RiskEvent(
            event_id=event_id,
            kind="QUEUED",
            reason=decision.reason,
            ts=now,
            intent_id=intent.intent_id,
            symbol=intent.symbol,
        )
    return None
