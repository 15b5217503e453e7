from __future__ import annotations

import json
from datetime import time

import pytest

from services.consumer.settings import ConsumerSettings
from shared.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def no_consumer_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # no .env file in the way
    for name in (
        "CONSUMER_STRATEGIES",
        "CONSUMER_CANDLE_GRACE_S",
        "CONSUMER_HISTORICAL_RANGE_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)


def test_the_defaults_are_safe_and_complete() -> None:
    s = load_settings(ConsumerSettings)
    assert s.candle_grace_s == 2.0
    assert (s.session_open, s.session_close) == (time(9, 15), time(15, 30))
    assert [(c.kind, c.symbols) for c in s.strategies] == [("ema_crossover", ("NSE:NIFTY 50",))]
    assert s.historical_range_days["minute"] == 60 and s.historical_range_days["day"] == 2000
    assert s.historical_requests_per_s == 3.0


def test_strategies_and_tables_come_from_json_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "CONSUMER_STRATEGIES",
        json.dumps(
            [
                {
                    "kind": "rsi",
                    "symbols": ["NSE:INFY"],
                    "params": {"length": 7, "timeframe": "5minute"},
                },
                {
                    "kind": "ema_crossover",
                    "name": "ema_fast",
                    "symbols": ["NSE:NIFTY 50"],
                    "params": {"fast": 5, "slow": 13},
                },
            ]
        ),
    )
    monkeypatch.setenv("CONSUMER_HISTORICAL_RANGE_DAYS", json.dumps({"minute": 30, "day": 2000}))
    monkeypatch.setenv("CONSUMER_CANDLE_GRACE_S", "0.5")
    s = load_settings(ConsumerSettings)
    assert [c.params for c in s.strategies] == [
        {"length": 7, "timeframe": "5minute"},
        {"fast": 5, "slow": 13},
    ]
    assert s.historical_range_days == {"minute": 30, "day": 2000}
    assert s.candle_grace_s == 0.5


@pytest.mark.parametrize(
    ("strategies", "message"),
    [
        (
            [{"kind": "rsi", "symbols": ["NSE:INFY"], "params": {"oversold": 90}}],
            "below overbought",
        ),
        ([{"kind": "ema_crossover", "symbols": ["NSE:INFY"], "params": {"fats": 5}}], "fats"),
        ([{"kind": "magic", "symbols": ["NSE:INFY"]}], "unknown strategy kind"),
        (
            [{"kind": "rsi", "symbols": ["NSE:A"]}, {"kind": "rsi", "symbols": ["NSE:B"]}],
            "share a name",
        ),
        ([{"kind": "rsi", "symbols": []}], "at least 1"),
    ],
)
def test_a_bad_strategy_setting_fails_at_load_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, strategies: list[dict[str, object]], message: str
) -> None:
    monkeypatch.setenv("CONSUMER_STRATEGIES", json.dumps(strategies))
    with pytest.raises(SettingsError, match="CONSUMER_STRATEGIES") as excinfo:
        load_settings(ConsumerSettings)
    assert message in str(excinfo.value)


def test_a_negative_grace_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSUMER_CANDLE_GRACE_S", "-1")
    with pytest.raises(SettingsError, match="CONSUMER_CANDLE_GRACE_S"):
        load_settings(ConsumerSettings)


def test_a_read_block_the_redis_client_would_time_out_on_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONSUMER_READ_BLOCK_MS", "5000")  # every read would fail at 5 s
    with pytest.raises(SettingsError, match="CONSUMER_READ_BLOCK_MS"):
        load_settings(ConsumerSettings)
