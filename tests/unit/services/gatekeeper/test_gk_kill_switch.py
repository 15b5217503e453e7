"""The kill switch: the 2 % boundary, persistence across restarts, explicit release only."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.gatekeeper.risk.kill_switch import KillSwitch, KillSwitchState, loss_breach
from shared.clock import IST

NOW = datetime(2024, 8, 1, 11, 0, tzinfo=IST)
CAPITAL = 100_000.0


@pytest.mark.parametrize(
    ("mtm", "trips"),
    [
        (5_000.0, False),  # a profit
        (0.0, False),
        (-1_990.0, False),  # 1.99 %
        (-1_999.99, False),  # one paisa short of 2 %
        (-2_000.0, True),  # EXACTLY 2 %: trips (documented: at or above)
        (-1_999.9999999997, True),  # float noise of an exact 2 % still trips
        (-2_010.0, True),  # 2.01 %
        (-50_000.0, True),
    ],
)
def test_kill_switch_trips_at_or_above_2pct_loss(mtm: float, trips: bool) -> None:
    switch = KillSwitch(loss_pct=2.0)
    reason = switch.check(mtm, CAPITAL, NOW)
    assert (reason is not None) is trips
    assert switch.tripped is trips
    if trips:
        assert reason is not None and "at or above the kill-switch limit of 2.0 %" in reason
        assert switch.state.tripped_at == NOW
        assert switch.state.mtm_at_trip == mtm


@pytest.mark.parametrize(
    ("mtm", "capital", "pct", "trips"),
    [
        (-1_000.0, 50_000.0, 2.0, True),
        (-999.99, 50_000.0, 2.0, False),
        (-150.0, 10_000.0, 1.5, True),
        (-149.0, 10_000.0, 1.5, False),
        (-0.01, 1.0, 1.0, True),
    ],
)
def test_loss_breach_compares_in_paise(mtm: float, capital: float, pct: float, trips: bool) -> None:
    assert (loss_breach(mtm, capital, pct) is not None) is trips


def test_a_tripped_switch_stays_tripped_when_pnl_recovers() -> None:
    switch = KillSwitch(2.0)
    first = switch.check(-3_000.0, CAPITAL, NOW)
    assert switch.check(+10_000.0, CAPITAL, NOW) == first


def test_the_switch_survives_a_restart_through_its_persisted_fields() -> None:
    switch = KillSwitch(2.0)
    switch.check(-2_500.0, CAPITAL, NOW)
    persisted = switch.state.to_fields()
    assert all(isinstance(v, str) for v in persisted.values())
    restarted = KillSwitch(2.0, KillSwitchState.from_fields(persisted))
    assert restarted.tripped
    assert restarted.state == switch.state
    assert restarted.check(0.0, CAPITAL, NOW) == switch.state.reason


@pytest.mark.parametrize(
    "fields",
    [
        {"tripped": "yes"},
        {"tripped": "0", "at": "not a date"},
        {"tripped": "1", "mtm": "lots"},
    ],
)
def test_unreadable_persisted_state_reads_as_tripped(fields: dict[str, str]) -> None:
    state = KillSwitchState.from_fields(fields)
    assert state.tripped
    assert "unreadable" in state.reason


def test_an_empty_hash_means_never_tripped() -> None:
    assert not KillSwitchState.from_fields({}).tripped


@pytest.mark.parametrize(
    ("reason", "by", "refusal"),
    [
        ("", "ops", "a release needs a reason and who releases it"),
        ("reviewed the losses", "  ", "a release needs a reason and who releases it"),
        ("reviewed the losses", "ops", None),
    ],
)
def test_release_needs_a_reason_and_who(reason: str, by: str, refusal: str | None) -> None:
    switch = KillSwitch(2.0)
    switch.check(-2_000.0, CAPITAL, NOW)
    assert switch.release(reason, by, NOW) == refusal
    assert switch.tripped is (refusal is not None)
    if refusal is None:
        assert switch.state.released_by == by
        assert switch.state.release_reason == reason
        assert KillSwitchState.from_fields(switch.state.to_fields()) == switch.state


def test_releasing_an_untripped_switch_is_refused() -> None:
    assert KillSwitch(2.0).release("why", "ops", NOW) == "kill switch is not tripped"


def test_a_release_while_still_beyond_the_limit_trips_again() -> None:
    switch = KillSwitch(2.0)
    switch.check(-2_500.0, CAPITAL, NOW)
    assert switch.release("try again", "ops", NOW) is None
    assert switch.check(-2_500.0, CAPITAL, NOW) is not None
    assert switch.tripped


def test_a_manual_trip_keeps_the_first_reason() -> None:
    switch = KillSwitch(2.0)
    switch.trip("operator pressed the button", 0.0, NOW)
    switch.trip("second", 0.0, NOW)
    assert switch.state.reason == "operator pressed the button"
