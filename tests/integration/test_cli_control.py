"""`tradealgo halt`, `resume` and `kill-switch release` against a real Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from services.cli.main import main
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.sentinel.checks import CHECK_NAMES, HaltState, halt_hash
from shared import constants as c
from shared.bus import decode_entry
from shared.clock import IST
from shared.messages import Control, Message, RiskEvent

pytestmark = pytest.mark.integration

T = datetime(2024, 8, 20, 9, 0, tzinfo=IST)


@pytest.fixture
def cli_env(redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The CLI pointed at the test Redis, from a directory without .env, as operator 'asha'."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLI_REDIS_URL", redis_url)
    monkeypatch.setenv("CLI_OPERATOR", "asha")
    monkeypatch.setenv("CLI_GATEKEEPER_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("CLI_HTTP_TIMEOUT_S", "0.5")
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def events(client: Any, stream: str) -> list[Message]:
    """The messages on a stream, decoded as the services decode them."""
    kwargs = client.connection_pool.connection_kwargs
    binary = redis.Redis(host=kwargs["host"], port=kwargs["port"], db=kwargs.get("db", 0))
    try:
        return [decode_entry(stream, fields) for _, fields in binary.xrange(stream)]
    finally:
        binary.close()


def controls(client: Any) -> list[Control]:
    messages = events(client, c.CONTROL)
    assert all(isinstance(m, Control) for m in messages)
    return messages  # type: ignore[return-value]


def all_checks_pass(client: Any) -> None:
    client.hset(c.CHECKS_KEY, mapping=dict.fromkeys(CHECK_NAMES, "ok"))


def test_halt_publishes_control_and_records_the_operator(
    cli_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["halt", "--reason", "RBI policy at 10:00"]) == 0
    out = capsys.readouterr().out
    assert "HALT published" in out and "cli:asha" in out
    state = HaltState.from_hash(cli_env.hgetall(c.HALT_KEY))
    assert state.halted and state.source == "cli:asha"
    assert state.reasons == ("cli:asha: RBI policy at 10:00",)
    [control] = controls(cli_env)
    assert (control.command, control.reason, control.source) == (
        "HALT",
        "RBI policy at 10:00",
        "cli:asha",
    )


def test_halt_without_a_reason_is_a_usage_error(
    cli_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["halt", "--reason", "  "]) == 2
    assert "a reason is required" in capsys.readouterr().err
    assert not cli_env.exists(c.HALT_KEY)
    assert cli_env.xlen(c.CONTROL) == 0


def test_resume_after_an_operator_halt_when_checks_pass(
    cli_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    all_checks_pass(cli_env)
    assert main(["halt", "--reason", "lunch"]) == 0
    assert main(["resume", "--reason", "back"]) == 0
    assert "RESUME published" in capsys.readouterr().out
    assert not HaltState.from_hash(cli_env.hgetall(c.HALT_KEY)).halted
    assert [m.command for m in controls(cli_env)] == ["HALT", "RESUME"]


def test_resume_is_refused_while_a_pre_market_check_fails(
    cli_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    cli_env.hset(c.CHECKS_KEY, mapping={**dict.fromkeys(CHECK_NAMES, "ok"), "token": "expired"})
    cli_env.hset(c.HALT_KEY, mapping=halt_hash(True, ["token: expired"], T, T))
    assert main(["resume", "--reason", "I think it is fine"]) == 1
    err = capsys.readouterr().err
    assert "cannot resume: pre-market checks are failing (token: expired)" in err
    assert HaltState.from_hash(cli_env.hgetall(c.HALT_KEY)).halted
    assert cli_env.xlen(c.CONTROL) == 0


def test_resume_is_refused_while_the_kill_switch_is_tripped_then_allowed_after_release(
    cli_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    all_checks_pass(cli_env)
    tripped = KillSwitchState(tripped=True, reason="loss 2.00 %", tripped_at=T, mtm_at_trip=-2000.0)
    cli_env.hset(c.KILL_SWITCH_KEY, mapping=tripped.to_fields())
    cli_env.hset(
        c.HALT_KEY,
        mapping={"halted": "1", "reasons": json.dumps(["kill switch: loss 2.00 %"]),
                 "since": T.isoformat(), "source": "gatekeeper"},
    )  # fmt: skip
    assert main(["resume", "--reason", "go"]) == 1
    assert "kill switch is tripped (loss 2.00 %)" in capsys.readouterr().err

    assert main(["kill-switch", "release", "--reason", "new session, loss reviewed"]) == 0
    out = capsys.readouterr().out
    assert "kill switch released by cli:asha" in out
    assert "still halted" in out
    released = KillSwitchState.from_fields(cli_env.hgetall(c.KILL_SWITCH_KEY))
    assert not released.tripped
    assert (released.released_by, released.release_reason) == (
        "cli:asha",
        "new session, loss reviewed",
    )
    assert released.reason == "loss 2.00 %"  # the trip's history is kept
    [event] = events(cli_env, c.RISK_EVENTS)
    assert isinstance(event, RiskEvent)
    assert (event.kind, event.reason) == ("KILL_SWITCH_RELEASED", "new session, loss reviewed")
    assert event.details == {"by": "cli:asha", "tripped_reason": "loss 2.00 %"}

    assert main(["resume", "--reason", "released and reviewed"]) == 0
    assert not HaltState.from_hash(cli_env.hgetall(c.HALT_KEY)).halted


def test_kill_switch_release_when_not_tripped_changes_nothing(
    cli_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["kill-switch", "release", "--reason", "x"]) == 1
    assert "kill switch is not tripped" in capsys.readouterr().err
    assert not cli_env.exists(c.KILL_SWITCH_KEY)


def test_resume_when_not_halted_says_so(cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    all_checks_pass(cli_env)
    assert main(["resume", "--reason", "x"]) == 0
    assert "not halted: nothing to resume" in capsys.readouterr().out
    assert cli_env.xlen(c.CONTROL) == 0


def test_commands_report_an_unreachable_redis_with_exit_code_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.support import free_port

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLI_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    assert main(["halt", "--reason", "x"]) == 3
    assert "cannot reach Redis" in capsys.readouterr().err
