"""The Gatekeeper's own HALT (kill switch, reconciliation differences), written like the others'.

The HALT_KEY hash (halted, reasons as a JSON list, since, source, updated) is shared with the
Sentinel and the CLI. The Gatekeeper writes its halts with source "gatekeeper", so passing
pre-market checks never lift them (the Sentinel only lifts its own); only `tradealgo resume` does,
and the CLI refuses that while the kill switch is tripped. Earlier reasons are kept.
"""

from __future__ import annotations

import json
from datetime import datetime

from services.sentinel.checks import HaltState

GATEKEEPER_SOURCE = "gatekeeper"


def halted_fields(current: HaltState, reason: str, now: datetime) -> dict[str, str]:
    """The HALT_KEY hash after the Gatekeeper halts trading for `reason`."""
    line = f"{GATEKEEPER_SOURCE}: {reason}"
    reasons = list(current.reasons) if current.halted else []
    if line not in reasons:
        reasons.append(line)
    since = current.since if current.halted and current.since else now.isoformat()
    return {
        "halted": "1",
        "reasons": json.dumps(reasons),
        "since": since,
        "source": GATEKEEPER_SOURCE,
        "updated": now.isoformat(),
    }


def halt_reason(state: HaltState) -> str | None:
    """What the engine is told (`RiskState.halt_reason`): None when trading runs."""
    if not state.halted:
        return None
    return f"by {state.source or 'unknown'}: {'; '.join(state.reasons) or 'no reason recorded'}"
