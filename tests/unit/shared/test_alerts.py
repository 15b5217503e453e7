"""Alert rendering, the log fallback and the choice of alerter from settings."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from shared.alert_policy import AlertPolicy, Decision, Verdict
from shared.alerts import (
    MAX_TEXT_CHARS,
    Alert,
    LogAlerter,
    Severity,
    WebhookAlerter,
    build_alerter,
    render,
)
from shared.clock import ManualClock
from shared.logs import register_secret
from shared.settings import ServiceSettings

CLOCK = ManualClock(datetime(2024, 1, 2, 4, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    ("alert", "decision", "expected"),
    [
        (Alert(Severity.CRITICAL, "kill", "Kill switch tripped", "MTM -2.1% < -2%"), None,
         "[CRITICAL] gatekeeper: Kill switch tripped\nMTM -2.1% < -2%"),
        (Alert(Severity.INFO, "k", "Session ready"), None, "[INFO] gatekeeper: Session ready"),
        (Alert(Severity.WARNING, "feed", "Feed stale", "no ticks 30s"),
         Decision(Verdict.SEND, "", duplicates_suppressed=3, rate_limited_dropped=2),
         "[WARNING] gatekeeper: Feed stale\nno ticks 30s\n"
         "(3 repeats suppressed since the last one)\n(2 other alerts dropped by the rate limit)"),
    ],
)  # fmt: skip
def test_render(alert: Alert, decision: Decision | None, expected: str) -> None:
    assert render("gatekeeper", alert, decision) == expected


def test_render_masks_secrets_and_truncates_long_text() -> None:
    register_secret("renderSecret123")
    text = render("sentinel", Alert(Severity.WARNING, "k", "login failed: renderSecret123"))
    assert "renderSecret123" not in text
    long = render("sentinel", Alert(Severity.INFO, "k", "t", "x" * 10_000))
    assert len(long) == MAX_TEXT_CHARS
    assert long.endswith("…")


async def test_log_alerter_logs_at_the_alerts_severity(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shared.alerts")
    alerter = LogAlerter("consumer")
    await alerter.send(Alert(Severity.CRITICAL, "halt", "Halted", "pre-market checks failing"))
    await alerter.close()
    (rec,) = caplog.records
    assert rec.levelno == logging.CRITICAL
    assert "[CRITICAL] consumer: Halted" in rec.getMessage()


class AlertSettings(ServiceSettings):
    model_config = ServiceSettings.model_config | {"env_file": None}


@pytest.mark.parametrize(
    ("fields", "kind", "channels"),
    [
        ({}, LogAlerter, None),
        ({"telegram_bot_token": SecretStr("1:abc")}, LogAlerter, None),  # no chat id
        ({"telegram_bot_token": SecretStr("1:abc"), "telegram_chat_id": "-100"},
         WebhookAlerter, ["telegram"]),
        ({"slack_webhook_url": SecretStr("http://127.0.0.1:1/hook")}, WebhookAlerter, ["slack"]),
        ({"telegram_bot_token": SecretStr("1:abc"), "telegram_chat_id": "-100",
          "slack_webhook_url": SecretStr("http://127.0.0.1:1/hook")},
         WebhookAlerter, ["telegram", "slack"]),
    ],
)  # fmt: skip
async def test_build_alerter_picks_the_configured_channels(
    fields: dict[str, object], kind: type, channels: list[str] | None
) -> None:
    alerter = build_alerter(AlertSettings(**fields), "sentinel", CLOCK)  # type: ignore[arg-type]
    assert isinstance(alerter, kind)
    if isinstance(alerter, WebhookAlerter):
        assert alerter.channels == channels
        assert alerter.policy.rate_per_minute == 20
        assert alerter.policy.dedup_seconds == 300
    await alerter.close()


def test_a_webhook_alerter_without_a_channel_is_an_error() -> None:
    with pytest.raises(ValueError, match="needs a Telegram bot token and chat id, or a Slack URL"):
        WebhookAlerter(service="x", policy=AlertPolicy(1, 1), clock=CLOCK, telegram_bot_token="t")
