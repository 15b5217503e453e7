"""The whole simulated broker for one trading day, built from settings: no sockets, no asyncio.

`build_simulation` reads the data files once (cached per process) and wires the replay, the
market, the instruments, the order book, the account, the login sessions, rate limits and faults.
The async shell (service.py) only moves the clock and carries bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from services.simulator.account import Account, MarginRates
from services.simulator.auth import Credentials, Sessions
from services.simulator.faults import Faults
from services.simulator.historical import HistoricalData
from services.simulator.instruments import InstrumentUniverse, Underlying, build_universe
from services.simulator.market import Market
from services.simulator.market_data import (
    DataError,
    MinuteBar,
    bars_by_session_day,
    missing_days,
    read_bars_by_day,
    read_daily_bars,
)
from services.simulator.order_book import OrderBook
from services.simulator.pricing import PricingModel
from services.simulator.rate_limits import RateLimits
from services.simulator.replay import DayReplay, UnderlyingDay
from services.simulator.rms import BookRules
from services.simulator.settings import SimulatorSettings
from services.simulator.sim_clock import ReplayClock
from services.simulator.tick_path import ticks_per_minute
from shared.calendar import NseCalendar
from shared.clock import IST

logger = logging.getLogger(__name__)

NIFTY_TOKEN = 256265
BANKNIFTY_TOKEN = 260105


@dataclass(slots=True)
class Simulation:
    """Every piece of simulator state; methods of the pieces are pure (time passed in)."""

    settings: SimulatorSettings
    calendar: NseCalendar
    day: date
    underlyings: tuple[Underlying, ...]
    universe: InstrumentUniverse
    replay: DayReplay
    market: Market
    book: OrderBook
    sessions: Sessions
    limits: RateLimits
    faults: Faults
    historical: HistoricalData
    clock: ReplayClock
    gaps: tuple[date, ...]
    session_closed: bool = False

    @property
    def day_end_epoch(self) -> float:
        return self.market.sessions[-1][1]


def _underlyings(settings: SimulatorSettings) -> tuple[Underlying, Underlying]:
    s = settings
    return (
        Underlying(
            NIFTY_TOKEN,
            "NIFTY 50",
            "NIFTY",
            s.nifty_lot_size,
            s.nifty_freeze_quantity,
            s.nifty_strike_step,
            s.nifty_expiry_weekday,
            s.nifty_volatility,
        ),
        Underlying(
            BANKNIFTY_TOKEN,
            "NIFTY BANK",
            "BANKNIFTY",
            s.banknifty_lot_size,
            s.banknifty_freeze_quantity,
            s.banknifty_strike_step,
            s.banknifty_expiry_weekday,
            s.banknifty_volatility,
        ),
    )


def _previous_close(
    days: dict[date, tuple[MinuteBar, ...]], day: date, calendar: NseCalendar
) -> float:
    """The previous session's close, or 0.0 when that session is missing from the data."""
    previous = calendar.previous_trading_day(day)
    bars = days.get(previous)
    if bars is None:
        logger.warning("previous session %s is missing from the data: close unknown (0)", previous)
        return 0.0
    return bars[-1].close


def build_simulation(settings: SimulatorSettings, calendar: NseCalendar, wall: float) -> Simulation:
    """Everything for `settings.day`; DataError when that day is not in the data."""
    s = settings
    day = s.day
    underlyings = _underlyings(s)
    files = {NIFTY_TOKEN: s.nifty_minute_file, BANKNIFTY_TOKEN: s.banknifty_minute_file}
    minute_days = {
        token: bars_by_session_day(read_bars_by_day(s.data_path() / name), calendar)
        for token, name in files.items()
    }
    nifty_days = minute_days[NIFTY_TOKEN]
    gaps = tuple(missing_days(nifty_days, calendar, min(nifty_days), max(nifty_days)))
    if gaps:
        logger.info("the data lacks %s trading days (never filled): %s", len(gaps), gaps)
    for token, days in minute_days.items():
        if day not in days:
            why = "a known gap in the data" if day in gaps else calendar.describe(day)
            raise DataError(f"{day} has no bars for token {token} ({why}); pick a day in the data")
    replay_days = [
        UnderlyingDay(
            u.token, minute_days[u.token][day], _previous_close(minute_days[u.token], day, calendar)
        )
        for u in underlyings
    ]
    replay = DayReplay(
        replay_days, ticks_per_minute(s.ticks_per_second), s.seed, round(s.tick_size * 100)
    )
    universe = build_universe(
        [(u, minute_days[u.token][day][0].open) for u in underlyings],
        day,
        calendar,
        strikes_each_side=s.strikes_each_side,
        weekly_count=s.weekly_expiries,
        monthly_count=s.monthly_expiries,
        tick_size=s.tick_size,
    )
    model = PricingModel(
        s.risk_free_rate,
        s.futures_carry_rate,
        s.tick_size,
        s.derived_daily_volume_lots,
        s.derived_open_interest_lots,
        s.depth_spread_ticks,
        s.depth_step_ticks,
        s.depth_max_lots_per_level,
        s.seed,
    )
    sessions = [(x.open.timestamp(), x.close.timestamp()) for x in calendar.sessions(day)]
    previous_close = calendar.session_close(calendar.previous_trading_day(day))
    assert previous_close is not None
    market = Market(replay, universe, underlyings, model, sessions, previous_close.timestamp())
    account = Account(
        s.opening_cash, MarginRates(s.futures_margin_rate, s.short_option_margin_rate), s.charges
    )
    rules = BookRules(
        s.auto_market_protection_pct,
        s.price_band_threshold,
        s.price_band_pct,
        s.price_band_abs,
        s.max_modifications,
    )
    book = OrderBook(market, account, rules, day, s.user_id)
    book.reject_next = s.fault_reject_orders
    credentials = Credentials(
        s.api_key,
        s.api_secret.get_secret_value(),
        s.user_id,
        s.password.get_secret_value(),
        s.totp_secret.get_secret_value(),
    )
    limits = RateLimits(
        {
            "quote": s.rate_quote_per_s,
            "historical": s.rate_historical_per_s,
            "orders": s.rate_orders_per_s,
            "other": s.rate_other_per_s,
        },
        s.orders_per_minute,
        s.orders_per_day,
    )
    daily = {NIFTY_TOKEN: read_daily_bars(s.data_path() / s.nifty_daily_file)}
    historical = HistoricalData(minute_days, daily, day, replay.minute_bars_until)
    start = datetime.combine(day, s.start_time, IST).timestamp()
    faults = Faults()
    if s.fault_slow_response_ms:
        faults.apply({"slow_ms": float(s.fault_slow_response_ms)}, wall)
    return Simulation(
        s,
        calendar,
        day,
        underlyings,
        universe,
        replay,
        market,
        book,
        Sessions(credentials, s.request_token_ttl_s, s.token_expiry_time),
        limits,
        faults,
        historical,
        ReplayClock(start, s.speed, s.paused, wall),
        gaps,
    )
