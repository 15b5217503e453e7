"""Historical candles from the real data, as Kite serves them.

Intervals minute..60minute are resampled from the 1-minute bars, anchored at 09:15 (a 60minute
candle covers 09:15-10:14, the last one 15:15-15:29); `day` comes from the minute data and, before
it, from the daily file. Nothing after the simulated now is served: the simulated day's candles
stop at the current (partial) minute, later days do not exist yet. Futures and options candles
are modelled from the underlying's candles with the same pricing model as their ticks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, time, timedelta

from services.simulator.errors import InputError
from services.simulator.market_data import DailyBar, MinuteBar
from shared.clock import IST

INTERVAL_MINUTES = {
    "minute": 1,
    "3minute": 3,
    "5minute": 5,
    "10minute": 10,
    "15minute": 15,
    "30minute": 30,
    "60minute": 60,
}
ANCHOR_MINUTE = 9 * 60 + 15
Candle = tuple[datetime, float, float, float, float, int]


def parse_kite_datetime(text: str, field: str) -> datetime:
    """`yyyy-mm-dd hh:mm:ss` or `yyyy-mm-dd` in IST."""
    for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=IST)
        except ValueError:
            continue
    raise InputError(f"Invalid `{field}` {text!r}: use yyyy-mm-dd hh:mm:ss.")


def check_range(interval: str, start: datetime, end: datetime, max_days: Mapping[str, int]) -> None:
    """Kite refuses an unknown interval, a reversed range or one longer than the interval's limit."""
    if interval not in INTERVAL_MINUTES and interval != "day":
        raise InputError(f"Invalid `interval` {interval!r}.")
    if start > end:
        raise InputError("Invalid range: `from` is after `to`.")
    limit = max_days.get(interval)
    if limit is not None and (end - start) > timedelta(days=limit):
        raise InputError(f"interval exceeds max limit: {limit} days")


def resample(bars: Sequence[MinuteBar], minutes: int) -> list[Candle]:
    """1-minute bars -> `minutes` candles anchored at 09:15 of each bar's day."""
    candles: list[Candle] = []
    current: list[float] | None = None
    bucket: datetime | None = None
    volume = 0
    for bar in bars:
        minute_of_day = bar.start.hour * 60 + bar.start.minute
        offset = (minute_of_day - ANCHOR_MINUTE) // minutes * minutes
        start = datetime.combine(bar.start.date(), time(), IST) + timedelta(
            minutes=ANCHOR_MINUTE + offset
        )
        if start != bucket:
            if current is not None and bucket is not None:
                candles.append((bucket, current[0], current[1], current[2], current[3], volume))
            bucket, current, volume = start, [bar.open, bar.high, bar.low, bar.close], 0
        else:
            assert current is not None
            current[1] = max(current[1], bar.high)
            current[2] = min(current[2], bar.low)
            current[3] = bar.close
        volume += bar.volume
    if current is not None and bucket is not None:
        candles.append((bucket, current[0], current[1], current[2], current[3], volume))
    return candles


def daily_candles(bars: Sequence[DailyBar]) -> list[Candle]:
    return [
        (datetime.combine(b.day, time(), IST), b.open, b.high, b.low, b.close, b.volume)
        for b in bars
    ]


class HistoricalData:
    """Candles of the replayed indices; `today_bars` gives the simulated day up to now."""

    def __init__(
        self,
        minute_days: Mapping[int, Mapping[date, Sequence[MinuteBar]]],
        daily: Mapping[int, Sequence[DailyBar]],
        today: date,
        today_bars: Callable[[int, float], list[MinuteBar]],
    ) -> None:
        self.minute_days = minute_days
        self.daily = daily
        self.today = today
        self.today_bars = today_bars

    def _minute_bars(
        self, token: int, start: datetime, end: datetime, now: float
    ) -> list[MinuteBar]:
        days = self.minute_days.get(token, {})
        bars: list[MinuteBar] = []
        for day in sorted(d for d in days if start.date() <= d <= end.date() and d < self.today):
            bars.extend(days[day])
        if start.date() <= self.today <= end.date():
            bars.extend(self.today_bars(token, now))
        return bars

    def candles(
        self, token: int, interval: str, start: datetime, end: datetime, now: float
    ) -> list[Candle]:
        """The candles whose start lies in [start, end], known at simulated `now`."""
        if interval == "day":
            rows = self._day_candles(token, start, end, now)
        else:
            # Whole buckets: read from the start of the first bucket's day.
            day_start = datetime.combine(start.date(), time(), IST)
            bars = self._minute_bars(token, day_start, end, now)
            rows = resample(bars, INTERVAL_MINUTES[interval])
        return [c for c in rows if start <= c[0] <= end]

    def _day_candles(self, token: int, start: datetime, end: datetime, now: float) -> list[Candle]:
        from_minutes = {
            day: rows for day, rows in self.minute_days.get(token, {}).items() if day < self.today
        }
        by_day = {c[0].date(): c for c in daily_candles(self.daily.get(token, ()))}
        for day, rows in from_minutes.items():
            by_day[day] = _one_day(day, rows)
        if start.date() <= self.today <= end.date():
            today = self.today_bars(token, now)
            if today:
                by_day[self.today] = _one_day(self.today, today)
        return [by_day[d] for d in sorted(by_day)]


def _one_day(day: date, bars: Sequence[MinuteBar]) -> Candle:
    """A day's minute bars as a day candle stamped at midnight, as Kite stamps them."""
    return (
        datetime.combine(day, time(), IST),
        bars[0].open,
        max(b.high for b in bars),
        min(b.low for b in bars),
        bars[-1].close,
        sum(b.volume for b in bars),
    )


def modelled_candles(
    candles: Sequence[Candle],
    price_at: Callable[[float, float], float],
    rises_with_underlying: bool,
    expires_at: float | None,
) -> list[Candle]:
    """A derivative's candles from its underlying's: each price through the model at the
    candle's start (puts swap high and low); nothing after expiry; volume modelled as 0."""
    rows: list[Candle] = []
    for start, o, h, low, c, _ in candles:
        epoch = start.timestamp()
        if expires_at is not None and epoch >= expires_at:
            break
        high_spot, low_spot = (h, low) if rises_with_underlying else (low, h)
        rows.append(
            (
                start,
                price_at(o, epoch),
                price_at(high_spot, epoch),
                price_at(low_spot, epoch),
                price_at(c, epoch),
                0,
            )
        )
    return rows
