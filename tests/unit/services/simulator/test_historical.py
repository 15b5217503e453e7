"""Candles: resampling anchored at 09:15, Kite's range limits, nothing from the future."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from services.simulator.errors import InputError
from services.simulator.historical import (
    HistoricalData,
    check_range,
    modelled_candles,
    parse_kite_datetime,
    resample,
)
from services.simulator.market_data import DailyBar, MinuteBar
from services.simulator.settings import DEFAULT_HISTORICAL_MAX_DAYS
from shared.clock import IST


def minutes(day: date, start: tuple[int, int], count: int, base: float = 100.0) -> list[MinuteBar]:
    first = datetime(day.year, day.month, day.day, *start, tzinfo=IST)
    return [
        MinuteBar(
            first + timedelta(minutes=i), base + i, base + i + 2, base + i - 1, base + i + 1, 10
        )
        for i in range(count)
    ]


DAY = date(2024, 8, 19)
SESSION = minutes(DAY, (9, 15), 375)


@pytest.mark.parametrize(
    ("interval_minutes", "count", "first_end", "last_start"),
    [
        (1, 375, (9, 15), (15, 29)),
        (3, 125, (9, 17), (15, 27)),
        (5, 75, (9, 19), (15, 25)),
        (60, 7, (10, 14), (15, 15)),
    ],
)
def test_resampling_is_anchored_at_09_15(
    interval_minutes: int, count: int, first_end: tuple[int, int], last_start: tuple[int, int]
) -> None:
    candles = resample(SESSION, interval_minutes)
    assert len(candles) == count
    first = candles[0]
    assert first[0] == datetime(2024, 8, 19, 9, 15, tzinfo=IST)
    covered = [b for b in SESSION if b.start <= datetime(2024, 8, 19, *first_end, tzinfo=IST)]
    assert first[1:] == (
        covered[0].open,
        max(b.high for b in covered),
        min(b.low for b in covered),
        covered[-1].close,
        10 * len(covered),
    )
    assert candles[-1][0] == datetime(2024, 8, 19, *last_start, tzinfo=IST)


def test_a_special_sessions_second_part_starts_its_own_bucket() -> None:
    bars = minutes(date(2024, 3, 2), (9, 15), 45) + minutes(date(2024, 3, 2), (11, 30), 60)
    starts = [c[0].strftime("%H:%M") for c in resample(bars, 15)]
    assert starts == ["09:15", "09:30", "09:45", "11:30", "11:45", "12:00", "12:15"]


@pytest.mark.parametrize(
    ("interval", "days", "ok"),
    [
        ("minute", 60, True),
        ("minute", 61, False),
        ("60minute", 400, True),
        ("day", 2001, False),
        ("2minute", 1, False),
    ],
)
def test_each_interval_has_kites_range_limit(interval: str, days: int, ok: bool) -> None:
    start = datetime(2024, 1, 1, tzinfo=IST)
    if ok:
        check_range(interval, start, start + timedelta(days=days), DEFAULT_HISTORICAL_MAX_DAYS)
    else:
        with pytest.raises(InputError):
            check_range(interval, start, start + timedelta(days=days), DEFAULT_HISTORICAL_MAX_DAYS)


def test_a_reversed_range_and_a_bad_date_are_refused() -> None:
    start = datetime(2024, 1, 2, tzinfo=IST)
    with pytest.raises(InputError):
        check_range("minute", start, start - timedelta(minutes=1), DEFAULT_HISTORICAL_MAX_DAYS)
    with pytest.raises(InputError):
        parse_kite_datetime("02/01/2024", "from")
    assert parse_kite_datetime("2024-01-02", "from") == start


def test_today_stops_at_now_and_later_days_do_not_exist() -> None:
    today = date(2024, 8, 20)
    today_bars = minutes(today, (9, 15), 375, base=200.0)
    seen: list[float] = []

    def until(token: int, now: float) -> list[MinuteBar]:
        seen.append(now)
        return [b for b in today_bars if b.start.timestamp() <= now]

    later = {date(2024, 8, 21): minutes(date(2024, 8, 21), (9, 15), 375)}
    data = HistoricalData({1: {DAY: SESSION, today: today_bars, **later}}, {}, today, until)
    now = datetime(2024, 8, 20, 10, 0, 30, tzinfo=IST).timestamp()
    start, end = datetime(2024, 8, 19, tzinfo=IST), datetime(2024, 8, 22, tzinfo=IST)
    rows = data.candles(1, "minute", start, end, now)
    assert len(rows) == 375 + 46  # the whole 19th, today 09:15..10:00
    assert rows[-1][0] == datetime(2024, 8, 20, 10, 0, tzinfo=IST)
    days = data.candles(1, "day", start, end, now)
    assert [c[0].date() for c in days] == [DAY, today]
    assert days[1][4] == today_bars[45].close and days[1][0].hour == 0


def test_day_candles_come_from_the_daily_file_before_the_minute_data() -> None:
    old = DailyBar(date(2022, 11, 7), 18000.0, 18100.0, 17900.0, 18050.0, 0)
    data = HistoricalData({1: {DAY: SESSION}}, {1: [old]}, date(2024, 8, 20), lambda t, n: [])
    rows = data.candles(
        1, "day", datetime(2022, 1, 1, tzinfo=IST), datetime(2024, 8, 20, tzinfo=IST), 0.0
    )
    assert [r[0].date() for r in rows] == [date(2022, 11, 7), DAY]
    assert rows[0][1:5] == (18000.0, 18100.0, 17900.0, 18050.0)


def test_modelled_candles_swap_extremes_for_puts_and_stop_at_expiry() -> None:
    candles = resample(SESSION[:10], 5)
    expiry = candles[1][0].timestamp()
    puts = modelled_candles(candles, lambda spot, epoch: 1000.0 - spot, False, expiry)
    assert len(puts) == 1
    _, o, h, low, c, _ = puts[0]
    assert (o, h, low, c) == (
        1000.0 - candles[0][1],
        1000.0 - candles[0][3],
        1000.0 - candles[0][2],
        1000.0 - candles[0][4],
    )
    assert h >= low
