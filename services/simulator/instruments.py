"""The simulated instrument master: two indices, their futures and weekly and monthly options.

Tokens follow Kite's layout (`exchange_token << 8 | segment`): NIFTY 50 is 256265 and NIFTY BANK
260105 (segment 9, indices); derivatives are numbered from a fixed base in a stable order, so a
given day and settings always give the same tokens. Expiries fall on the configured weekday, moved
to the previous trading day when that is a holiday; the last one of a month is the monthly expiry
(symbol NIFTY24AUG24500CE) and the others are weeklies (NIFTY2482224500CE).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from shared.calendar import NseCalendar
from shared.clock import IST

NFO_SEGMENT = 2
FIRST_NFO_EXCHANGE_TOKEN = 35001
EXPIRY_TIME = time(15, 30)
CSV_COLUMNS = [
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
]
_WEEKLY_MONTH_CODES = "123456789OND"


@dataclass(frozen=True, slots=True)
class Underlying:
    """An index whose real bars are replayed, with its derivative contract specification."""

    token: int
    symbol: str  # "NIFTY 50"
    name: str  # "NIFTY": the derivatives' name and symbol root
    lot_size: int
    freeze_quantity: int
    strike_step: float
    expiry_weekday: int
    volatility: float


@dataclass(frozen=True, slots=True)
class Instrument:
    """One row of the instrument master plus what the simulator needs to price and check it."""

    instrument_token: int
    exchange_token: int
    tradingsymbol: str
    name: str
    expiry: date | None
    strike: float
    tick_size: float
    lot_size: int
    instrument_type: str  # EQ for the index rows (as Kite lists them), FUT, CE, PE
    segment: str  # INDICES, NFO-FUT, NFO-OPT
    exchange: str  # NSE, NFO
    underlying_token: int
    freeze_quantity: int

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"

    @property
    def is_index(self) -> bool:
        return self.segment == "INDICES"

    @property
    def is_option(self) -> bool:
        return self.instrument_type in ("CE", "PE")

    @property
    def expires_at(self) -> datetime | None:
        return None if self.expiry is None else datetime.combine(self.expiry, EXPIRY_TIME, IST)


def trading_day_on_or_before(day: date, calendar: NseCalendar) -> date:
    """The expiry moves to the previous trading day when its date is a holiday."""
    while not calendar.is_trading_day(day):
        day -= timedelta(days=1)
    return day


def expiries(day: date, weekday: int, count: int, calendar: NseCalendar) -> list[date]:
    """The next `count` weekly expiry dates on or after `day`."""
    found: list[date] = []
    candidate = day + timedelta(days=(weekday - day.weekday()) % 7)
    while len(found) < count:
        adjusted = trading_day_on_or_before(candidate, calendar)
        if adjusted >= day:
            found.append(adjusted)
        candidate += timedelta(days=7)
    return found


def monthly_expiry(year: int, month: int, weekday: int, calendar: NseCalendar) -> date:
    """The last `weekday` of the month, moved back over holidays."""
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last = next_month - timedelta(days=1)
    last -= timedelta(days=(last.weekday() - weekday) % 7)
    return trading_day_on_or_before(last, calendar)


def monthly_expiries(day: date, weekday: int, count: int, calendar: NseCalendar) -> list[date]:
    """The next `count` monthly expiry dates on or after `day`."""
    found: list[date] = []
    year, month = day.year, day.month
    while len(found) < count:
        expiry = monthly_expiry(year, month, weekday, calendar)
        if expiry >= day:
            found.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def _strike_text(strike: float) -> str:
    return str(int(strike)) if strike == int(strike) else f"{strike:g}"


def future_symbol(name: str, expiry: date) -> str:
    return f"{name}{expiry:%y}{expiry:%b}".upper() + "FUT"


def option_symbol(name: str, expiry: date, strike: float, kind: str, monthly: bool) -> str:
    """Kite's symbol: NIFTY24AUG24500CE (monthly) or NIFTY2482224500CE (weekly, YYMDD)."""
    if monthly:
        stem = f"{name}{expiry:%y}{expiry:%b}".upper()
    else:
        stem = f"{name}{expiry:%y}{_WEEKLY_MONTH_CODES[expiry.month - 1]}{expiry:%d}"
    return f"{stem}{_strike_text(strike)}{kind}"


