"""Tick intake, the feed clock and the partition ownership plan: plain tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.consumer.feed_clock import FeedClock
from services.consumer.ownership import fair_share, plan_ownership
from services.consumer.tick_intake import receipt_stamped, tick_problem
from shared.clock import IST
from shared.messages import Tick

T = datetime(2024, 8, 20, 9, 30, tzinfo=IST)
RECEIVED_NS = 1_724_126_400_123_456_789  # 2024-08-20 04:00:00.123456789 UTC


def tick(**changes: object) -> Tick:
    values: dict[str, object] = {
        "instrument_token": 1, "symbol": "NSE:X", "last_price": 100.0,
        "exchange_ts": T, "received_ns": RECEIVED_NS, "volume": 5,
    }  # fmt: skip
    values.update(changes)
    return Tick(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"last_price": 0.0}, "not a positive finite"),
        ({"last_price": -5.0}, "not a positive finite"),
        ({"last_price": float("nan")}, "not a positive finite"),
        ({"last_price": float("inf")}, "not a positive finite"),
        ({"exchange_ts": datetime(2024, 8, 20, 9, 30)}, "no time zone"),
        ({"volume": -1}, "negative cumulative volume"),
    ],
)
def test_a_tick_that_can_never_be_a_candle_is_named_with_its_problem(
    changes: dict[str, object], problem: str | None
) -> None:
    found = tick_problem(tick(**changes))
    assert (found is None) if problem is None else (problem in (found or ""))


RECEIPT = datetime.fromtimestamp(RECEIVED_NS / 1e9, IST)


@pytest.mark.parametrize(
    ("exchange_ts", "received_ns", "stamped"),
    [
        (RECEIPT, RECEIVED_NS, True),  # the Producer's substitute (quote snapshot)
        (RECEIPT.astimezone(UTC), RECEIVED_NS, True),  # same instant off the bus
        (RECEIPT + timedelta(microseconds=1), RECEIVED_NS, True),  # float rounding
        (RECEIPT + timedelta(microseconds=5), RECEIVED_NS, False),
        (T, RECEIVED_NS, False),  # a whole-second exchange timestamp
        (RECEIPT, 0, False),  # no receipt time known
        (datetime(2024, 8, 20, 4, 0, 0, tzinfo=UTC), 1_724_126_400_000_000_000, False),
    ],
)
def test_a_receipt_time_stamp_is_recognised(
    exchange_ts: datetime, received_ns: int, stamped: bool
) -> None:
    assert receipt_stamped(tick(exchange_ts=exchange_ts, received_ns=received_ns)) is stamped


def test_the_feed_clock_runs_on_the_newest_exchange_time_plus_elapsed_time() -> None:
    clock = FeedClock()
    assert clock.now(5.0) is None
    clock.observe(T, 10.0)
    assert clock.now(10.0) == T and clock.now(12.5) == T + timedelta(seconds=2.5)
    clock.observe(T - timedelta(seconds=30), 11.0)  # an older tick does not move it back
    assert clock.newest == T and clock.now(12.0) == T + timedelta(seconds=2)
    clock.observe(T + timedelta(hours=20), 13.0)  # the next day's first tick
    assert clock.now(13.0) == T + timedelta(hours=20)
    assert clock.now(12.0) == T + timedelta(hours=20)  # never before the newest tick


@pytest.mark.parametrize(
    ("partitions", "live", "share"), [(4, 1, 4), (4, 2, 2), (4, 3, 2), (5, 2, 3), (1, 3, 1)]
)
def test_a_replica_s_fair_share_is_the_ceiling_of_partitions_over_replicas(
    partitions: int, live: int, share: int
) -> None:
    assert fair_share(partitions, live) == share


@pytest.mark.parametrize(
    ("live", "owned", "taken", "acquire", "release"),
    [
        (1, set(), set(), (0, 1, 2, 3), ()),  # alone: everything
        (2, set(), set(), (0, 1), ()),  # two starting together: half each
        (2, {0, 1, 2, 3}, set(), (), (3, 2)),  # a second replica joined: give back the top two
        (2, set(), {0, 1}, (2, 3), ()),  # the other replica holds 0 and 1
        (1, {2, 3}, {0}, (1,), ()),  # the other replica died: its lapsed partition 1 is free
        (2, {0}, {1, 2, 3}, (), ()),  # nothing free
    ],
)
def test_the_ownership_plan_takes_free_partitions_up_to_the_share_and_gives_back_extras(
    live: int,
    owned: set[int],
    taken: set[int],
    acquire: tuple[int, ...],
    release: tuple[int, ...],
) -> None:
    plan = plan_ownership(4, live, owned, taken)
    assert (plan.acquire, plan.release) == (acquire, release)
