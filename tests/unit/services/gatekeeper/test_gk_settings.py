"""Gatekeeper settings: safe defaults, the live interlock, consistency checks."""

from __future__ import annotations

import pytest

from services.gatekeeper.settings import LIVE_CONFIRM_PHRASE, GatekeeperSettings
from shared.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("GATEKEEPER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(str(tmp_path))  # no .env from the working tree


def test_defaults_are_safe_and_match_the_issue() -> None:
    s = load_settings(GatekeeperSettings)
    assert s.mode == "logging"
    assert s.orders_per_second == 5.0
    assert (s.broker_orders_per_second, s.broker_orders_per_minute, s.broker_orders_per_day) == (
        10,
        200,
        3000,
    )
    assert s.kill_switch_loss_pct == 2.0
    assert (s.breaker_failures, s.breaker_window_s) == (5, 60.0)
    assert s.slippage_pct == 0.5
    assert (s.risk_per_trade_pct, s.max_capital_per_trade_pct) == (2.0, 10.0)
    assert (s.option_min_volume, s.option_min_oi, s.option_strikes_around_atm) == (100, 1000, 3)
    assert s.option_stop_pct == 30.0
    assert s.exit_before_expiry_s == 3600.0
    assert s.square_off_time.isoformat() == "15:15:00"
    assert s.trailing_stop_pct is None
    assert s.position_check_interval_s == 5.0
    assert s.signal_max_age_s("minute") == 60.0
    assert s.signal_max_age_s("15minute") == 900.0


def test_live_mode_alone_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEKEEPER_MODE", "live")
    with pytest.raises(SettingsError, match="GATEKEEPER_LIVE_CONFIRM"):
        load_settings(GatekeeperSettings)


@pytest.mark.parametrize("phrase", ["yes", "i understand", "I understand ", ""])
def test_live_mode_needs_the_exact_phrase(monkeypatch: pytest.MonkeyPatch, phrase: str) -> None:
    monkeypatch.setenv("GATEKEEPER_MODE", "live")
    monkeypatch.setenv("GATEKEEPER_LIVE_CONFIRM", phrase)
    with pytest.raises(SettingsError):
        load_settings(GatekeeperSettings)


def test_live_mode_with_the_phrase_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEKEEPER_MODE", "live")
    monkeypatch.setenv("GATEKEEPER_LIVE_CONFIRM", LIVE_CONFIRM_PHRASE)
    assert load_settings(GatekeeperSettings).mode == "live"


def test_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEKEEPER_ALLOWED_UNDERLYINGS", "NIFTY, BANKNIFTY,")
    assert load_settings(GatekeeperSettings).allowed_underlyings == ("NIFTY", "BANKNIFTY")


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"option_weight_distance": 0.5}, "weights must sum to 1"),
        ({"max_slices": 11}, "max_slices"),
        ({"daily_loss_limit_pct": 3.0}, "daily_loss_limit_pct"),
        ({"market_protection": 0}, "MARKET_PROTECTION"),
        ({"kill_switch_loss_pct": 0}, "KILL_SWITCH_LOSS_PCT"),
        ({"capital": -1}, "CAPITAL"),
    ],
)
def test_inconsistent_settings_are_refused(overrides: dict[str, object], why: str) -> None:
    with pytest.raises(SettingsError, match=why):
        load_settings(GatekeeperSettings, **overrides)
