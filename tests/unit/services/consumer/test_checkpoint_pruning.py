"""A checkpoint forgets instruments idle for days (expired options), keeps the others."""

from __future__ import annotations

from datetime import datetime, timedelta

from services.consumer.adapters.takeover import idle_instruments
from services.consumer.builder_state import BuilderState
from shared.clock import IST

NOW = datetime(2024, 8, 20, 15, 30, tzinfo=IST)


def state(last_end: datetime | None) -> BuilderState:
    return BuilderState(1, "NSE:X", "minute", None, (), None, 0, 0, last_end, False)


def test_instruments_idle_longer_than_the_horizon_are_listed_for_removal() -> None:
    restored = {
        b"1": (state(NOW),),
        b"2": (state(NOW - timedelta(days=2)), state(NOW - timedelta(days=9))),
        b"3": (state(NOW - timedelta(days=6)),),  # an option that expired last week
        b"4": (state(None),),  # never had a candle: nothing to judge by, kept
    }
    assert idle_instruments(restored, timedelta(days=5)) == [b"3"]
    assert idle_instruments({b"4": (state(None),)}, timedelta(days=5)) == []
