from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from services.sentinel.checks import (
    CHECK_NAMES,
    NOT_RUN,
    CheckResult,
    HaltAction,
    HaltState,
    checks_hash,
    decide_halt,
    halt_hash,
    halt_reasons,
    instruments_check,
    static_ip_check,
)
from shared.clock import IST

NOW = datetime(2024, 8, 20, 8, 35, tzinfo=IST)
ALL_PASS = {name: CheckResult.passed(name) for name in CHECK_NAMES}


@pytest.mark.parametrize(
    ("results", "reasons"),
    [
        (ALL_PASS, []),
        ({}, [f"{name}: {NOT_RUN}" for name in CHECK_NAMES]),
        (
            {**ALL_PASS, "token": CheckResult.failed("token", "no access token")},
            ["token: no access token"],
        ),
        (
            {
                **ALL_PASS,
                "redis": CheckResult.failed("redis", "connection refused"),
                "static_ip": CheckResult.failed("static_ip", "public IP 1.2.3.4 differs"),
            },
            ["static_ip: public IP 1.2.3.4 differs", "redis: connection refused"],
        ),
        ({k: v for k, v in ALL_PASS.items() if k != "clickhouse"}, [f"clickhouse: {NOT_RUN}"]),
    ],
    ids=["all pass", "none run", "token", "two fail in fixed order", "one not run"],
)
def test_failing_or_missing_checks_become_halt_reasons(
    results: dict[str, CheckResult], reasons: list[str]
) -> None:
    assert halt_reasons(results) == reasons


@pytest.mark.parametrize(
    ("public", "static", "ok", "text"),
    [
        ("1.2.3.4", "", True, "skipped"),
        (None, "", True, "skipped"),
        ("1.2.3.4", "1.2.3.4", True, "matches"),
        ("1.2.3.4\n", "1.2.3.4", True, "matches"),
        ("5.6.7.8", "1.2.3.4", False, "is not the registered static IP"),
        (None, "1.2.3.4", False, "public IP unknown"),
    ],
)
def test_the_static_ip_check_compares_or_skips(
    public: str | None, static: str, ok: bool, text: str
) -> None:
    result = static_ip_check(public, static, "timeout")
    assert result.ok is ok and text in result.detail


@pytest.mark.parametrize(
    ("loaded_at", "rows", "error", "ok"),
    [
        (NOW - timedelta(minutes=5), 1000, "", True),
        (None, 0, "", False),
        (NOW, 0, "", False),
        (NOW - timedelta(hours=21), 1000, "", False),  # yesterday's dump
        (NOW, 1000, "HTTP 503", False),
    ],
)
def test_the_instruments_check_wants_a_fresh_non_empty_dump(
    loaded_at: datetime | None, rows: int, error: str, ok: bool
) -> None:
    assert instruments_check(loaded_at, rows, NOW, 20.0, error).ok is ok


RUNNING = HaltState()
MINE = HaltState(True, "sentinel", ("token: no access token",))
OPERATORS = HaltState(True, "cli", ("manual halt",))


@pytest.mark.parametrize(
    ("current", "failing", "action"),
    [
        (RUNNING, ["token: no access token"], "HALT"),
        (RUNNING, [], "NONE"),
        (MINE, [], "RESUME"),
        (MINE, ["token: no access token"], "NONE"),
        (MINE, ["redis: down"], "UPDATE"),
        # Never lift someone else's halt; never fight it either.
        (OPERATORS, [], "NONE"),
        (OPERATORS, ["redis: down"], "NONE"),
    ],
)
def test_the_halt_decision_halts_on_failures_and_resumes_only_its_own_halt(
    current: HaltState, failing: list[str], action: HaltAction
) -> None:
    assert decide_halt(current, failing).action == action


def test_the_halt_hash_round_trips_through_its_reader() -> None:
    fields = halt_hash(True, ["token: expired", "redis: down"], NOW, NOW)
    assert set(fields) == {"halted", "reasons", "since", "source", "updated"}
    state = HaltState.from_hash(fields)
    assert state == HaltState(True, "sentinel", ("token: expired", "redis: down"), NOW.isoformat())
    assert json.loads(fields["reasons"]) == ["token: expired", "redis: down"]


@pytest.mark.parametrize(
    ("fields", "halted"),
    [({}, False), ({"halted": "0"}, False), ({"halted": "1", "reasons": "not json"}, True)],
)
def test_an_absent_or_odd_halt_hash_is_read_without_failing(
    fields: dict[str, str], halted: bool
) -> None:
    assert HaltState.from_hash(fields).halted is halted


def test_the_checks_hash_has_every_check_with_ok_or_its_reason() -> None:
    fields = checks_hash(
        {"token": CheckResult.failed("token", "expired"), "redis": ALL_PASS["redis"]}
    )
    assert fields == {
        "token": "expired",
        "instruments": NOT_RUN,
        "static_ip": NOT_RUN,
        "redis": "ok",
        "clickhouse": NOT_RUN,
    }
