"""What `tradealgo status` flags and how it reads."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.cli.status_view import (
    PositionLine,
    ServiceHealth,
    SessionView,
    SystemStatus,
    failing_checks,
    problems,
    render,
)
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.sentinel.checks import CHECK_NAMES, HaltState
from shared.clock import IST

NOW = datetime(2024, 8, 20, 10, 0, tzinfo=IST)
ALL_OK = dict.fromkeys(CHECK_NAMES, "ok")
UP = [ServiceHealth(name, True, True, "ready", 1.0) for name in ("sentinel", "gatekeeper")]
VALID = SessionView(True, "AB1234", "1a2b3c4d", NOW - timedelta(hours=1), NOW + timedelta(hours=2))


def status(**changes: object) -> SystemStatus:
    base = {
        "services": UP,
        "session": VALID,
        "halt": HaltState(),
        "checks": ALL_OK,
        "kill_switch": KillSwitchState(),
        "mode": "paper",
        "pnl": {"realised": 10.0, "mtm": 25.5},
        "positions": [PositionLine("NFO:NIFTY24AUG24500CE", -25, 110.0, 104.0, 150.0)],
    }
    base.update(changes)
    return SystemStatus(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, []),
        (
            {"services": [ServiceHealth("producer", False, False, "no answer from x: refused")]},
            ["producer is down (no answer from x: refused)"],
        ),
        (
            {"services": [ServiceHealth("consumer", True, False, "halted: token invalid")]},
            ["consumer is not ready: halted: token invalid"],
        ),
        (
            {"services": [ServiceHealth("consumer", True, True, "ready", 95.0)]},
            ["consumer heartbeat is 1m 35s old (more than 30 s)"],
        ),
        ({"session": SessionView(False)}, ["no Kite access token: run `tradealgo login`"]),
        (
            {"session": SessionView(True, expires_at=NOW - timedelta(seconds=1))},
            ["the Kite access token has expired: run `tradealgo login`"],
        ),
        (
            {"kill_switch": KillSwitchState(tripped=True, reason="loss 2.1 %")},
            [
                "kill switch TRIPPED: loss 2.1 % "
                "(release: `tradealgo kill-switch release --reason ...`)"
            ],
        ),
        (
            {"halt": HaltState(True, "cli:asha", ("cli:asha: news",), NOW.isoformat())},
            ["trading HALTED by cli:asha: cli:asha: news"],
        ),
    ],
)
def test_problems_name_each_thing_that_blocks_trading(
    changes: dict[str, object], expected: list[str]
) -> None:
    assert problems(status(**changes), NOW, 30.0) == expected


@pytest.mark.parametrize(
    ("checks", "expected"),
    [
        (ALL_OK, []),
        (
            {**ALL_OK, "token": "token rejected by Kite"},
            ["token: token rejected by Kite"],
        ),
        (
            {},
            [f"{name}: not checked yet (is the Sentinel running?)" for name in CHECK_NAMES],
        ),
    ],
)
def test_failing_checks_counts_a_missing_check_as_failing(
    checks: dict[str, str], expected: list[str]
) -> None:
    assert failing_checks(checks) == expected


def test_render_shows_every_section_and_all_good_when_nothing_blocks() -> None:
    text = render(status(), NOW, 30.0)
    for part in (
        "Services",
        "sentinel",
        "AB1234, token 1a2b3c4d: valid, expires 2024-08-20 12:00:00 (in 2h 00m)",
        "mode: paper",
        "not halted",
        "pre-market checks: all pass",
        "kill switch: armed (not tripped)",
        "realised +10.00, mtm +25.50",
        "NFO:NIFTY24AUG24500CE",
        "All good",
    ):
        assert part in text


def test_render_lists_the_halt_reasons_and_the_attention_block() -> None:
    halted = status(
        halt=HaltState(True, "sentinel", ("token: not checked yet",), "2024-08-20T09:00:00+05:30"),
        positions=None,
        positions_error="ClickHouse: connection refused",
        pnl={},
        mode=None,
    )
    text = render(halted, NOW, 30.0)
    assert "HALTED since 2024-08-20T09:00:00+05:30 by sentinel" in text
    assert "    - token: not checked yet" in text
    assert "positions unknown: ClickHouse: connection refused" in text
    assert "P&L unknown" in text
    assert "mode: unknown" in text
    assert "Attention\n  ! trading HALTED by sentinel: token: not checked yet" in text
