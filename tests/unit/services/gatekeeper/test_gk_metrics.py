"""The Gatekeeper's metrics: every contract name exported, denial reasons as low-cardinality rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from services.gatekeeper.adapters.metrics import GatekeeperMetrics, denial_rule
from services.gatekeeper.risk import rules
from services.gatekeeper.risk.kill_switch import KillSwitchState
from tests.unit.services.gatekeeper.gk_fixtures import NOW

CONTRACT = (
    "tradealgo_orders_total",
    "tradealgo_order_latency_seconds",
    "tradealgo_tick_to_order_seconds",
    "tradealgo_limiter_tokens",
    "tradealgo_intent_queue_depth",
    "tradealgo_kill_switch_tripped",
    "tradealgo_breaker_open",
    "tradealgo_pnl_rupees",
    "tradealgo_open_positions",
    "tradealgo_risk_denials_total",
    "tradealgo_dead_letters_total",
    "tradealgo_messages_consumed_total",
    "tradealgo_halted",
    "tradealgo_gatekeeper_mode",
)


def test_every_contract_metric_is_exported() -> None:
    metrics = GatekeeperMetrics(CollectorRegistry())
    metrics.set_mode("paper")
    metrics.order_status("paper", "SENT")
    metrics.order_latency.labels("intent_to_sent").observe(0.001)
    metrics.tick_to_order.observe(0.002)
    metrics.denied(("market is closed at x",))
    metrics.consumed("ta:intents")
    metrics.dead_lettered("ta:intents", "rejected")
    text = generate_latest(metrics.registry).decode()
    missing = [
        name for name in CONTRACT if f"\n{name}" not in text and f"# TYPE {name}" not in text
    ]
    assert missing == []
    assert 'tradealgo_pnl_rupees{kind="mtm"} 0.0' in text
    assert 'tradealgo_gatekeeper_mode{mode="paper"} 1.0' in text


@pytest.mark.parametrize(
    ("reason", "rule"),
    [
        (rules.already_decided("i", {"i"}), "duplicate"),
        (rules.kill_switch_tripped(KillSwitchState(True, "mark-to-market loss")), "kill_switch"),
        (rules.trading_halted("by cli:ops: news"), "halted"),
        (rules.market_closed(NOW, lambda _: False), "market_hours"),
        (rules.signal_too_old(NOW - timedelta(minutes=5), NOW, 60.0, 2.0), "signal_age"),
        (rules.not_allowed("NSE:X", None, ("NSE:Y",), ()), "allow_list"),
        (rules.confidence_too_low(0.1, 0.5), "confidence"),
        (rules.daily_loss_limit_reached(-2000.0, 100_000.0, 1.5), "daily_loss"),
        (rules.too_many_positions(5, 5), "max_positions"),
        (rules.position_too_large(30_000.0, 100_000.0, 20.0), "position_size"),
        (rules.insufficient_margin(10.0, 5.0, True), "margin"),
        (rules.stale_quote(None, NOW, 10.0), "stale_quote"),
        (rules.short_not_allowed("CNC", True), "short_sale"),
        ("rate queue full (100 intents waiting)", "rate"),
        ("waited 5.1 s for the order rate, more than 5.0 s", "rate"),
        ("circuit breaker open for 12.0 s more after 5 failed orders", "breaker"),
        ("something nobody foresaw", "other"),
    ],
)
def test_denial_rule(reason: str | None, rule: str) -> None:
    assert reason is not None
    assert denial_rule(reason) == rule
