"""Tick paths inside a bar: exact OHLC, within range, deterministic per seed."""

from __future__ import annotations

import pytest

from services.simulator.market_data import read_bars
from services.simulator.settings import BUNDLED_DATA_DIR
from services.simulator.tick_path import minute_path, ohlc_of, path_seed, ticks_per_minute, to_paise


@pytest.mark.parametrize(
    ("rate", "expected"), [(1.0, 60), (0.5, 30), (0.01, 4), (2.0, 120), (1 / 15, 4), (0.1, 6)]
)
def test_ticks_per_minute_is_at_least_four(rate: float, expected: int) -> None:
    assert ticks_per_minute(rate) == expected


@pytest.mark.parametrize(
    ("bar", "count"),
    [
        ((2172775, 2173735, 2170180, 2171200), 60),  # NIFTY 2024-01-01 09:15, falling
        ((2171150, 2172000, 2169535, 2169565), 4),  # the minimum tick count
        ((100000, 100500, 99500, 100000), 10),  # flat close: the extremes' order is seeded
        ((100000, 100000, 99000, 99000), 7),  # open at the high, close at the low
        ((100000, 100000, 100000, 100000), 5),  # no range at all
        ((2000, 2010, 1995, 2005), 600),  # a tiny premium, many ticks
    ],
)
@pytest.mark.parametrize("seed", ["a", "b", "c"])
def test_a_path_opens_closes_and_touches_the_bar_exactly(
    bar: tuple[int, int, int, int], count: int, seed: str
) -> None:
    o, h, low, c = bar
    path = minute_path(o, h, low, c, count, seed)
    assert len(path) == count
    assert ohlc_of(path) == (o, h, low, c)
    assert all(p % 5 == 0 for p in path)


def test_a_rising_bar_dips_first_and_a_falling_bar_rallies_first() -> None:
    up = minute_path(100000, 101000, 99000, 100800, 60, "s")
    down = minute_path(100000, 101000, 99000, 99200, 60, "s")
    assert up.index(99000) < up.index(101000)
    assert down.index(101000) < down.index(99000)


def test_the_same_seed_gives_the_same_path_and_another_seed_another() -> None:
    bar = (2172775, 2173735, 2170180, 2171200)
    first = minute_path(*bar, 60, path_seed(1, 256265, 1704080700))
    again = minute_path(*bar, 60, path_seed(1, 256265, 1704080700))
    other = minute_path(*bar, 60, path_seed(2, 256265, 1704080700))
    assert first == again
    assert first != other


@pytest.mark.parametrize(
    ("bar", "count"),
    [((100, 90, 95, 100), 60), ((100, 110, 101, 100), 60), ((100, 110, 90, 100), 3)],
)
def test_an_inconsistent_bar_or_too_few_ticks_is_refused(
    bar: tuple[int, int, int, int], count: int
) -> None:
    with pytest.raises(ValueError):
        minute_path(*bar, count, "s")


def test_every_bar_of_a_real_day_is_reproduced_exactly() -> None:
    bars = [
        b
        for b in read_bars(BUNDLED_DATA_DIR / "niftybank_index_1m_2024-01-01_2024-08-23.csv.gz")
        if b.start.date().isoformat()
        == "2024-06-04"  # election results: the widest bars of the year
    ]
    assert len(bars) == 375
    for bar in bars:
        expected = (to_paise(bar.open), to_paise(bar.high), to_paise(bar.low), to_paise(bar.close))
        path = minute_path(*expected, 60, path_seed(7, 260105, int(bar.start.timestamp())))
        assert ohlc_of(path) == expected, bar
