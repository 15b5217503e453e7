"""Settings: one shared .env, prefixed names first, and a one-line error naming the variable."""

from __future__ import annotations

import pytest
from pydantic import Field, SecretStr

from shared.settings import ServiceSettings, SettingsError, load_settings, service_config


class DemoSettings(ServiceSettings):
    model_config = service_config("DEMO_")

    max_loss_pct: float = Field(2.0, gt=0, le=100, description="kill switch, % of capital")
    api_secret: SecretStr = Field(SecretStr(""), description="a secret")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "DEMO_REDIS_URL", "LOG_LEVEL", "DEMO_LOG_LEVEL", "DEMO_MAX_LOSS_PCT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("DEMO_API_SECRET", raising=False)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "redis://127.0.0.1:6379/0"),
        ({"REDIS_URL": "redis://shared:1/0"}, "redis://shared:1/0"),
        (
            {"REDIS_URL": "redis://shared:1/0", "DEMO_REDIS_URL": "redis://own:2/0"},
            "redis://own:2/0",
        ),
    ],
)
def test_a_shared_field_reads_the_service_prefix_first_then_the_shared_name(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings(DemoSettings, _env_file=None).redis_url.get_secret_value() == expected


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "DEMO_MAX_LOSS_PCT",
            "abc",
            "invalid settings: DEMO_MAX_LOSS_PCT: Input should be a valid number, unable to parse "
            "string as a number (got 'abc')",
        ),
        (
            "DEMO_MAX_LOSS_PCT",
            "0",
            "invalid settings: DEMO_MAX_LOSS_PCT: Input should be greater than 0 (got '0')",
        ),
        (
            "LOG_LEVEL",
            "LOUD",
            "invalid settings: DEMO_LOG_LEVEL (or LOG_LEVEL): Input should be 'DEBUG', 'INFO', "
            "'WARNING' or 'ERROR'",
        ),
        (
            "DEMO_LOG_LEVEL",
            "LOUD",
            "invalid settings: DEMO_LOG_LEVEL (or LOG_LEVEL): Input should be 'DEBUG', 'INFO', "
            "'WARNING' or 'ERROR'",
        ),
    ],
)
def test_a_wrong_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(DemoSettings, _env_file=None)
    assert str(raised.value) == message
    assert "\n" not in str(raised.value)


def test_an_invalid_secret_is_named_but_never_echoed() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(DemoSettings, _env_file=None, api_secret=["not", "a", "string"])
    assert "DEMO_API_SECRET" in str(raised.value)
    assert "not" not in str(raised.value)


def test_settings_are_frozen() -> None:
    settings = load_settings(DemoSettings, _env_file=None)
    with pytest.raises(ValueError, match="frozen"):
        settings.max_loss_pct = 5.0  # type: ignore[misc]
