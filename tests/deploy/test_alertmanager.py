"""deploy/alertmanager/start.sh: the configuration it writes from .env, checked by amtool."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy.deploy_files import DEPLOY, run_tool

TOKEN = "123456:AA-bb'cc"  # a quote inside must survive the YAML quoting
SLACK = "https://hooks.slack.com/services/T000/B000/xyz"


def render(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run start.sh with a stand-in Alertmanager that records its arguments."""
    fake = tmp_path / "alertmanager"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/argv"\n')
    fake.chmod(0o755)
    return subprocess.run(
        ["sh", str(DEPLOY / "alertmanager" / "start.sh")],
        env={
            "PATH": os.environ["PATH"],
            "ALERTMANAGER_CONFIG": str(tmp_path / "alertmanager.yml"),
            "ALERTMANAGER_BIN": str(fake),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "telegram", "slack"),
    [
        ({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "-1001234"}, True, False),
        ({"SLACK_WEBHOOK_URL": SLACK}, False, True),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "42", "SLACK_WEBHOOK_URL": SLACK},
            True,
            True,
        ),
        ({}, False, False),
    ],
    ids=["telegram", "slack", "both", "neither"],
)
def test_the_written_configuration_routes_to_the_channels_set_and_amtool_accepts_it(
    tmp_path: Path, env: dict[str, str], telegram: bool, slack: bool
) -> None:
    result = render(tmp_path, env)
    assert result.returncode == 0, result.stderr
    config_path = tmp_path / "alertmanager.yml"
    assert (tmp_path / "argv").read_text().split() == [
        f"--config.file={config_path}",
        "--storage.path=/alertmanager",
    ]
    assert config_path.stat().st_mode & 0o077 == 0  # it holds the tokens
    check = run_tool("amtool", "check-config", str(config_path))
    assert check.returncode == 0, check.stdout + check.stderr

    receiver = yaml.safe_load(config_path.read_text())["receivers"][0]
    assert ("telegram_configs" in receiver) == telegram
    assert ("slack_configs" in receiver) == slack
    if telegram:
        sent = receiver["telegram_configs"][0]
        assert sent["bot_token"] == TOKEN and sent["chat_id"] == int(env["TELEGRAM_CHAT_ID"])
        assert sent["api_url"] == "https://api.telegram.org"
    if slack:
        assert receiver["slack_configs"][0]["api_url"] == SLACK
    assert ("not sent anywhere" in result.stderr) == (not telegram and not slack)


def test_the_alert_api_root_override_reaches_the_telegram_receiver(tmp_path: Path) -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_CHAT_ID": "7",
        "ALERT_API_ROOT": "http://127.0.0.1:8080",
    }
    assert render(tmp_path, env).returncode == 0
    receiver = yaml.safe_load((tmp_path / "alertmanager.yml").read_text())["receivers"][0]
    assert receiver["telegram_configs"][0]["api_url"] == "http://127.0.0.1:8080"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "@channel"},
            "TELEGRAM_CHAT_ID must be a number",
        ),
        (
            {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_CHAT_ID": "12-3"},
            "TELEGRAM_CHAT_ID must be a number",
        ),
        ({"TELEGRAM_BOT_TOKEN": TOKEN}, "TELEGRAM_CHAT_ID must be a number"),
        ({"TELEGRAM_CHAT_ID": "42"}, "TELEGRAM_BOT_TOKEN is empty"),
    ],
)
def test_a_half_or_malformed_telegram_setting_stops_the_start(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    result = render(tmp_path, env)
    assert result.returncode == 1 and message in result.stderr
    assert not (tmp_path / "argv").exists()
