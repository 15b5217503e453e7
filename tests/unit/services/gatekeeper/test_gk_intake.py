"""Malformed intents are refused before the engine (dead letter), each with every reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from services.gatekeeper.intake import intent_problems
from tests.unit.services.gatekeeper.gk_fixtures import intent


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({}, None),
        ({"symbol": "RELIANCE"}, "EXCHANGE:TRADINGSYMBOL"),
        ({"symbol": "NSE:"}, "EXCHANGE:TRADINGSYMBOL"),
        ({"instrument_token": 0}, "instrument_token"),
        ({"reference_price": 0.0}, "reference_price 0.0 is not positive"),
        ({"reference_price": float("nan")}, "reference_price is nan"),
        ({"limit_price": float("inf"), "order_type": "LIMIT"}, "limit_price is inf"),
        ({"order_type": "LIMIT"}, "needs a limit_price"),
        ({"stop_loss": -5.0}, "stop_loss"),
        ({"confidence": float("nan")}, "confidence is nan"),
        ({"confidence": -0.1}, "confidence -0.1 is negative"),
        ({"intent_id": " "}, "intent_id"),
        ({"created_at": datetime(2024, 8, 1, 11, 0)}, "timezone-aware"),
    ],
)
def test_intent_problems(changes: dict[str, Any], needle: str | None) -> None:
    problems = intent_problems(intent(**changes))
    if needle is None:
        assert problems == []
    else:
        assert any(needle in p for p in problems), problems


def test_every_problem_is_reported_not_only_the_first() -> None:
    problems = intent_problems(intent(symbol="X", instrument_token=-1, reference_price=-1.0))
    assert len(problems) == 3
