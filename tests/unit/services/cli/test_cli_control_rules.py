"""Halt, resume and kill-switch release decisions."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from services.cli.control_rules import (
    cli_source,
    halted_fields,
    reason_problem,
    released_state,
    resume_refusal,
    resumed_fields,
)
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.sentinel.checks import CHECK_NAMES, HaltState, decide_halt
from shared.clock import IST

NOW = datetime(2024, 8, 20, 11, 0, tzinfo=IST)
EARLIER = "2024-08-20T09:00:00+05:30"
ALL_OK = dict.fromkeys(CHECK_NAMES, "ok")
TRIPPED = KillSwitchState(tripped=True, reason="loss 2.00 % of capital", tripped_at=NOW)


@pytest.mark.parametrize(
    ("operator", "source"), [("asha", "cli:asha"), ("  ", "cli:unknown"), ("", "cli:unknown")]
)
def test_cli_source_is_never_the_sentinel(operator: str, source: str) -> None:
    assert cli_source(operator) == source


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_reason_is_required(reason: str | None) -> None:
    assert reason_problem(reason) is not None


def test_halt_when_running_records_the_operator_and_reason() -> None:
    fields = halted_fields(HaltState(), " RBI policy at 10:00 ", "cli:asha", NOW)
    assert fields == {
        "halted": "1",
        "reasons": json.dumps(["cli:asha: RBI policy at 10:00"]),
        "since": NOW.isoformat(),
        "source": "cli:asha",
        "updated": NOW.isoformat(),
    }


def test_halt_over_a_sentinel_halt_keeps_its_reasons_and_start_and_takes_ownership() -> None:
    current = HaltState(True, "sentinel", ("token: expired",), EARLIER)
    fields = halted_fields(current, "investigating", "cli:asha", NOW)
    assert json.loads(fields["reasons"]) == ["token: expired", "cli:asha: investigating"]
    assert fields["since"] == EARLIER
    assert fields["source"] == "cli:asha"


def test_an_operator_halt_is_never_lifted_by_the_sentinel_when_checks_pass() -> None:
    written = HaltState.from_hash(halted_fields(HaltState(), "manual", "cli:asha", NOW))
    assert decide_halt(written, []).action == "NONE"


def test_resumed_fields_read_back_as_not_halted() -> None:
    state = HaltState.from_hash(resumed_fields("cli:asha", NOW))
    assert (state.halted, state.reasons, state.source) == (False, (), "cli:asha")


@pytest.mark.parametrize(
    ("checks", "kill_switch", "expected_parts"),
    [
        (ALL_OK, KillSwitchState(), None),
        (
            ALL_OK,
            TRIPPED,
            ["kill switch is tripped (loss 2.00 % of capital)", "kill-switch release"],
        ),
        (
            {**ALL_OK, "token": "token rejected"},
            KillSwitchState(),
            ["pre-market checks are failing (token: token rejected)", "lifts its halt by itself"],
        ),
        ({}, KillSwitchState(), ["token: not checked yet", "clickhouse: not checked yet"]),
        (
            {**ALL_OK, "static_ip": "public IP 1.2.3.4 is not the registered static IP"},
            TRIPPED,
            ["kill switch is tripped", " and pre-market checks are failing (static_ip: public IP"],
        ),
    ],
)
def test_resume_never_overrides_failing_checks_or_a_tripped_kill_switch(
    checks: dict[str, str], kill_switch: KillSwitchState, expected_parts: list[str] | None
) -> None:
    halt = HaltState(True, "cli:asha", ("cli:asha: manual",), EARLIER)
    refusal = resume_refusal(halt, checks, kill_switch)
    if expected_parts is None:
        assert refusal is None
    else:
        assert refusal is not None and refusal.startswith("cannot resume: ")
        for part in expected_parts:
            assert part in refusal


def test_release_of_a_tripped_switch_records_who_and_why_and_keeps_the_trip_history() -> None:
    state, refusal = released_state(TRIPPED, 2.0, "new session", "cli:asha", NOW)
    assert refusal is None
    assert (state.tripped, state.released_by, state.release_reason) == (
        False,
        "cli:asha",
        "new session",
    )
    assert state.reason == TRIPPED.reason and state.released_at == NOW


@pytest.mark.parametrize(
    ("state", "reason", "refusal"),
    [
        (KillSwitchState(), "x", "kill switch is not tripped"),
        (TRIPPED, "  ", "a release needs a reason and who releases it"),
    ],
)
def test_release_refusals(state: KillSwitchState, reason: str, refusal: str) -> None:
    assert released_state(state, 2.0, reason, "cli:asha", NOW) == (state, refusal)
