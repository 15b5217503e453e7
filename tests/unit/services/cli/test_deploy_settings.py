"""DEPLOY_* settings: the passwords docker compose puts into redis:// URLs must be URL-safe."""

from __future__ import annotations

import pytest

from services.cli.deploy_settings import DeploySettings
from shared.settings import SettingsError, load_settings


@pytest.mark.parametrize("password", ["", "3f9a0c1d2e", "A.b_c~d-e"])
def test_url_safe_passwords_are_accepted(password: str) -> None:
    settings = load_settings(DeploySettings, redis_password_ops=password)
    assert settings.redis_password_ops.get_secret_value() == password


@pytest.mark.parametrize("password", ["p@ss", "a:b", "x/y", "with space", "50%"])
def test_a_password_that_would_break_a_redis_url_is_refused_naming_the_variable(
    password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEPLOY_REDIS_PASSWORD_GATEKEEPER", password)
    with pytest.raises(SettingsError) as info:
        load_settings(DeploySettings)
    assert "DEPLOY_REDIS_PASSWORD_GATEKEEPER" in str(info.value)
    assert password not in str(info.value)  # a secret is never echoed


def test_retention_must_be_a_prometheus_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPLOY_PROMETHEUS_RETENTION", "30 days")
    with pytest.raises(SettingsError, match="DEPLOY_PROMETHEUS_RETENTION"):
        load_settings(DeploySettings)
