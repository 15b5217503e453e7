from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time

import pytest

from services.consumer.buckets import TradingSession, regular_sessions, session_on
from services.consumer.candles import CandleBuilder, CandleGap
from shared.clock import IST
from shared.messages import Candle, Tick, Timeframe

TOKEN = 256265
SYMBOL = "NSE:NIFTY 50"
DAY = date(2024, 3, 1)
NEXT_DAY = date(2024, 3, 4)
SPECIAL_DAY = date(2024, 3, 2)


def special_sessions(day: date) -> Sequence[TradingSession]:
    if day == SPECIAL_DAY:
        return (
            session_on(day, time(9, 15), time(10, 0)),
            session_on(day, time(11, 30), time(12, 30)),
        )
    return regular_sessions()(day)


def at(hhmmss: str, day: date = DAY) -> datetime:
    return datetime.combine(day, time.fromisoformat(hhmmss), tzinfo=IST)


def tick(hhmmss: str, price: float, volume: int = 0, day: date = DAY, token: int = TOKEN) -> Tick:
    when = at(hhmmss, day)
    return Tick(
        instrument_token=token,
        symbol=SYMBOL,
        last_price=price,
        exchange_ts=when,
        received_ns=int(when.timestamp() * 1e9) + 5_000_000,
        volume=volume,
    )


def builder(
    timeframe: Timeframe = "minute", grace_s: float = 2.0, revision_window_s: float = 600
) -> CandleBuilder:
    return CandleBuilder(
        TOKEN,
        SYMBOL,
        timeframe,
        sessions_of=special_sessions,
        grace_s=grace_s,
        revision_window_s=revision_window_s,
    )


def feed(b: CandleBuilder, ticks: list[Tick]) -> list[Candle]:
    out: list[Candle] = []
    for t in ticks:
        out.extend(b.update(t))
    return out


def ohlcv(c: Candle) -> tuple[float, float, float, float, int]:
    return (c.open, c.high, c.low, c.close, c.volume)


def test_a_tick_of_the_next_bucket_closes_the_candle_with_ohlc_from_last_prices() -> None:
    b = builder()
    closed = feed(
        b,
        [tick("09:15:01", 100), tick("09:15:20", 105), tick("09:15:40", 99), tick("09:15:59", 101)],
    )
    assert closed == []
    closed = b.update(tick("09:16:00", 102))
    assert len(closed) == 1
    candle = closed[0]
    assert (candle.start, candle.end) == (at("09:15:00"), at("09:16:00"))
    assert ohlcv(candle) == (100, 105, 99, 101, 0)
    assert candle.tick_count == 4 and candle.revision == 0 and candle.source == "live"
    assert candle.last_tick_received_ns == tick("09:16:00", 102).received_ns


def test_ticks_out_of_order_inside_the_open_bucket_keep_open_earliest_and_close_latest() -> None:
    b = builder()
    closed = feed(
        b, [tick("09:15:30", 100), tick("09:15:10", 95), tick("09:15:20", 97), tick("09:16:05", 1)]
    )
    assert ohlcv(closed[0])[:4] == (95, 100, 95, 100)


@pytest.mark.parametrize(
    ("ticks", "expected_volumes"),
    [
        # First bucket of the day: base 0, the whole cumulative count so far belongs to it.
        (
            [
                ("09:15:05", 1000),
                ("09:15:30", 1500),
                ("09:15:50", 1600),
                ("09:16:10", 2000),
                ("09:16:40", 2600),
                ("09:17:00", 2700),
            ],
            [1600, 1000],
        ),
        # Started mid-day: the first tick's count is the base, earlier volume is not dumped here.
        (
            [
                ("11:00:05", 500_000),
                ("11:00:30", 500_100),
                ("11:01:00", 500_300),
                ("11:02:00", 500_400),
            ],
            [100, 200],
        ),
        # A counter that goes backwards (a stale tick) never makes negative volume.
        (
            [("09:15:05", 1000), ("09:15:30", 900), ("09:16:10", 1200), ("09:17:00", 1300)],
            [1000, 200],
        ),
        # Index ticks carry no volume.
        ([("09:15:05", 0), ("09:16:10", 0), ("09:17:00", 0)], [0, 0]),
    ],
)
def test_volume_is_the_rise_of_the_cumulative_day_volume(
    ticks: list[tuple[str, int]], expected_volumes: list[int]
) -> None:
    b = builder()
    closed = feed(b, [tick(when, 100.0, volume) for when, volume in ticks])
    assert [c.volume for c in closed] == expected_volumes


