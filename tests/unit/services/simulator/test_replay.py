"""The day's replay: moments in order, exact minute OHLC, seek equal to replaying, no gap filling."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from services.simulator.market_data import MinuteBar
from services.simulator.replay import DayReplay, UnderlyingDay
from shared.clock import IST


def bar(hh: int, mm: int, o: float, h: float, low: float, c: float) -> MinuteBar:
    return MinuteBar(datetime(2024, 3, 2, hh, mm, tzinfo=IST), o, h, low, c, 0)


# A split special session: 09:15-09:16 and 11:30 (a gap that must stay a gap).
NIFTY = (
    bar(9, 15, 100.0, 101.0, 99.5, 100.5),
    bar(9, 16, 100.5, 100.95, 100.0, 100.1),
    bar(11, 30, 102.0, 102.5, 101.0, 101.5),
)
BANK = (bar(9, 15, 500.0, 505.0, 499.0, 504.0), bar(11, 30, 510.0, 511.0, 509.5, 510.05))


def replay(per_minute: int = 6) -> DayReplay:
    return DayReplay(
        [UnderlyingDay(1, NIFTY, 99.0), UnderlyingDay(2, BANK, 0.0)], per_minute, seed=3
    )


def epoch(hh: int, mm: int, ss: float = 0.0) -> float:
    return datetime(2024, 3, 2, hh, mm, tzinfo=IST).timestamp() + ss


def test_moments_are_ordered_and_each_minute_has_the_bar_ohlc() -> None:
    moments = replay().advance_to(math.inf)
    times = [m.epoch for m in moments]
    assert times == sorted(times)
    assert len(moments) == 3 * 6  # three minutes with bars, six slots each
    per_minute: dict[tuple[int, float], list[float]] = {}
    for moment in moments:
        minute = moment.epoch - moment.epoch % 60
        for token, price in moment.prices:
            per_minute.setdefault((token, minute), []).append(price)
    for token, bars in ((1, NIFTY), (2, BANK)):
        for b in bars:
            prices = per_minute[(token, b.start.timestamp())]
            assert (prices[0], max(prices), min(prices), prices[-1]) == (
                b.open,
                b.high,
                b.low,
                b.close,
            )


def test_nothing_ticks_in_the_break_of_a_split_session() -> None:
    moments = replay().advance_to(math.inf)
    assert not [m for m in moments if epoch(9, 17) <= m.epoch < epoch(11, 30)]
    assert all(
        token == 1
        for m in moments
        if epoch(9, 16) <= m.epoch < epoch(9, 17)
        for token, _ in m.prices
    )


@pytest.mark.parametrize(
    "at", [(9, 15, 0.0), (9, 15, 25.0), (9, 16, 59.0), (10, 0, 0.0), (11, 30, 30.0), (15, 0, 0.0)]
)
def test_seek_gives_the_state_replaying_would_give(at: tuple[int, int, float]) -> None:
    target = epoch(*at)
    played, jumped = replay(), replay()
    played.advance_to(target)
    jumped.seek(target)
    for token in (1, 2):
        a, b = played.state(token), jumped.state(token)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert (a.last_price, a.open, a.high, a.low, a.close) == (
                b.last_price,
                b.open,
                b.high,
                b.low,
                b.close,
            )
    assert played.next_epoch() == jumped.next_epoch()


def test_the_state_tracks_the_day_and_keeps_the_previous_close() -> None:
    r = replay()
    assert r.state(1) is None
    r.advance_to(epoch(9, 16, 59.9))
    state = r.state(1)
    assert state is not None
    assert (state.open, state.high, state.low, state.last_price, state.close) == (
        100.0,
        101.0,
        99.5,
        100.1,
        99.0,
    )


def test_the_current_minute_bar_is_only_what_has_ticked() -> None:
    r = replay()
    partial = r.minute_bars_until(1, epoch(9, 15, 10.0))  # slots at 0 and 10 s
    path = [p / 100 for p in r.path(1, 0)[:2]]
    assert len(partial) == 1
    assert (partial[0].open, partial[0].high, partial[0].low, partial[0].close) == (
        path[0],
        max(path),
        min(path),
        path[-1],
    )
    whole = r.minute_bars_until(1, epoch(12, 0))
    assert whole == list(NIFTY)


def test_the_day_ends_after_the_last_bar() -> None:
    r = replay()
    assert r.end_epoch == epoch(11, 31)
    r.advance_to(math.inf)
    assert r.next_epoch() is None
    assert date.fromtimestamp(r.first_epoch or 0) == date(2024, 3, 2)
