from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

import msgspec
import pytest

from services.consumer.buckets import TradingSession, session_on, weekday_sessions
from services.consumer.settings import DEFAULT_HISTORICAL_RANGE_DAYS
from services.consumer.warmup import (
    CandleGapRange,
    HistoryFetch,
    TimeRange,
    covered_ranges,
    history_start,
    merge_candles,
    missing_ranges,
    pacing_plan,
    plan_fetches,
    plan_warmup,
)
from shared.clock import IST
from shared.messages import Candle, Timeframe
from tests.unit.services.consumer.consumer_factories import candles_from_closes

FRI, MON, TUE = date(2024, 3, 1), date(2024, 3, 4), date(2024, 3, 5)
SPECIAL = date(2024, 3, 2)
SESSIONS = weekday_sessions()


def sessions_with_special(day: date) -> Sequence[TradingSession]:
    if day == SPECIAL:
        return (
            session_on(day, time(9, 15), time(10, 0)),
            session_on(day, time(11, 30), time(12, 30)),
        )
    return SESSIONS(day)


def at(day: date, hhmm: str) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmm), tzinfo=IST)


@pytest.mark.parametrize(
    ("lookback", "timeframe", "until", "expected"),
    [
        (30, "minute", at(MON, "09:20"), at(FRI, "15:05")),  # 5 on Monday, 25 from Friday's tail
        (2, "day", at(MON, "09:15"), at(date(2024, 2, 29), "09:15")),  # the weekend has no session
        (7, "60minute", at(TUE, "09:15"), at(MON, "09:15")),  # 7 hourly buckets, the last shorter
        (1, "15minute", at(MON, "09:30"), at(MON, "09:15")),
    ],
)
def test_history_start_walks_back_over_trading_sessions(
    lookback: int, timeframe: Timeframe, until: datetime, expected: datetime
) -> None:
    assert history_start(lookback, timeframe, until, SESSIONS) == expected


def test_history_start_gives_up_after_max_days() -> None:
    with pytest.raises(ValueError, match="fewer than 1000"):
        history_start(1000, "day", at(MON, "09:15"), SESSIONS, max_days=30)


def test_covered_ranges_join_adjacent_stored_candles() -> None:
    starts = [at(FRI, t) for t in ("09:17", "09:15", "09:16", "09:20", "09:16")]
    assert covered_ranges(starts, "minute", SESSIONS) == [
        TimeRange(at(FRI, "09:15"), at(FRI, "09:18")),
        TimeRange(at(FRI, "09:20"), at(FRI, "09:21")),
    ]


def test_covered_ranges_refuse_a_start_off_the_grid() -> None:
    with pytest.raises(ValueError, match="not the start"):
        covered_ranges([at(FRI, "09:16")], "15minute", SESSIONS)


@pytest.mark.parametrize(
    ("requested", "covered", "expected"),
    [
        # Nothing stored: one range, the weekend inside it does not split it.
        ((at(FRI, "09:15"), at(MON, "15:30")), [], [(at(FRI, "09:15"), at(MON, "15:30"))]),
        # Friday morning stored: the rest, still one range.
        (
            (at(FRI, "09:15"), at(MON, "15:30")),
            [(at(FRI, "09:15"), at(FRI, "12:00"))],
            [(at(FRI, "12:00"), at(MON, "15:30"))],
        ),
        # A stored hour in the middle splits the missing time in two.
        (
            (at(FRI, "09:15"), at(MON, "15:30")),
            [(at(MON, "10:00"), at(MON, "11:00"))],
            [(at(FRI, "09:15"), at(MON, "10:00")), (at(MON, "11:00"), at(MON, "15:30"))],
        ),
        # Everything stored.
        ((at(FRI, "09:15"), at(FRI, "15:30")), [(at(FRI, "09:15"), at(FRI, "15:30"))], []),
        # Stored up to Friday's close, asked until Monday 11:00: the special Saturday session and
        # Monday morning are missing, as one range.
        (
            (at(FRI, "09:15"), at(MON, "11:00")),
            [(at(FRI, "09:15"), at(FRI, "15:30"))],
            [(at(SPECIAL, "09:15"), at(MON, "11:00"))],
        ),
        # A special day: the break between its sessions does not split the range.
        (
            (at(SPECIAL, "09:15"), at(SPECIAL, "15:30")),
            [],
            [(at(SPECIAL, "09:15"), at(SPECIAL, "12:30"))],
        ),
    ],
)
def test_missing_ranges_are_the_uncovered_session_time(
    requested: tuple[datetime, datetime],
    covered: list[tuple[datetime, datetime]],
    expected: list[tuple[datetime, datetime]],
) -> None:
    got = missing_ranges(
        TimeRange(*requested), [TimeRange(*c) for c in covered], sessions_with_special
    )
    assert got == [TimeRange(*e) for e in expected]


