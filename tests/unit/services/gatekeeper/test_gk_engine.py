"""The risk engine end to end on pure state: approvals, every denial, queueing, options, exits."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from msgspec.structs import replace

from services.gatekeeper.decisions import Approved, Denied, Queued, risk_event
from services.gatekeeper.engine import RiskEngine
from services.gatekeeper.orders import order_tag
from services.gatekeeper.positions import PositionTerms
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.state import Quote, RiskState
from shared.calendar import load_calendar
from tests.unit.services.gatekeeper.gk_fixtures import (
    NIFTY,
    NOW,
    RELIANCE,
    SPOT,
    WEEKLY,
    fill,
    intent,
    market_hours,
    settings,
    state,
)


def _engine(**overrides: Any) -> tuple[RiskEngine, RiskState, GatekeeperSettings]:
    config = settings(**overrides)
    return RiskEngine(config, market_hours), state(config), config


def test_a_market_buy_becomes_a_protected_limit_sized_by_the_capital_cap() -> None:
    engine, risk, _ = _engine()
    decision = engine.evaluate(intent(), risk, NOW)
    assert isinstance(decision, Approved), decision
    (order,) = decision.orders
    assert order.order_type == "LIMIT"
    assert order.price == 2462.25  # 2450 x 1.005, already on the 0.05 tick (float: 2462.2499..)
    assert order.quantity == 4  # capital cap: 10,000 / 2462.25 -> 4; risk: 2,000 / 62.25 -> 32
    assert (order.tag, order.order_id) == (order_tag("sig-1", 1), "sig-1-1")
    assert order.market_protection is None
    assert decision.terms == PositionTerms(
        stop_loss=2400.0, target=2550.0, product="MIS", entry_intent_id="sig-1"
    )
    assert any("by capital cap" in r for r in decision.reasons)
    assert any("rounded down to tick" in r for r in decision.reasons)
    assert "sig-1" in risk.decided


def _with(
    **kw: Any,
) -> Callable[[RiskEngine, RiskState], Any]:
    return lambda engine, risk: replace(intent(), **kw)


def _tripped(engine: RiskEngine, risk: RiskState) -> Any:
    risk.kill_switch.trip("manual", 0.0, NOW)
    return intent()


def _breaker_open(engine: RiskEngine, risk: RiskState) -> Any:
    for i in range(5):
        risk.breaker.record_failure(NOW.timestamp() - 10 + i, "rejected")
    return intent()


def _daily_loss(engine: RiskEngine, risk: RiskState) -> Any:
    fill(risk, "NSE:INFY", "BUY", 100, 1500.0)
    risk.book.mark("NSE:INFY", 1484.0)  # -1,600 = 1.6 % of 100,000 (limit 1.5 %)
    return intent()


def _full(engine: RiskEngine, risk: RiskState) -> Any:
    for n, symbol in enumerate(["NSE:A", "NSE:B", "NSE:C", "NSE:D", "NSE:E"]):
        fill(risk, symbol, "BUY", 1, 10.0, n)
    return intent()


def _too_large(engine: RiskEngine, risk: RiskState) -> Any:
    fill(risk, RELIANCE, "BUY", 6, 2450.0)  # 6 + 4 units at 2462.25 = 24,622.50 > 20 %
    return intent()


def _stale(engine: RiskEngine, risk: RiskState) -> Any:
    risk.quotes[RELIANCE] = Quote(2450.0, NOW - timedelta(seconds=11))
    return intent()


@pytest.mark.parametrize(
    ("setup", "overrides", "now", "why"),
    [
        (_with(), {}, NOW.replace(hour=15, minute=30), "market is closed"),
        (_with(created_at=NOW - timedelta(seconds=61)), {}, NOW, "older than the 60 s limit"),
        (_with(timeframe="15minute", created_at=NOW - timedelta(seconds=901)), {}, NOW, "900 s"),
        (_with(), {"allowed_symbols": ("INFY",)}, NOW, "not in the allowed symbols"),
        (_with(underlying="FINNIFTY"), {"allowed_underlyings": ("NIFTY",)}, NOW, "underlying"),
        (_with(symbol="NFO:BIGLOT"), {"allowed_underlyings": ("BANKNIFTY",)}, NOW, "NIFTY is not"),
        (_with(confidence=0.4), {"min_confidence": 0.5}, NOW, "confidence 0.400 is below"),
        (_tripped, {}, NOW, "kill switch tripped: manual"),
        (_breaker_open, {}, NOW, "circuit breaker open"),
        (_daily_loss, {}, NOW, "daily loss limit"),
        (_full, {}, NOW, "5 positions open, the maximum is 5"),
        (_too_large, {}, NOW, "would exceed 20.0 % of capital"),
        (_stale, {}, NOW, "last price is 11.0 s old"),
        (_with(symbol="NSE:UNKNOWN"), {}, NOW, "unknown instrument NSE:UNKNOWN"),
        (_with(symbol=NIFTY), {}, NOW, "is an index, not tradable"),
        (_with(side="SELL", product="CNC"), {}, NOW, "short sale"),
        (_with(order_type="SL-M"), {}, NOW, "SL-M is not supported"),
        (_with(quantity=0), {}, NOW, "quantity 0 is not positive"),
        (_with(stop_loss=2500.0), {}, NOW, "wrong side of entry"),
        (_with(stop_loss=2460.0, quantity=None), {"capital": 1_000.0}, NOW, "zero lots"),
        (_with(order_type="LIMIT", limit_price=2800.0), {}, NOW, "outside the price band"),
        (_with(is_exit=True), {}, NOW, "no open position in NSE:RELIANCE"),
        (
            _with(),
            {"mode": "live", "live_confirm": "I understand"},
            NOW,
            "available margin is unknown",
        ),
    ],
)
def test_every_rule_denies_with_its_reason(
    setup: Callable[[RiskEngine, RiskState], Any],
    overrides: dict[str, Any],
    now: datetime,
    why: str,
) -> None:
    engine, risk, _ = _engine(**overrides)
    candidate = setup(engine, risk)
    decision = engine.evaluate(candidate, risk, now)
    assert isinstance(decision, Denied), decision
    assert any(why in reason for reason in decision.reasons), decision.reasons
    assert not decision.duplicate
    assert candidate.intent_id in risk.decided
    event = risk_event(decision, "ev-1", now)
    assert event is not None and event.kind == "DENIED" and why in event.reason


def test_all_failing_rules_are_reported_together() -> None:
    engine, risk, _ = _engine(min_confidence=0.9)
    risk.kill_switch.trip("manual", 0.0, NOW)
    decision = engine.evaluate(intent(created_at=NOW - timedelta(minutes=5)), risk, NOW)
    assert isinstance(decision, Denied)
    assert len(decision.reasons) == 3


def test_an_intent_is_decided_exactly_once() -> None:
    engine, risk, _ = _engine()
    assert isinstance(engine.evaluate(intent(), risk, NOW), Approved)
    again = engine.evaluate(intent(), risk, NOW)
    assert isinstance(again, Denied) and again.duplicate
    assert again.reasons == ("intent sig-1 was already decided",)


def test_live_margin_check_passes_with_enough_margin() -> None:
    engine, risk, _ = _engine(mode="live", live_confirm="I understand")
    risk.available_margin = 9_849.00  # exactly 4 x 2462.25
    assert isinstance(engine.evaluate(intent(), risk, NOW), Approved)
    risk.available_margin = 9_848.99
    denied = engine.evaluate(intent("sig-2"), risk, NOW)
    assert isinstance(denied, Denied) and "margin" in denied.reason


def test_the_real_nse_calendar_closes_independence_day() -> None:
    config = settings()
    engine = RiskEngine(config, load_calendar().is_market_open)
    holiday = NOW.replace(day=15)
    risk = state(config, holiday)
    decision = engine.evaluate(intent(created_at=holiday), risk, holiday)
    assert isinstance(decision, Denied) and "market is closed" in decision.reason


def test_market_orders_are_sent_as_market_only_when_allowed_with_protection() -> None:
    engine, risk, _ = _engine(allow_market_orders=True, market_protection=3.0)
    decision = engine.evaluate(intent(), risk, NOW)
    assert isinstance(decision, Approved)
    (order,) = decision.orders
    assert (order.order_type, order.price, order.market_protection) == ("MARKET", None, 3.0)


def test_a_large_order_is_sliced_at_the_freeze_quantity() -> None:
    engine, risk, _ = _engine(capital=10_000_000.0)
    decision = engine.evaluate(
        intent(symbol="NFO:BIGLOT", quantity=75 * 50, stop_loss=None, target=None), risk, NOW
    )
    assert isinstance(decision, Approved), decision
    assert [o.quantity for o in decision.orders] == [1800, 1800, 150]
    assert [o.tag for o in decision.orders] == [order_tag("sig-1", i) for i in (1, 2, 3)]
    assert {o.slices for o in decision.orders} == {3}


def test_a_short_option_intent_picks_a_weekly_strike_and_sets_option_exits() -> None:
    engine, risk, _ = _engine(capital=1_000_000.0)
    decision = engine.evaluate(
        intent(
            symbol=NIFTY,
            side="SELL",
            underlying="NIFTY",
            option_type="PE",
            reference_price=SPOT,
            product="NRML",
            stop_loss=None,
            target=None,
        ),
        risk,
        NOW,
    )
    assert isinstance(decision, Approved), decision
    (order,) = decision.orders
    chosen = risk.instruments[order.symbol]
    assert chosen.option_type == "PE" and chosen.expiry == WEEKLY
    assert abs((chosen.strike or 0) - SPOT) <= 150  # ATM +- 3 strikes of 50
    assert order.quantity % 25 == 0 and order.quantity > 0
    premium = risk.chains["NIFTY"].quotes
    ltp = next(q.ltp for q in premium if q.symbol == order.symbol)
    assert order.price is not None and order.price < ltp  # a SELL limit below LTP
    terms = decision.terms
    assert terms is not None and terms.stop_loss is not None and terms.target is not None
    assert terms.stop_loss == pytest.approx(order.price * 1.3, abs=0.05)
    assert terms.stop_loss > order.price > terms.target
    assert terms.expires_at is not None and terms.expires_at.date() == WEEKLY
    assert any("chose NFO:" in r and "total" in r for r in decision.reasons)
    # sized by margin: 15 % of 24,480 per unit -> 10 % of 1,000,000 / (3,672 x 25) = 1 lot
    assert order.quantity == 25


def test_a_sell_signal_while_long_exits_the_whole_position_despite_the_kill_switch() -> None:
    engine, risk, _ = _engine()
    fill(risk, RELIANCE, "BUY", 4, 2450.0)
    risk.kill_switch.trip("manual", 0.0, NOW)
    decision = engine.evaluate(intent("sig-2", side="SELL", quantity=None), risk, NOW)
    assert isinstance(decision, Approved), decision
    assert decision.is_exit and decision.terms is None
    (order,) = decision.orders
    assert (order.side, order.quantity, order.price) == ("SELL", 4, 2437.75)  # 2437.75 exactly
    position = risk.book.get(RELIANCE)
    assert position is not None and position.exit_pending == "sig-2"
    second = engine.evaluate(intent("sig-3", side="SELL", quantity=None), risk, NOW)
    assert isinstance(second, Denied) and "already in flight" in second.reason


def test_a_bigger_opposite_intent_is_not_a_silent_reversal() -> None:
    engine, risk, _ = _engine()
    fill(risk, RELIANCE, "BUY", 4, 2450.0)
    decision = engine.evaluate(intent("sig-2", side="SELL", quantity=10), risk, NOW)
    assert isinstance(decision, Denied) and "would reverse the position of 4" in decision.reason


def test_intents_over_the_rate_wait_in_the_queue_then_go() -> None:
    engine, risk, _ = _engine()
    decisions = [engine.evaluate(intent(f"s{i}", quantity=1), risk, NOW) for i in range(7)]
    assert [type(d).__name__ for d in decisions] == ["Approved"] * 5 + ["Queued"] * 2
    queued = decisions[5]
    assert isinstance(queued, Queued) and "over the order rate" in queued.reason
    assert (risk_event(queued, "e", NOW) or queued).kind == "QUEUED"  # type: ignore[union-attr]
    assert isinstance(decisions[6], Queued) and "behind earlier" in decisions[6].reason
    assert engine.retry_in_s(risk, NOW) == pytest.approx(0.2)
    assert engine.drain(risk, NOW + timedelta(seconds=0.1)) == []
    later = engine.drain(risk, NOW + timedelta(seconds=0.2))
    assert [d.intent.intent_id for d in later] == ["s5"]
    assert all(isinstance(d, Approved) for d in later)
    assert [d.intent.intent_id for d in engine.drain(risk, NOW + timedelta(seconds=0.4))] == ["s6"]
    assert engine.retry_in_s(risk, NOW) is None


def test_a_queued_entry_expires_with_a_reason_and_a_full_queue_refuses() -> None:
    engine, risk, _ = _engine(queue_size=1, queue_max_wait_s=1.0)
    for i in range(5):
        engine.evaluate(intent(f"s{i}", quantity=1), risk, NOW)
    assert isinstance(engine.evaluate(intent("q1", quantity=1), risk, NOW), Queued)
    full = engine.evaluate(intent("q2", quantity=1), risk, NOW)
    assert isinstance(full, Denied) and "rate queue full (1 intents waiting)" in full.reason
    # the clock jumps past the age limit without the limiter draining it
    expired = engine.drain(risk, NOW + timedelta(seconds=1.5))
    assert [(d.intent.intent_id, type(d).__name__) for d in expired] == [("q1", "Denied")]
    assert "more than 1.0 s" in expired[0].reason  # type: ignore[union-attr]
    assert "q1" in risk.decided


def test_a_1000_intent_burst_decides_every_intent_once_and_never_exceeds_the_rate() -> None:
    engine, risk, _ = _engine(capital=1e9, queue_size=1000, queue_max_wait_s=30.0)
    outcomes: dict[str, str] = {}
    sent: list[float] = []
    now = NOW
    for i in range(1000):
        decision = engine.evaluate(intent(f"b{i}", quantity=1, created_at=now), risk, now)
        if isinstance(decision, Approved):
            outcomes[decision.intent.intent_id] = "approved"
            sent.append(now.timestamp())
        elif isinstance(decision, Denied):
            outcomes[decision.intent.intent_id] = decision.reason
    while (wait := engine.retry_in_s(risk, now)) is not None:
        now += timedelta(seconds=max(wait, 0.001))
        risk.quotes[RELIANCE] = Quote(2450.0, now)
        for decision in engine.drain(risk, now):
            assert decision.intent.intent_id not in outcomes
            if isinstance(decision, Approved):
                outcomes[decision.intent.intent_id] = "approved"
                sent.append(now.timestamp())
            else:
                assert isinstance(decision, Denied) and decision.reason
                outcomes[decision.intent.intent_id] = decision.reason
    assert len(outcomes) == 1000  # nothing lost, each decided once
    approved = sent
    assert len(approved) >= 150
    for seconds, cap in ((1.0, 10), (60.0, 200)):
        first = 0
        for i, t in enumerate(approved):
            while approved[first] + seconds <= t:
                first += 1
            assert i + 1 - first <= cap
    reasons = {r for r in outcomes.values() if r != "approved"}
    assert all("older than" in r or "waited" in r for r in reasons), reasons


def test_a_tick_that_breaches_2pct_trips_the_switch_once_and_flattens() -> None:
    engine, risk, _ = _engine(flatten_on_kill=True)
    fill(risk, RELIANCE, "BUY", 10, 2450.0)
    calm = engine.on_tick(risk, _tick(2431.0), NOW)  # -190: 0.19 %
    assert calm.tripped is None and calm.exits == ()
    crash = engine.on_tick(risk, _tick(2250.0), NOW)  # -2,000: exactly 2 %
    assert crash.tripped is not None and "2.00 % of capital" in crash.tripped
    assert [(e.kind, e.side, e.quantity) for e in crash.exits] == [("KILL_SWITCH", "SELL", 10)]
    again = engine.on_tick(risk, _tick(2240.0), NOW)
    assert again.tripped is None  # reported once; the switch stays tripped
    (exit_order,) = engine.exit_intents(risk, crash.exits, NOW)
    decision = engine.evaluate(exit_order, risk, NOW)
    assert isinstance(decision, Approved) and decision.is_exit
    entry = engine.evaluate(intent("sig-9"), risk, NOW)
    assert isinstance(entry, Denied) and "kill switch tripped" in entry.reason


def test_a_stop_loss_tick_produces_one_exit_until_it_finishes() -> None:
    engine, risk, _ = _engine()
    fill(risk, RELIANCE, "BUY", 4, 2450.0, terms=PositionTerms(stop_loss=2400.0))
    outcome = engine.on_tick(risk, _tick(2399.0), NOW)
    (decision,) = outcome.exits
    assert decision.kind == "STOP_LOSS"
    (exit_order,) = engine.exit_intents(risk, outcome.exits, NOW)
    assert isinstance(engine.evaluate(exit_order, risk, NOW), Approved)
    assert engine.on_tick(risk, _tick(2390.0), NOW).exits == ()
    risk.book.exit_finished(RELIANCE)  # rejected: still open
    retry = engine.on_tick(risk, _tick(2390.0), NOW)
    (second,) = engine.exit_intents(risk, retry.exits, NOW)
    assert second.intent_id != exit_order.intent_id


def test_a_denied_exit_is_retried_under_a_new_id() -> None:
    engine, risk, _ = _engine()
    fill(risk, RELIANCE, "BUY", 4, 2450.0, terms=PositionTerms(stop_loss=2400.0))
    closed = NOW.replace(hour=15, minute=31)
    outcome = engine.on_tick(risk, _tick(2399.0), closed)
    (first,) = engine.exit_intents(risk, outcome.exits, closed)
    denied = engine.evaluate(first, risk, closed)
    assert isinstance(denied, Denied) and "market is closed" in denied.reason
    (second,) = engine.exit_intents(risk, engine.check_positions(risk, NOW).exits, NOW)
    assert second.intent_id != first.intent_id
    assert isinstance(engine.evaluate(second, risk, NOW), Approved)


def test_the_periodic_check_squares_off_intraday_positions_at_1515() -> None:
    engine, risk, _ = _engine()
    fill(risk, RELIANCE, "BUY", 4, 2450.0)
    assert engine.check_positions(risk, NOW.replace(hour=15, minute=14)).exits == ()
    (decision,) = engine.check_positions(risk, NOW.replace(hour=15, minute=15)).exits
    assert decision.kind == "SQUARE_OFF"


def _tick(price: float) -> Any:
    from shared.messages import Tick

    return Tick(
        instrument_token=738561,
        symbol=RELIANCE,
        last_price=price,
        exchange_ts=NOW,
        received_ns=0,
    )
