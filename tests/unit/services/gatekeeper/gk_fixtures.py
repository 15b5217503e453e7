"""Builders shared by the Gatekeeper engine tests: settings, instruments, quotes, intents."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from msgspec.structs import replace

from services.gatekeeper.options import YEAR_S, OptionQuote, expiry_at
from services.gatekeeper.positions import Fill, PositionTerms
from services.gatekeeper.pricing import PriceBand
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.state import InstrumentInfo, OptionChain, Quote, RiskState
from shared import black76
from shared.clock import IST
from shared.messages import OptionType, OrderIntent

NOW = datetime(2024, 8, 1, 11, 0, tzinfo=IST)
WEEKLY = date(2024, 8, 8)
SPOT = 24_480.0
RELIANCE = "NSE:RELIANCE"
NIFTY = "NSE:NIFTY 50"


def market_hours(ts: datetime) -> bool:
    local = ts.astimezone(IST).time()
    return time(9, 15) <= local < time(15, 30)


def settings(**overrides: Any) -> GatekeeperSettings:
    values: dict[str, Any] = {"capital": 100_000.0}
    values.update(overrides)
    return GatekeeperSettings(_env_file=None, **values)


def option_contract(strike: float, kind: OptionType, vol: float = 0.15) -> OptionQuote:
    t = (expiry_at(WEEKLY, time(15, 30)) - NOW).total_seconds() / YEAR_S
    fair = black76.price(SPOT, strike, t, vol, 0.07, kind)
    mid = max(round(fair / 0.05) * 0.05, 0.10)
    return OptionQuote(
        symbol=f"NFO:NIFTY24AUG{int(strike)}{kind}",
        instrument_token=int(strike) * 10 + (1 if kind == "CE" else 2),
        expiry=WEEKLY,
        strike=strike,
        option_type=kind,
        lot_size=25,
        tick_size=0.05,
        ltp=round(mid, 2),
        bid=round(mid - 0.05, 2),
        ask=round(mid + 0.05, 2),
        volume=5_000,
        oi=50_000,
    )


def state(config: GatekeeperSettings, now: datetime = NOW) -> RiskState:
    risk = RiskState.fresh(config)
    risk.instruments[RELIANCE] = InstrumentInfo(
        RELIANCE, 738561, lot_size=1, tick_size=0.05, price_band=PriceBand.of(2205.0, 2695.0)
    )
    risk.instruments["NSE:INFY"] = InstrumentInfo("NSE:INFY", 408065, tick_size=0.05)
    risk.instruments[NIFTY] = InstrumentInfo(NIFTY, 256265, segment="INDICES", underlying="NIFTY")
    risk.instruments["NFO:BIGLOT"] = InstrumentInfo(
        "NFO:BIGLOT",
        99,
        lot_size=75,
        tick_size=0.05,
        freeze_qty=1800,
        segment="NFO-FUT",
        underlying="NIFTY",
        margin_per_lot=75.0 * 10,
    )
    risk.quotes[RELIANCE] = Quote(2450.0, now)
    risk.quotes["NSE:INFY"] = Quote(1500.0, now)
    risk.quotes[NIFTY] = Quote(SPOT, now)
    risk.quotes["NFO:BIGLOT"] = Quote(20.0, now)
    chain = tuple(
        option_contract(24_000.0 + 50 * i, kind) for i in range(21) for kind in ("CE", "PE")
    )
    for quote in chain:
        risk.instruments[quote.symbol] = InstrumentInfo(
            quote.symbol,
            quote.instrument_token,
            lot_size=25,
            tick_size=0.05,
            freeze_qty=1800,
            segment="NFO-OPT",
            underlying="NIFTY",
            expiry=WEEKLY,
            strike=quote.strike,
            option_type=quote.option_type,
        )
    risk.chains["NIFTY"] = OptionChain("NIFTY", chain, now)
    return risk


def intent(intent_id: str = "sig-1", **changes: Any) -> OrderIntent:
    base = OrderIntent(
        intent_id=intent_id,
        signal_id=intent_id,
        strategy="ema_crossover",
        symbol=RELIANCE,
        instrument_token=738561,
        side="BUY",
        order_type="MARKET",
        reference_price=2450.0,
        confidence=0.8,
        timeframe="minute",
        candle_start=NOW - timedelta(minutes=1),
        created_at=NOW - timedelta(seconds=1),
        reason="fast EMA crossed above slow EMA",
        stop_loss=2400.0,
        target=2550.0,
    )
    return replace(base, **changes)


def fill(
    risk: RiskState,
    symbol: str,
    side: str,
    quantity: int,
    price: float,
    n: int = 0,
    terms: PositionTerms | None = None,
) -> None:
    reason = risk.book.apply_fill(
        Fill(f"f{n}-{symbol}", f"o{n}", symbol, 1, side, quantity, price, NOW),  # type: ignore[arg-type]
        terms,
    )
    assert reason is None
