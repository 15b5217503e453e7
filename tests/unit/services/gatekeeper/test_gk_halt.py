"""A HALT (Sentinel, operator, kill switch) stops new entries; exits still go out."""

from __future__ import annotations

import pytest

from services.gatekeeper.decisions import Approved, Denied
from services.gatekeeper.engine import RiskEngine
from services.gatekeeper.risk import rules
from tests.unit.services.gatekeeper.gk_fixtures import (
    NOW,
    RELIANCE,
    fill,
    intent,
    market_hours,
    settings,
    state,
)


@pytest.mark.parametrize(
    ("halt_reason", "denied"),
    [(None, False), ("", True), ("sentinel: token invalid", True)],
)
def test_trading_halted_denies_while_a_halt_is_in_force(
    halt_reason: str | None, denied: bool
) -> None:
    assert (rules.trading_halted(halt_reason) is not None) is denied


@pytest.mark.parametrize(
    ("halt_reason", "is_exit", "approved"),
    [
        (None, False, True),
        ("cli:ops: news", False, False),
        ("cli:ops: news", True, True),
    ],
)
def test_an_entry_is_denied_while_halted_and_an_exit_still_goes_out(
    halt_reason: str | None, is_exit: bool, approved: bool
) -> None:
    config = settings()
    engine, risk = RiskEngine(config, market_hours), state(config)
    if is_exit:
        fill(risk, RELIANCE, "BUY", 4, 2450.0)
    risk.halt_reason = halt_reason
    side = "SELL" if is_exit else "BUY"
    decision = engine.evaluate(intent(side=side, is_exit=is_exit, quantity=4), risk, NOW)
    assert isinstance(decision, Approved if approved else Denied), decision
    if not approved:
        assert isinstance(decision, Denied)
        assert any("halted" in r and "cli:ops: news" in r for r in decision.reasons)