class InstrumentUniverse:
    """Every instrument of the simulated day, by token and by "EXCHANGE:SYMBOL"."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self.instruments = tuple(instruments)
        self.by_token = {i.instrument_token: i for i in self.instruments}
        self.by_key = {i.key: i for i in self.instruments}
        if len(self.by_token) != len(self.instruments) or len(self.by_key) != len(self.instruments):
            raise ValueError("duplicate instrument token or symbol")

    def lookup(self, ref: str) -> Instrument | None:
        """An instrument by "EXCHANGE:SYMBOL" or by its numeric token (both allowed by Kite)."""
        found = self.by_key.get(ref)
        if found is None and ref.isdigit():
            found = self.by_token.get(int(ref))
        return found

    def csv(self, exchange: str | None = None) -> str:
        """The instrument master as Kite's CSV, optionally one exchange only."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for i in self.instruments:
            if exchange is not None and i.exchange != exchange:
                continue
            writer.writerow(
                [
                    i.instrument_token,
                    i.exchange_token,
                    i.tradingsymbol,
                    i.name,
                    "0.0",
                    "" if i.expiry is None else i.expiry.isoformat(),
                    repr(float(i.strike)),
                    repr(float(i.tick_size)),
                    i.lot_size,
                    i.instrument_type,
                    i.segment,
                    i.exchange,
                ]
            )
        return out.getvalue()


def build_universe(
    underlyings: Sequence[tuple[Underlying, float]],
    day: date,
    calendar: NseCalendar,
    *,
    strikes_each_side: int,
    weekly_count: int,
    monthly_count: int,
    tick_size: float,
) -> InstrumentUniverse:
    """The day's instruments; strikes are centred on each underlying's reference price (its open)."""
    rows: list[Instrument] = []
    next_token = FIRST_NFO_EXCHANGE_TOKEN
    for underlying, reference in underlyings:
        rows.append(
            Instrument(
                underlying.token,
                underlying.token >> 8,
                underlying.symbol,
                underlying.symbol,
                None,
                0.0,
                0.0,
                0,
                "EQ",
                "INDICES",
                "NSE",
                underlying.token,
                0,
            )
        )
        months = monthly_expiries(day, underlying.expiry_weekday, monthly_count, calendar)
        weeks = expiries(day, underlying.expiry_weekday, weekly_count, calendar)
        atm = round(reference / underlying.strike_step) * underlying.strike_step
        strikes = [
            atm + k * underlying.strike_step
            for k in range(-strikes_each_side, strikes_each_side + 1)
        ]
        contracts: list[tuple[date, str, float, str, str]] = []
        for expiry in months:
            contracts.append(
                (expiry, "FUT", 0.0, future_symbol(underlying.name, expiry), "NFO-FUT")
            )
        for expiry in sorted(set(weeks) | set(months)):
            monthly = expiry in months
            for strike in strikes:
                for kind in ("CE", "PE"):
                    symbol = option_symbol(underlying.name, expiry, strike, kind, monthly)
                    contracts.append((expiry, kind, strike, symbol, "NFO-OPT"))
        for expiry, kind, strike, symbol, segment in contracts:
            rows.append(
                Instrument(
                    next_token << 8 | NFO_SEGMENT,
                    next_token,
                    symbol,
                    underlying.name,
                    expiry,
                    strike,
                    tick_size,
                    underlying.lot_size,
                    kind,
                    segment,
                    "NFO",
                    underlying.token,
                    underlying.freeze_quantity,
                )
            )
            next_token += 1
    return InstrumentUniverse(rows)