@pytest.mark.parametrize(
    ("timeframe", "days", "expected_requests"),
    [
        ("minute", 150, 3),
        ("minute", 60, 1),
        ("15minute", 201, 2),
        ("60minute", 400, 1),
        ("day", 5000, 3),
    ],
)
def test_plan_fetches_cuts_ranges_to_kites_limit_per_interval(
    timeframe: Timeframe, days: int, expected_requests: int
) -> None:
    start = at(FRI, "09:15")
    missing = [TimeRange(start, start + timedelta(days=days))]
    fetches = plan_fetches(408065, timeframe, missing, DEFAULT_HISTORICAL_RANGE_DAYS)
    assert len(fetches) == expected_requests
    assert fetches[0].start == start and fetches[-1].end == missing[0].end
    assert all(a.end == b.start for a, b in itertools.pairwise(fetches))
    limit = timedelta(days=DEFAULT_HISTORICAL_RANGE_DAYS[timeframe])
    assert all(f.end - f.start <= limit for f in fetches)


def test_a_fetch_formats_kites_inclusive_range_in_ist() -> None:
    fetch = HistoryFetch(408065, "minute", at(FRI, "09:15"), at(MON, "15:30"))
    assert (fetch.kite_from, fetch.kite_to) == ("2024-03-01 09:15:00", "2024-03-04 15:29:59")


def test_plan_fetches_needs_a_limit_for_the_interval() -> None:
    with pytest.raises(ValueError, match="no historical range limit"):
        plan_fetches(1, "3minute", [TimeRange(at(FRI, "09:15"), at(FRI, "10:00"))], {"minute": 60})


def test_pacing_keeps_every_second_within_the_rate() -> None:
    first = at(MON, "08:00")
    times = pacing_plan(10, 3.0, first)
    assert times[0] == first
    assert timedelta(seconds=3) <= times[-1] - first < timedelta(seconds=3.001)
    for t in times:
        assert sum(1 for u in times if t <= u < t + timedelta(seconds=1)) <= 3
    with pytest.raises(ValueError, match="> 0"):
        pacing_plan(1, 0, first)


def test_plan_warmup_fetches_only_what_clickhouse_lacks() -> None:
    until = at(date(2024, 8, 23), "15:30")
    requested = TimeRange(at(date(2024, 3, 1), "09:15"), until)
    stored = [at(date(2024, 8, 22), "09:15") + timedelta(minutes=i) for i in range(375)]
    plan = plan_warmup(
        256265,
        "minute",
        requested,
        stored,
        SESSIONS,
        DEFAULT_HISTORICAL_RANGE_DAYS,
        3.0,
        at(MON, "08:00"),
    )
    assert len(plan.missing) == 2  # before the stored day, and the day after it
    assert plan.missing[1] == TimeRange(at(date(2024, 8, 23), "09:15"), until)
    assert len(plan.fetches) == 4  # 174 days in 60-day requests, plus the last day
    assert timedelta(seconds=1) <= plan.duration < timedelta(seconds=1.001)  # 4 requests at 3/s


# --- merge ---------------------------------------------------------------------------------------


def series(closes: list[float], source: str = "history") -> list[Candle]:
    return [
        msgspec.structs.replace(c, source=source)
        for c in candles_from_closes(closes, timeframe="minute")
    ]


def test_merge_keeps_one_candle_per_start_in_order_and_prefers_complete_ones() -> None:
    history = series([1.0, 2.0, 3.0])
    live = [
        msgspec.structs.replace(c, close=c.close * 10, source="live")
        for c in series([0, 0, 3.0, 4.0])[2:]
    ]
    # History was read after bucket 3 ended: its candle 3 is complete, the live one may be partial.
    result = merge_candles(live, [], history_as_of=history[2].end, sessions_of=SESSIONS)
    assert len(result.candles) == 2
    result = merge_candles(
        history, reversed(live), history_as_of=history[2].end, sessions_of=SESSIONS
    )
    assert [(c.close, c.source) for c in result.candles] == [
        (1.0, "history"),
        (2.0, "history"),
        (3.0, "history"),
        (40.0, "live"),
    ]
    assert result.duplicates == 1 and result.gaps == ()


def test_merge_prefers_live_for_buckets_that_were_not_over_when_history_was_read() -> None:
    history = series([1.0, 2.0])
    live = [msgspec.structs.replace(history[1], close=22.0, source="live")]
    result = merge_candles(history, live, history_as_of=history[1].start, sessions_of=SESSIONS)
    assert [c.close for c in result.candles] == [1.0, 22.0]


def test_merge_prefers_a_revision_whatever_its_source() -> None:
    history = series([1.0, 2.0])
    revised = [msgspec.structs.replace(history[0], close=11.0, revision=1, source="live")]
    result = merge_candles(history, revised, history_as_of=history[1].end, sessions_of=SESSIONS)
    assert [c.close for c in result.candles] == [11.0, 2.0]


def test_merge_reports_missing_buckets_as_gaps_and_never_fills_them() -> None:
    candles = series([1.0, 2.0, 3.0, 4.0, 5.0])
    result = merge_candles(
        [candles[0], candles[4]], [candles[1]], history_as_of=candles[4].end, sessions_of=SESSIONS
    )
    assert len(result.candles) == 3
    assert result.gaps == (CandleGapRange(candles[2].start, candles[3].end, 2),)


def test_merge_refuses_mixed_instruments() -> None:
    a = series([1.0])
    b = [msgspec.structs.replace(c, symbol="NSE:INFY") for c in series([1.0, 2.0])]
    with pytest.raises(ValueError, match="one \\(symbol, timeframe\\)"):
        merge_candles(a, b, history_as_of=a[0].end, sessions_of=SESSIONS)
