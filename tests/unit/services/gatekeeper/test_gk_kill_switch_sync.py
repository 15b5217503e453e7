"""The in-memory kill switch against the KILL_SWITCH_KEY hash: a CLI release is adopted, a trip is
never lost, an unreadable hash fails closed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from services.gatekeeper.risk.kill_switch import KillSwitchState, sync_with_persisted
from shared.clock import IST

T = datetime(2024, 8, 20, 11, 0, tzinfo=IST)
TRIPPED = KillSwitchState(tripped=True, reason="loss 2.1 %", tripped_at=T, mtm_at_trip=-2100.0)
RELEASED_AFTER = KillSwitchState(
    tripped=False,
    reason="loss 2.1 %",
    tripped_at=T,
    released_at=T + timedelta(minutes=5),
    released_by="cli:ops",
    release_reason="new session",
)
RELEASED_BEFORE = KillSwitchState(
    tripped=False, released_at=T - timedelta(hours=1), released_by="cli:ops", release_reason="x"
)


@pytest.mark.parametrize(
    ("current", "persisted", "action"),
    [
        (KillSwitchState(), KillSwitchState(), "none"),
        (TRIPPED, TRIPPED, "none"),
        (KillSwitchState(), TRIPPED, "adopt"),
        (KillSwitchState(), KillSwitchState.from_fields({"tripped": "maybe"}), "adopt"),
        (TRIPPED, RELEASED_AFTER, "adopt"),
        (TRIPPED, RELEASED_BEFORE, "persist"),
        (TRIPPED, KillSwitchState(), "persist"),
        (RELEASED_AFTER, RELEASED_AFTER, "none"),
    ],
)
def test_sync_with_persisted(
    current: KillSwitchState, persisted: KillSwitchState, action: str
) -> None:
    assert sync_with_persisted(current, persisted).action == action
