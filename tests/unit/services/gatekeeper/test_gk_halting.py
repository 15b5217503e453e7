"""The Gatekeeper's HALT hash: its own source, earlier reasons kept, readable by everyone."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from services.gatekeeper.halting import halt_reason, halted_fields
from services.sentinel.checks import HaltState
from shared.clock import IST

NOW = datetime(2024, 8, 20, 11, 0, tzinfo=IST)


@pytest.mark.parametrize(
    ("current", "reasons", "since"),
    [
        (HaltState(), ["gatekeeper: kill switch"], NOW.isoformat()),
        (
            HaltState(True, "sentinel", ("token: expired",), "2024-08-20T09:00:00+05:30"),
            ["token: expired", "gatekeeper: kill switch"],
            "2024-08-20T09:00:00+05:30",
        ),
        (
            HaltState(True, "gatekeeper", ("gatekeeper: kill switch",), "x"),
            ["gatekeeper: kill switch"],
            "x",
        ),
    ],
)
def test_halted_fields(current: HaltState, reasons: list[str], since: str) -> None:
    fields = halted_fields(current, "kill switch", NOW)
    assert fields["halted"] == "1" and fields["source"] == "gatekeeper"
    assert json.loads(fields["reasons"]) == reasons
    assert fields["since"] == since
    assert HaltState.from_hash(fields).halted


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (HaltState(), None),
        (HaltState(True, "cli:ops", ("cli:ops: news",)), "by cli:ops: cli:ops: news"),
        (HaltState(True, "", ()), "by unknown: no reason recorded"),
    ],
)
def test_halt_reason(state: HaltState, expected: str | None) -> None:
    assert halt_reason(state) == expected
