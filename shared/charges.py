"""Zerodha's charges on one executed order, per segment, as data.

Every rate is a field with a default taken from Zerodha's published charges page for NSE (rates in
force from 1 Oct 2024: F&O STT and NSE transaction charges revised that day). Rates change: override
them through settings rather than editing code. The backtester and the simulator use the same model
so a backtest and a rehearsal against the simulator charge the same rupees.

What is charged (turnover = quantity x price; for options the price is the premium):
- brokerage: `min(turnover x brokerage_rate, brokerage_cap)`; a `brokerage_rate` of None means a
  flat `brokerage_cap` per executed order (options).
- STT/CTT: `turnover x stt_buy_rate` on a buy, `turnover x stt_sell_rate` on a sell.
- exchange transaction charge: `turnover x exchange_txn_rate` on both sides.
- SEBI turnover fee: `turnover x sebi_rate` (Rs 10 per crore) on both sides.
- stamp duty: `turnover x stamp_buy_rate` on the buy side only.
- GST: `gst_rate` on (brokerage + exchange transaction charge + SEBI fee).
Each component is rounded to the paisa (Zerodha's calculator shows two decimals; contract notes may
round STT to the rupee) and the total is the sum of the rounded components.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ChargeSegment = Literal["equity_intraday", "equity_delivery", "futures", "options"]
ChargeSide = Literal["BUY", "SELL"]


class SegmentRates(BaseModel):
    """The rates of one segment, all as fractions of turnover except the brokerage cap (rupees)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    brokerage_rate: float | None = Field(
        ge=0, description="fraction of turnover; None: flat brokerage_cap per executed order"
    )
    brokerage_cap: float = Field(ge=0, description="rupees per executed order (cap, or flat fee)")
    stt_buy_rate: float = Field(ge=0, description="STT on the buy side, fraction of turnover")
    stt_sell_rate: float = Field(ge=0, description="STT on the sell side, fraction of turnover")
    exchange_txn_rate: float = Field(ge=0, description="NSE transaction charge, both sides")
    stamp_buy_rate: float = Field(ge=0, description="stamp duty, buy side only")


def _equity_intraday() -> SegmentRates:
    # 0.03 % or Rs 20 whichever is lower; STT 0.025 % sell; NSE 0.00297 %; stamp 0.003 % buy.
    return SegmentRates(
        brokerage_rate=0.0003,
        brokerage_cap=20.0,
        stt_buy_rate=0.0,
        stt_sell_rate=0.00025,
        exchange_txn_rate=0.0000297,
        stamp_buy_rate=0.00003,
    )


def _equity_delivery() -> SegmentRates:
    # Zero brokerage; STT 0.1 % on both sides; NSE 0.00297 %; stamp 0.015 % buy.
    return SegmentRates(
        brokerage_rate=0.0,
        brokerage_cap=0.0,
        stt_buy_rate=0.001,
        stt_sell_rate=0.001,
        exchange_txn_rate=0.0000297,
        stamp_buy_rate=0.00015,
    )


def _futures() -> SegmentRates:
    # 0.03 % or Rs 20 whichever is lower; STT 0.02 % sell; NSE 0.00173 %; stamp 0.002 % buy.
    return SegmentRates(
        brokerage_rate=0.0003,
        brokerage_cap=20.0,
        stt_buy_rate=0.0,
        stt_sell_rate=0.0002,
        exchange_txn_rate=0.0000173,
        stamp_buy_rate=0.00002,
    )


def _options() -> SegmentRates:
    # Flat Rs 20 per executed order; STT 0.1 % of premium on sell; NSE 0.03503 % of premium;
    # stamp 0.003 % buy.
    return SegmentRates(
        brokerage_rate=None,
        brokerage_cap=20.0,
        stt_buy_rate=0.0,
        stt_sell_rate=0.001,
        exchange_txn_rate=0.0003503,
        stamp_buy_rate=0.00003,
    )


class ChargeSchedule(BaseModel):
    """Zerodha's schedule: rates per segment plus the SEBI fee and GST common to all of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    equity_intraday: SegmentRates = Field(default_factory=_equity_intraday)
    equity_delivery: SegmentRates = Field(default_factory=_equity_delivery)
    futures: SegmentRates = Field(default_factory=_futures)
    options: SegmentRates = Field(default_factory=_options)
    sebi_rate: float = Field(0.000001, ge=0, description="SEBI turnover fee, Rs 10 per crore")
    gst_rate: float = Field(0.18, ge=0, description="GST on brokerage + exchange + SEBI charges")

    def rates(self, segment: ChargeSegment) -> SegmentRates:
        """The rates of one segment."""
        rates: SegmentRates = getattr(self, segment)
        return rates


@dataclass(frozen=True, slots=True)
class Charges:
    """The charges of one executed order in rupees, each rounded to the paisa."""

    turnover: float
    brokerage: float
    stt: float
    exchange_txn: float
    sebi: float
    stamp_duty: float
    gst: float

    @property
    def total(self) -> float:
        """Everything the broker debits on top of the traded value."""
        return round(
            self.brokerage + self.stt + self.exchange_txn + self.sebi + self.stamp_duty + self.gst,
            2,
        )


def order_charges(
    schedule: ChargeSchedule,
    segment: ChargeSegment,
    side: ChargeSide,
    quantity: int,
    price: float,
) -> Charges:
    """The charges of one executed order of `quantity` at `price` (the premium for options)."""
    if quantity < 0 or price < 0:
        raise ValueError(f"quantity and price must be >= 0 (got {quantity}, {price})")
    if side not in ("BUY", "SELL"):
        raise ValueError(f"side must be BUY or SELL (got {side!r})")
    rates = schedule.rates(segment)
    turnover = quantity * price
    if turnover == 0:
        return Charges(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if rates.brokerage_rate is None:
        brokerage = rates.brokerage_cap
    else:
        brokerage = min(turnover * rates.brokerage_rate, rates.brokerage_cap)
    brokerage = round(brokerage, 2)
    stt_rate = rates.stt_buy_rate if side == "BUY" else rates.stt_sell_rate
    stt = round(turnover * stt_rate, 2)
    exchange_txn = round(turnover * rates.exchange_txn_rate, 2)
    sebi = round(turnover * schedule.sebi_rate, 2)
    stamp = round(turnover * rates.stamp_buy_rate, 2) if side == "BUY" else 0.0
    # GST on the components as the contract note shows them (already rounded).
    gst = round((brokerage + exchange_txn + sebi) * schedule.gst_rate, 2)
    return Charges(round(turnover, 2), brokerage, stt, exchange_txn, sebi, stamp, gst)
