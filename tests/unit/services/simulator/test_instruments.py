"""Expiries over holidays, Kite's symbols, tokens and the instrument CSV."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from services.simulator.instruments import (
    Underlying,
    build_universe,
    expiries,
    future_symbol,
    monthly_expiries,
    option_symbol,
)
from shared.calendar import load_calendar

CALENDAR = load_calendar()
NIFTY = Underlying(256265, "NIFTY 50", "NIFTY", 25, 1800, 50.0, 3, 0.13)
BANK = Underlying(260105, "NIFTY BANK", "BANKNIFTY", 15, 900, 100.0, 2, 0.16)


@pytest.mark.parametrize(
    ("day", "weekday", "expected"),
    [
        (
            date(2024, 8, 12),
            3,
            [date(2024, 8, 14), date(2024, 8, 22), date(2024, 8, 29)],
        ),  # 15th: holiday
        (
            date(2024, 4, 8),
            3,
            [date(2024, 4, 10), date(2024, 4, 18), date(2024, 4, 25)],
        ),  # 11th: Eid
        (
            date(2024, 8, 22),
            3,
            [date(2024, 8, 22), date(2024, 8, 29), date(2024, 9, 5)],
        ),  # expiry day
        (
            date(2024, 7, 15),
            2,
            [date(2024, 7, 16), date(2024, 7, 24), date(2024, 7, 31)],
        ),  # 17th: Moharram
    ],
)
def test_weekly_expiries_move_back_over_holidays(
    day: date, weekday: int, expected: list[date]
) -> None:
    assert expiries(day, weekday, 3, CALENDAR) == expected


@pytest.mark.parametrize(
    ("day", "weekday", "expected"),
    [
        (date(2024, 8, 20), 3, [date(2024, 8, 29), date(2024, 9, 26), date(2024, 10, 31)]),
        (date(2024, 8, 30), 3, [date(2024, 9, 26), date(2024, 10, 31), date(2024, 11, 28)]),
        (
            date(2024, 3, 1),
            3,
            [date(2024, 3, 28), date(2024, 4, 25), date(2024, 5, 30)],
        ),  # 29 Mar: holiday
        (
            date(2024, 12, 2),
            2,
            [date(2024, 12, 24), date(2025, 1, 29), date(2025, 2, 25)],
        ),  # 25 Dec and 26 Feb are holidays
    ],
)
def test_monthly_expiries_are_the_last_weekday_of_the_month(
    day: date, weekday: int, expected: list[date]
) -> None:
    assert monthly_expiries(day, weekday, 3, CALENDAR) == expected


@pytest.mark.parametrize(
    ("expiry", "strike", "kind", "monthly", "symbol"),
    [
        (date(2024, 8, 29), 24500.0, "CE", True, "NIFTY24AUG24500CE"),
        (date(2024, 8, 22), 24500.0, "PE", False, "NIFTY2482224500PE"),
        (date(2024, 10, 3), 25000.0, "CE", False, "NIFTY24O0325000CE"),
        (date(2024, 11, 7), 24000.0, "CE", False, "NIFTY24N0724000CE"),
        (date(2024, 12, 5), 24000.0, "PE", False, "NIFTY24D0524000PE"),
    ],
)
def test_option_symbols_follow_kites_weekly_and_monthly_formats(
    expiry: date, strike: float, kind: str, monthly: bool, symbol: str
) -> None:
    assert option_symbol("NIFTY", expiry, strike, kind, monthly) == symbol


def test_future_symbol() -> None:
    assert future_symbol("BANKNIFTY", date(2024, 8, 28)) == "BANKNIFTY24AUGFUT"


def test_the_universe_has_indices_futures_weeklies_and_monthlies_with_stable_tokens() -> None:
    def build() -> list[tuple[int, str]]:
        universe = build_universe(
            [(NIFTY, 24650.4), (BANK, 50441.15)],
            date(2024, 8, 20),
            CALENDAR,
            strikes_each_side=2,
            weekly_count=2,
            monthly_count=2,
            tick_size=0.05,
        )
        return [(i.instrument_token, i.tradingsymbol) for i in universe.instruments]

    rows = build()
    assert rows == build()
    universe = build_universe(
        [(NIFTY, 24650.4)],
        date(2024, 8, 20),
        CALENDAR,
        strikes_each_side=2,
        weekly_count=2,
        monthly_count=2,
        tick_size=0.05,
    )
    assert universe.by_key["NSE:NIFTY 50"].instrument_token == 256265
    symbols = set(universe.by_key)
    assert {
        "NFO:NIFTY24AUGFUT",
        "NFO:NIFTY24SEPFUT",
        "NFO:NIFTY2482224650CE",
        "NFO:NIFTY24AUG24550PE",
    } <= symbols
    strikes = sorted({i.strike for i in universe.instruments if i.expiry == date(2024, 8, 22)})
    assert strikes == [24550.0, 24600.0, 24650.0, 24700.0, 24750.0]
    for instrument in universe.instruments:
        segment = instrument.instrument_token & 0xFF
        assert segment == (9 if instrument.is_index else 2)
        if not instrument.is_index:
            assert (instrument.lot_size, instrument.tick_size, instrument.freeze_quantity) == (
                25,
                0.05,
                1800,
            )
    assert universe.lookup("256265") is universe.by_key["NSE:NIFTY 50"]


def test_the_csv_has_kites_columns_and_a_numeric_strike_everywhere() -> None:
    universe = build_universe(
        [(NIFTY, 24650.4)],
        date(2024, 8, 20),
        CALENDAR,
        strikes_each_side=1,
        weekly_count=1,
        monthly_count=1,
        tick_size=0.05,
    )
    rows = list(csv.DictReader(io.StringIO(universe.csv())))
    assert list(rows[0]) == [
        "instrument_token", "exchange_token", "tradingsymbol", "name", "last_price", "expiry",
        "strike", "tick_size", "lot_size", "instrument_type", "segment", "exchange",
    ]  # fmt: skip
    assert rows[0]["tradingsymbol"] == "NIFTY 50" and rows[0]["segment"] == "INDICES"
    assert all(float(r["strike"]) >= 0 for r in rows)
    assert {r["exchange"] for r in csv.DictReader(io.StringIO(universe.csv("NFO")))} == {"NFO"}
