"""Settings of the Sentinel and the Producer: defaults, list parsing, refusal of bad values."""

from __future__ import annotations

from datetime import time

import pytest

from services.producer.settings import ProducerSettings
from services.sentinel.settings import SentinelSettings
from shared.settings import SettingsError, load_settings


def test_the_defaults_point_at_the_real_kite_and_the_documented_ports() -> None:
    sentinel, producer = SentinelSettings(), ProducerSettings()
    assert (sentinel.kite_api_root, sentinel.kite_login_root) == (
        "https://api.kite.trade",
        "https://kite.zerodha.com",
    )
    assert producer.kite_ws_root == "wss://ws.kite.trade"
    assert (sentinel.metrics_port, producer.metrics_port) == (9101, 9102)
    assert sentinel.login_time == time(8, 30) and sentinel.token_expiry_time == time(6, 0)
    assert producer.capacity == 9000


def test_lists_and_maps_are_read_from_plain_comma_separated_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PRODUCER_INSTRUMENTS", "NSE:NIFTY 50, NSE:INFY")
    monkeypatch.setenv("PRODUCER_OPTION_UNDERLYINGS", "nifty=NSE:NIFTY 50")
    monkeypatch.setenv("SENTINEL_FREEZE_QUANTITIES", "nifty:1800, BANKNIFTY:600")
    monkeypatch.setenv("SENTINEL_INSTRUMENT_EXCHANGES", "nse,nfo,bfo")
    producer, sentinel = ProducerSettings(), SentinelSettings()
    assert producer.instruments == ("NSE:NIFTY 50", "NSE:INFY")
    assert producer.option_underlyings == {"NIFTY": "NSE:NIFTY 50"}
    assert sentinel.freeze_quantities == {"NIFTY": 1800, "BANKNIFTY": 600}
    assert sentinel.instrument_exchanges == ("NSE", "NFO", "BFO")


def test_kite_account_fields_fall_back_to_the_kite_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KITE_API_KEY", "shared_key")
    monkeypatch.setenv("KITE_WS_ROOT", "ws://127.0.0.1:1")
    monkeypatch.setenv("SENTINEL_API_KEY", "sentinel_key")
    assert SentinelSettings().api_key == "sentinel_key"
    assert ProducerSettings().api_key == "shared_key"
    assert ProducerSettings().kite_ws_root == "ws://127.0.0.1:1"


@pytest.mark.parametrize(
    ("cls", "env", "value", "message"),
    [
        (ProducerSettings, "PRODUCER_INSTRUMENTS", "NIFTY 50", "EXCHANGE:TRADINGSYMBOL"),
        (ProducerSettings, "PRODUCER_OPTION_UNDERLYINGS", "NIFTY", "NAME=EXCHANGE:SPOT_SYMBOL"),
        (ProducerSettings, "PRODUCER_MAX_CONNECTIONS", "4", "PRODUCER_MAX_CONNECTIONS"),
        (ProducerSettings, "PRODUCER_INSTRUMENTS_PER_CONNECTION", "3001", "PER_CONNECTION"),
        (SentinelSettings, "SENTINEL_FREEZE_QUANTITIES", "NIFTY:lots", "not an integer"),
        (SentinelSettings, "SENTINEL_LOGIN_METHOD", "sms", "SENTINEL_LOGIN_METHOD"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, cls: type, env: str, value: str, message: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError, match=message):
        load_settings(cls)


def test_secrets_are_secret_strings_that_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_TOTP_SECRET", "JBSWY3DPEHPK3PXP")
    monkeypatch.setenv("SENTINEL_PASSWORD", "hunter2")
    settings = SentinelSettings()
    assert "JBSWY3DPEHPK3PXP" not in repr(settings) and "hunter2" not in repr(settings)
    assert settings.totp_secret.get_secret_value() == "JBSWY3DPEHPK3PXP"
