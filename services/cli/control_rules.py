"""What `tradealgo halt`, `resume` and `kill-switch release` may do, decided without IO (pure).

A halt by the operator is written as the Sentinel writes its own (the HALT_KEY hash: halted,
reasons as a JSON list, since, source, updated) but with the operator as `source`, so passing
pre-market checks never lift it: only `tradealgo resume` does. A resume never overrides a safety
stop: it is refused while a pre-market check fails (the Sentinel lifts its own halt once they
pass) or while the kill switch is tripped (only `tradealgo kill-switch release` clears that).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from services.cli.status_view import failing_checks
from services.gatekeeper.risk.kill_switch import KillSwitch, KillSwitchState
from services.sentinel.checks import HaltState

CLI_SOURCE_PREFIX = "cli:"


def cli_source(operator: str) -> str:
    """The `source` the CLI records: 'cli:<operator>' (never 'sentinel', which it could lift)."""
    return f"{CLI_SOURCE_PREFIX}{operator.strip() or 'unknown'}"


def reason_problem(reason: str | None) -> str | None:
    """Why a --reason is not acceptable, or None."""
    if reason is None or not reason.strip():
        return 'a reason is required (--reason "..."): it is recorded with who did it'
    return None


def halted_fields(current: HaltState, reason: str, source: str, now: datetime) -> dict[str, str]:
    """The HALT_KEY hash after an operator's halt: earlier reasons kept, this one added, the
    operator now owns the halt (so the Sentinel will not lift it when its checks pass)."""
    reasons = (
        [*current.reasons, f"{source}: {reason.strip()}"]
        if current.halted
        else [f"{source}: {reason.strip()}"]
    )
    since = current.since if current.halted and current.since else now.isoformat()
    return {
        "halted": "1",
        "reasons": json.dumps(reasons),
        "since": since,
        "source": source,
        "updated": now.isoformat(),
    }


def resumed_fields(source: str, now: datetime) -> dict[str, str]:
    """The HALT_KEY hash after an operator's resume."""
    return {
        "halted": "0",
        "reasons": "[]",
        "since": now.isoformat(),
        "source": source,
        "updated": now.isoformat(),
    }


def resume_refusal(
    halt: HaltState, checks: Mapping[str, str], kill_switch: KillSwitchState
) -> str | None:
    """Why trading may not resume now, or None. Every blocking cause is named."""
    causes = []
    if kill_switch.tripped:
        causes.append(
            f"the kill switch is tripped ({kill_switch.reason or 'no reason recorded'}): "
            "release it first with `tradealgo kill-switch release --reason ...`"
        )
    failing = failing_checks(checks)
    if failing:
        causes.append(
            "pre-market checks are failing ("
            + "; ".join(failing)
            + "): the Sentinel lifts its halt by itself once every check passes"
        )
    if not causes:
        return None
    return "cannot resume: " + " and ".join(causes)


def released_state(
    state: KillSwitchState, loss_pct: float, reason: str, by: str, now: datetime
) -> tuple[KillSwitchState, str | None]:
    """The kill switch after a release by `by`, or the unchanged state and why it was refused."""
    switch = KillSwitch(loss_pct, state)
    refusal = switch.release(reason, by, now)
    return switch.state, refusal
