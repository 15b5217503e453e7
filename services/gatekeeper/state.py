"""What the risk engine decides on: a plain state object the async shell keeps current.

The shell fills `instruments` from the instruments dump, `quotes` and the book's marks from the
ticks stream, `chains` from instruments + quotes of the underlyings' options, `available_margin`
from the broker (live), `decided` from today's decided intents in ClickHouse, and
`kill_switch.state` from Redis (KILL_SWITCH_KEY) on start, `halt_reason` from the HALT state
(HALT_KEY and Control messages). Everything else is built fresh.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from services.gatekeeper.options import OptionQuote
from services.gatekeeper.positions import PositionBook
from services.gatekeeper.pricing import PriceBand
from services.gatekeeper.risk.circuit_breaker import CircuitBreaker
from services.gatekeeper.risk.intent_queue import IntentQueue
from services.gatekeeper.risk.kill_switch import KillSwitch, KillSwitchState
from services.gatekeeper.risk.token_bucket import OrderRateLimiter
from services.gatekeeper.settings import GatekeeperSettings
from shared.messages import OptionType


@dataclass(frozen=True)
class InstrumentInfo:
    """One tradable instrument (a row of Kite's instruments dump plus exchange limits)."""

    symbol: str  # "NSE:RELIANCE", "NFO:NIFTY24AUG24500CE"
    instrument_token: int
    lot_size: int = 1
    tick_size: float = 0.05
    freeze_qty: int | None = None
    segment: str = "NSE"  # Kite's segment: NSE, NFO-OPT, NFO-FUT, BSE, BFO-OPT, INDICES
    underlying: str | None = None  # Kite's `name`: NIFTY, BANKNIFTY, RELIANCE
    expiry: date | None = None
    strike: float | None = None
    option_type: OptionType | None = None
    price_band: PriceBand | None = None  # equity circuit limits; F&O bands are computed
    margin_per_lot: float | None = None  # broker's margin for one lot (short options, futures)

    @property
    def is_derivative(self) -> bool:
        return self.segment.startswith(("NFO", "BFO", "MCX", "CDS"))

    @property
    def tradable(self) -> bool:
        return self.segment != "INDICES"


@dataclass(frozen=True)
class Quote:
    """The latest price of an instrument; `reference_price` feeds the F&O price band."""

    last_price: float
    ts: datetime
    reference_price: float | None = None


@dataclass(frozen=True)
class OptionChain:
    """An underlying's option contracts with their quotes, as of `ts`."""

    underlying: str  # Kite `name`: NIFTY
    quotes: tuple[OptionQuote, ...]
    ts: datetime


@dataclass
class RiskState:
    book: PositionBook
    kill_switch: KillSwitch
    breaker: CircuitBreaker
    limiter: OrderRateLimiter
    queue: IntentQueue
    decided: set[str] = field(default_factory=set)
    instruments: dict[str, InstrumentInfo] = field(default_factory=dict)
    quotes: dict[str, Quote] = field(default_factory=dict)
    chains: dict[str, OptionChain] = field(default_factory=dict)
    available_margin: float | None = None
    halt_reason: str | None = None  # set while a HALT is in force: entries are denied, exits run

    @classmethod
    def fresh(
        cls, settings: GatekeeperSettings, kill_switch: KillSwitchState | None = None
    ) -> RiskState:
        """A new day's state from settings (and the persisted kill switch)."""
        return cls(
            book=PositionBook(),
            kill_switch=KillSwitch(settings.kill_switch_loss_pct, kill_switch),
            breaker=CircuitBreaker(
                settings.breaker_failures, settings.breaker_window_s, settings.breaker_cooldown_s
            ),
            limiter=OrderRateLimiter.build(
                settings.orders_per_second,
                settings.orders_burst,
                settings.broker_orders_per_second,
                settings.broker_orders_per_minute,
                settings.broker_orders_per_day,
            ),
            queue=IntentQueue(settings.queue_size, settings.queue_max_wait_s),
        )
