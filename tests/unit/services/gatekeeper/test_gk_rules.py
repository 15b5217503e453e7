"""Each pre-trade rule as a table: the reason it denies, or None."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.gatekeeper.risk import rules
from services.gatekeeper.risk.kill_switch import KillSwitchState
from shared.clock import IST

NOW = datetime(2024, 8, 1, 11, 0, tzinfo=IST)


@pytest.mark.parametrize(
    ("intent_id", "decided", "denied"),
    [("a", set(), False), ("a", {"b"}, False), ("a", {"a", "b"}, True)],
)
def test_already_decided(intent_id: str, decided: set[str], denied: bool) -> None:
    assert (rules.already_decided(intent_id, decided) is not None) is denied


@pytest.mark.parametrize(
    ("age_s", "denied", "why"),
    [
        (0.0, False, ""),
        (59.9, False, ""),
        (60.0, False, ""),  # exactly the limit passes
        (60.1, True, "older than the 60 s limit"),
        (-1.9, False, ""),  # small clock skew tolerated
        (-2.1, True, "in the future"),
    ],
)
def test_signal_too_old(age_s: float, denied: bool, why: str) -> None:
    reason = rules.signal_too_old(NOW - timedelta(seconds=age_s), NOW, 60.0, 2.0)
    assert (reason is not None) is denied
    assert why in (reason or "")


@pytest.mark.parametrize(
    ("symbol", "underlying", "symbols", "underlyings", "denied"),
    [
        ("NSE:RELIANCE", None, (), (), False),  # empty lists allow all
        ("NSE:RELIANCE", None, ("RELIANCE",), (), False),  # bare symbol matches
        ("NSE:RELIANCE", None, ("NSE:RELIANCE",), (), False),
        ("NSE:INFY", None, ("RELIANCE",), (), True),
        ("NSE:NIFTY 50", "NIFTY", (), ("NIFTY", "BANKNIFTY"), False),
        ("NSE:NIFTY FIN SERVICE", "FINNIFTY", (), ("NIFTY", "BANKNIFTY"), True),
        ("NSE:RELIANCE", None, (), ("NIFTY",), False),  # no underlying: the symbol list decides
    ],
)
def test_not_allowed(
    symbol: str,
    underlying: str | None,
    symbols: tuple[str, ...],
    underlyings: tuple[str, ...],
    denied: bool,
) -> None:
    assert (rules.not_allowed(symbol, underlying, symbols, underlyings) is not None) is denied


@pytest.mark.parametrize(
    ("confidence", "minimum", "denied"), [(0.5, 0.5, False), (0.49, 0.5, True), (0.9, 0.0, False)]
)
def test_confidence_too_low(confidence: float, minimum: float, denied: bool) -> None:
    assert (rules.confidence_too_low(confidence, minimum) is not None) is denied


@pytest.mark.parametrize(("is_open", "denied"), [(True, False), (False, True)])
def test_market_closed(is_open: bool, denied: bool) -> None:
    seen: list[datetime] = []

    def market_open(ts: datetime) -> bool:
        seen.append(ts)
        return is_open

    assert (rules.market_closed(NOW, market_open) is not None) is denied
    assert seen == [NOW]


@pytest.mark.parametrize(
    ("open_count", "maximum", "denied"), [(0, 5, False), (4, 5, False), (5, 5, True), (0, 0, True)]
)
def test_too_many_positions(open_count: int, maximum: int, denied: bool) -> None:
    assert (rules.too_many_positions(open_count, maximum) is not None) is denied


@pytest.mark.parametrize(
    ("value", "denied"), [(19_999.99, False), (20_000.0, False), (20_000.01, True), (-25_000, True)]
)
def test_position_too_large(value: float, denied: bool) -> None:
    assert (rules.position_too_large(value, 100_000.0, 20.0) is not None) is denied


@pytest.mark.parametrize(
    ("mtm", "limit_pct", "denied"),
    [(-1_499.99, 1.5, False), (-1_500.0, 1.5, True), (-3_000.0, 1.5, True), (-9_999, 0.0, False)],
)
def test_daily_loss_limit_reached(mtm: float, limit_pct: float, denied: bool) -> None:
    reason = rules.daily_loss_limit_reached(mtm, 100_000.0, limit_pct)
    assert (reason is not None) is denied
    if denied:
        assert reason is not None and "daily loss limit" in reason


@pytest.mark.parametrize(
    ("required", "available", "needed", "why"),
    [
        (10_000.0, 10_000.0, True, None),
        (10_000.01, 10_000.0, True, "only 10000.00 available"),
        (10_000.0, None, True, "unknown"),
        (10_000.0, None, False, None),  # not live: no margin check
    ],
)
def test_insufficient_margin(
    required: float, available: float | None, needed: bool, why: str | None
) -> None:
    reason = rules.insufficient_margin(required, available, needed)
    assert (reason is None) is (why is None)
    assert why is None or why in (reason or "")


@pytest.mark.parametrize(
    ("state", "denied"),
    [(KillSwitchState(), False), (KillSwitchState(tripped=True, reason="loss"), True)],
)
def test_kill_switch_tripped(state: KillSwitchState, denied: bool) -> None:
    assert (rules.kill_switch_tripped(state) is not None) is denied


@pytest.mark.parametrize(
    ("product", "opens_short", "denied"),
    [("CNC", True, True), ("CNC", False, False), ("MIS", True, False), ("NRML", True, False)],
)
def test_short_not_allowed(product: str, opens_short: bool, denied: bool) -> None:
    assert (rules.short_not_allowed(product, opens_short) is not None) is denied


@pytest.mark.parametrize(
    ("age_s", "denied"), [(None, True), (0.0, False), (10.0, False), (10.5, True)]
)
def test_stale_quote(age_s: float | None, denied: bool) -> None:
    ts = None if age_s is None else NOW - timedelta(seconds=age_s)
    assert (rules.stale_quote(ts, NOW, 10.0) is not None) is denied