def test_volume_restarts_with_the_cumulative_counter_on_a_new_day() -> None:
    b = builder()
    feed(b, [tick("15:29:10", 100, 9_000_000), tick("15:29:50", 100, 9_000_500)])
    closed = feed(b, [tick("09:15:02", 101, 300, NEXT_DAY), tick("09:15:40", 101, 700, NEXT_DAY)])
    assert [c.volume for c in closed] == [500]  # started mid-day: base is the first tick's count
    closed = b.update(tick("09:16:00", 101, 900, NEXT_DAY))
    assert [(c.start, c.volume) for c in closed] == [(at("09:15:00", NEXT_DAY), 700)]


def test_a_late_tick_for_a_closed_candle_produces_a_counted_revision() -> None:
    b = builder()
    feed(b, [tick("09:15:10", 100), tick("09:15:50", 101)])
    [original] = b.update(tick("09:16:00", 102))
    [revised] = b.update(tick("09:15:30", 110))
    assert revised.start == original.start
    assert revised.revision == 1
    assert ohlcv(revised) == (100, 110, 100, 101, 0)  # close stays: the late tick is older
    [again] = b.update(tick("09:15:59", 90))
    assert again.revision == 2
    assert ohlcv(again) == (100, 110, 90, 90, 0)  # newer than the old close: it is the close
    assert (b.stats.late_ticks, b.stats.revisions, b.stats.rejected) == (2, 2, 0)


def test_a_late_tick_keeps_the_volume_where_the_counter_first_rose() -> None:
    b = builder()
    feed(b, [tick("09:15:10", 100, 1000), tick("09:16:10", 100, 1500)])
    [revised] = b.update(tick("09:15:40", 100, 1200))
    assert revised.volume == 1000
    [closed] = b.update(tick("09:17:00", 100, 1600))
    assert closed.volume == 500


def test_a_late_tick_for_a_gap_bucket_makes_that_candle_as_a_revision() -> None:
    b = builder()
    feed(b, [tick("09:15:10", 100), tick("09:18:10", 103)])
    assert b.take_gaps() == [CandleGap(TOKEN, SYMBOL, "minute", at("09:16:00"), at("09:18:00"), 2)]
    [revived] = b.update(tick("09:17:10", 102))
    assert (revived.start, revived.revision, revived.volume) == (at("09:17:00"), 1, 0)
    assert ohlcv(revived)[:4] == (102, 102, 102, 102)


@pytest.mark.parametrize(
    ("late", "reason"),
    [
        (tick("09:15:30", 100), "too late"),  # the 09:15 candle ended 09:16: out of the window
        (tick("15:29:00", 100, day=date(2024, 2, 29)), "too late"),  # an earlier date
    ],
)
def test_a_tick_too_old_to_revise_is_rejected_with_a_reason(late: Tick, reason: str) -> None:
    b = builder(revision_window_s=120)  # keeps candles ending from 09:17 (09:19 - 2 min) on
    feed(b, [tick(f"09:{m}:10", 100) for m in range(15, 20)])
    assert b.update(late) == []
    [rejected] = b.take_rejects()
    assert reason in rejected.reason and rejected.tick == late
    assert b.stats.rejected == 1 and b.stats.late_ticks == 1


@pytest.mark.parametrize(
    ("when", "day"),
    [
        ("09:14:59", DAY),
        ("15:30:00", DAY),
        ("18:16:00", date(2024, 1, 20)),
        ("10:30:00", SPECIAL_DAY),
    ],
)
def test_a_tick_outside_the_sessions_is_rejected_and_counted(when: str, day: date) -> None:
    b = builder()
    assert b.update(tick(when, 100, day=day)) == []
    [rejected] = b.take_rejects()
    assert "outside" in rejected.reason
    assert b.stats.rejected == 1 and b.open_bucket_start is None


def test_a_naive_or_foreign_tick_is_rejected() -> None:
    b = builder()
    b.update(tick("09:15:00", 100))
    naive = Tick(
        instrument_token=TOKEN,
        symbol=SYMBOL,
        last_price=1.0,
        exchange_ts=datetime(2024, 3, 1, 9, 15, 5),
        received_ns=0,
    )
    assert b.update(naive) == []
    assert b.update(tick("09:15:05", 1, token=1)) == []
    assert [r.reason for r in b.take_rejects()] == [
        "naive exchange timestamp",
        "instrument 1 is not this builder's",
    ]


@pytest.mark.parametrize(
    ("timeframe", "ticks", "expected_gaps"),
    [
        ("minute", [("09:15:10", DAY), ("09:20:10", DAY)], [("09:16", "09:20", 4, DAY)]),
        ("5minute", [("09:15:10", DAY), ("09:31:00", DAY)], [("09:20", "09:30", 2, DAY)]),
        ("minute", [("09:15:10", DAY), ("09:16:10", DAY)], []),
        # The break between a special day's two sessions is not a gap...
        ("minute", [("09:59:10", SPECIAL_DAY), ("11:30:10", SPECIAL_DAY)], []),
        # ...but missing buckets inside each session are, one record per session.
        (
            "minute",
            [("09:58:10", SPECIAL_DAY), ("11:31:10", SPECIAL_DAY)],
            [("09:59", "10:00", 1, SPECIAL_DAY), ("11:30", "11:31", 1, SPECIAL_DAY)],
        ),
        # Across a date: the tail of the old day and the head of the new one.
        (
            "minute",
            [("15:27:10", DAY), ("09:17:10", NEXT_DAY)],
            [("15:28", "15:30", 2, DAY), ("09:15", "09:17", 2, NEXT_DAY)],
        ),
        # A whole missing date (Saturday here) is not the builder's business: no invented day.
        ("day", [("12:00:00", DAY), ("12:00:00", NEXT_DAY)], []),
        # A builder's first date: no head gap (it cannot tell "no trades" from "not running").
        ("minute", [("11:00:10", DAY), ("11:01:10", DAY)], []),
    ],
)
def test_buckets_without_ticks_are_reported_as_gaps_not_invented(
    timeframe: Timeframe,
    ticks: list[tuple[str, date]],
    expected_gaps: list[tuple[str, str, int, date]],
) -> None:
    b = builder(timeframe)
    closed = feed(b, [tick(when, 100, day=day) for when, day in ticks])
    assert len(closed) == len(ticks) - 1  # only the buckets that had ticks
    assert b.take_gaps() == [
        CandleGap(TOKEN, SYMBOL, timeframe, at(s, d), at(e, d), n) for s, e, n, d in expected_gaps
    ]


@pytest.mark.parametrize(
    ("grace_s", "timeframe", "last_tick", "still_open_at", "closed_at", "end"),
    [
        (2.0, "minute", "09:15:10", "09:16:01", "09:16:02", "09:16:00"),
        (0.0, "minute", "09:15:10", "09:15:59", "09:16:00", "09:16:00"),
        (2.0, "60minute", "15:20:00", "15:30:01", "15:30:02", "15:30:00"),
        (2.0, "15minute", "15:29:59", "15:30:01", "15:30:02", "15:30:00"),
        (5.0, "day", "11:00:00", "15:30:04", "15:30:05", "15:30:00"),
    ],
)
def test_the_timer_closes_a_bucket_after_its_end_plus_grace(
    grace_s: float,
    timeframe: Timeframe,
    last_tick: str,
    still_open_at: str,
    closed_at: str,
    end: str,
) -> None:
    b = builder(timeframe, grace_s=grace_s)
    b.update(tick(last_tick, 100))
    assert b.on_time(at(still_open_at)) == []
    [candle] = b.on_time(at(closed_at))
    assert candle.end == at(end)
    assert b.on_time(at(closed_at)) == []


def test_a_tick_after_the_timer_closed_its_bucket_revises_the_candle() -> None:
    b = builder()
    b.update(tick("09:15:10", 100))
    [closed] = b.on_time(at("09:16:02"))
    [revised] = b.update(tick("09:15:59", 104))
    assert (revised.start, revised.revision, revised.close) == (closed.start, 1, 104)


def test_the_timer_reports_the_tail_of_a_session_without_ticks() -> None:
    b = builder()
    b.update(tick("15:00:10", 100))
    assert len(b.on_time(at("15:01:02"))) == 1
    assert b.take_gaps() == []
    b.on_time(at("15:30:02"))
    assert b.take_gaps() == [CandleGap(TOKEN, SYMBOL, "minute", at("15:01:00"), at("15:30:00"), 29)]
    b.on_time(at("15:31:00"))
    assert b.take_gaps() == []  # reported once
    b.update(tick("09:15:05", 100, day=NEXT_DAY))
    assert b.take_gaps() == []  # not again on the next day


def test_a_new_day_closes_the_last_candle_of_the_previous_day() -> None:
    b = builder("60minute")
    feed(b, [tick("15:16:00", 100), tick("15:29:59", 104)])
    [closed] = b.update(tick("09:15:00", 99, day=NEXT_DAY))
    assert (closed.start, closed.end, closed.close) == (at("15:15:00"), at("15:30:00"), 104)


def test_a_special_session_day_builds_60_minute_candles_per_session() -> None:
    b = builder("60minute")
    closed = feed(
        b,
        [
            tick(t, 100 + i, day=SPECIAL_DAY)
            for i, t in enumerate(["09:15:00", "09:59:00", "11:30:00", "12:29:00"])
        ],
    )
    closed += b.on_time(at("12:30:02", SPECIAL_DAY))
    assert [(c.start.time(), c.end.time(), c.close) for c in closed] == [
        (time(9, 15), time(10, 0), 101),
        (time(11, 30), time(12, 30), 103),
    ]
    assert b.take_gaps() == []
