"""Modelled prices, volumes and depth for instruments without real data (futures and options).

- Futures: the index carried to expiry, F = S x exp(carry x t).
- Options: Black-76 on that forward with the underlying's volatility from settings, discounted at
  the risk-free rate; premiums are rounded to the tick and never below one tick.
- Volume: an at-the-money contract trades `daily_volume_lots` a day, spread evenly over the
  session; away from the money it falls off like a normal density in standard deviations.
- Depth: 5 levels each side around the last price, quantities a pure function of (seed, token,
  second) so replays are repeatable.
Every modelled number is labelled as such by `model_note` (shown in quotes and the README).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from datetime import date, datetime

from services.simulator.instruments import EXPIRY_TIME, Instrument, Underlying
from services.simulator.ticker_packets import DEPTH_LEVELS, DepthEntry
from shared import black76
from shared.clock import IST

SECONDS_PER_YEAR = 365.0 * 24 * 3600
DEPTH_PATTERNS = 64
EMPTY_LEVEL = DepthEntry(0, 0.0, 0)
_MASK = 0xFFFFFFFF


def mix(*values: int) -> int:
    """A cheap, stable 32-bit hash of integers (depth quantities, last quantities)."""
    h = 0x811C9DC5
    for v in values:
        h = mix_in(h, v)
    return h


def mix_in(h: int, value: int) -> int:
    """One more integer into a `mix` hash: mix(a, b, c) == mix_in(mix(a, b), c)."""
    h = ((h ^ (value & _MASK)) * 0x01000193) & _MASK
    h ^= h >> 15
    h = (h * 0x2C1B3C6D) & _MASK
    return h ^ (h >> 12)


@dataclass(frozen=True, slots=True)
class Contract:
    """The facts of a future or option the model prices, looked up once per instrument."""

    strike: float
    volatility: float  # the underlying's
    expiry_epoch: float  # -inf without an expiry (nothing left to carry)
    kind: str  # FUT, CE or PE
    is_option: bool
    lot_size: int


@dataclass(frozen=True, slots=True)
class ExpiryTerms:
    """What every contract of one expiry shares at one moment."""

    years: float  # to expiry, never below 0
    growth: float  # exp(carry x years): forward = spot x growth
    weight_root: float  # sqrt(years), at least one day's worth: the activity fall-off's scale


@dataclass(frozen=True, slots=True)
class DepthBook:
    """An instrument's depth patterns laid out for the ticker: per pattern, the quantity, a zero
    price and the orders of 5 bids then 5 asks, and the summed bid and ask quantities."""

    wire: tuple[tuple[int, ...], ...]
    bid_quantity: tuple[int, ...]
    ask_quantity: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PricingModel:
    """The stated model behind every derivative price the simulator shows."""

    risk_free_rate: float
    carry_rate: float
    tick_size: float
    daily_volume_lots: int
    open_interest_lots: int
    spread_ticks: int
    step_ticks: int
    max_lots_per_level: int
    seed: int
    _books: dict[int, DepthBook] = field(default_factory=dict, compare=False)

    # The replay prices many contracts of few expiries at each moment: `contract`,
    # `expiry_terms`, `contract_price` and `contract_weight` let it share the per-expiry work;
    # `price` and `activity_weight` are the same arithmetic for one instrument.

    def contract(self, instrument: Instrument, underlying: Underlying) -> Contract:
        expiry = -math.inf if instrument.expiry is None else _expiry_epoch(instrument.expiry)
        return Contract(
            instrument.strike,
            underlying.volatility,
            expiry,
            instrument.instrument_type,
            instrument.is_option,
            instrument.lot_size,
        )

    def expiry_terms(self, expiry_epoch: float, epoch: float) -> ExpiryTerms:
        years = max(expiry_epoch - epoch, 0.0) / SECONDS_PER_YEAR
        return ExpiryTerms(
            years, math.exp(self.carry_rate * years), math.sqrt(max(years, 1.0 / 365))
        )

    def years_to_expiry(self, instrument: Instrument, epoch: float) -> float:
        if instrument.expiry is None:
            return 0.0
        return max(_expiry_epoch(instrument.expiry) - epoch, 0.0) / SECONDS_PER_YEAR

    def fair_value(
        self, instrument: Instrument, underlying: Underlying, spot: float, epoch: float
    ) -> float:
        """The unrounded model price of a future or option for an underlying price at `epoch`."""
        contract = self.contract(instrument, underlying)
        return self.contract_value(contract, spot, self.expiry_terms(contract.expiry_epoch, epoch))

    def contract_value(self, contract: Contract, spot: float, terms: ExpiryTerms) -> float:
        """The unrounded price: the forward for a future, Black-76 on it for an option."""
        forward = spot * terms.growth
        if contract.kind == "FUT":
            return forward
        kind: black76.OptionKind = "CE" if contract.kind == "CE" else "PE"
        return black76.price(
            forward, contract.strike, terms.years, contract.volatility, self.risk_free_rate, kind
        )

    def price(
        self, instrument: Instrument, underlying: Underlying, spot: float, epoch: float
    ) -> float:
        """The model price on the tick grid; an option is never quoted below one tick."""
        contract = self.contract(instrument, underlying)
        return self.contract_price(contract, spot, self.expiry_terms(contract.expiry_epoch, epoch))

    def contract_price(self, contract: Contract, spot: float, terms: ExpiryTerms) -> float:
        """`price` with the contract and the expiry's terms already at hand."""
        value = self.contract_value(contract, spot, terms)
        ticks = max(round(value / self.tick_size), 1 if contract.is_option else 0)
        return round(ticks * self.tick_size, 2)

    def activity_weight(
        self, instrument: Instrument, underlying: Underlying, spot: float, epoch: float
    ) -> float:
        """1 at the money (and for futures), falling off with distance in standard deviations."""
        contract = self.contract(instrument, underlying)
        return self.contract_weight(contract, spot, self.expiry_terms(contract.expiry_epoch, epoch))

    def contract_weight(self, contract: Contract, spot: float, terms: ExpiryTerms) -> float:
        """`activity_weight` with the contract and the expiry's terms already at hand."""
        if not contract.is_option:
            return 1.0
        distance = math.log(contract.strike / spot) / (contract.volatility * terms.weight_root)
        return math.exp(-0.5 * distance * distance)

    def volume(self, instrument: Instrument, weight: float, session_fraction: float) -> int:
        """Cumulative day volume (contracts, a multiple of the lot) at a fraction of the session."""
        return self.volume_lots(weight, session_fraction) * instrument.lot_size

    def volume_lots(self, weight: float, session_fraction: float) -> int:
        return int(self.daily_volume_lots * weight * min(max(session_fraction, 0.0), 1.0))

    def open_interest(self, instrument: Instrument, weight: float) -> int:
        return int(self.open_interest_lots * weight) * instrument.lot_size

    def last_quantity(self, instrument: Instrument, second: int) -> int:
        return instrument.lot_size * (1 + mix(self.seed, instrument.instrument_token, second) % 4)

    def last_quantity_hash(self, instrument: Instrument) -> int:
        """The part of `last_quantity`'s hash fixed per instrument: lot x (1 + mix_in(it,
        second) % 4) is the last quantity."""
        return mix(self.seed, instrument.instrument_token)

    def depth(
        self, instrument: Instrument, last_price: float, second: int
    ) -> tuple[tuple[DepthEntry, ...], tuple[DepthEntry, ...]]:
        """5 bids below and 5 asks above the last price; levels at or below zero are empty.

        Quantities come from a per-instrument cycle of DEPTH_PATTERNS seeded patterns, indexed
        by the second: repeatable, and cheap on the hot path.
        """
        row = self.depth_book(instrument).wire[second % DEPTH_PATTERNS]
        bids = []
        asks = []
        for level, offset in enumerate(self.depth_offsets()):
            bid_price = round(last_price - offset, 2)
            bid, ask = 3 * level, 3 * (DEPTH_LEVELS + level)
            bids.append(
                DepthEntry(row[bid], bid_price, row[bid + 2]) if bid_price > 0 else EMPTY_LEVEL
            )
            asks.append(DepthEntry(row[ask], round(last_price + offset, 2), row[ask + 2]))
        return tuple(bids), tuple(asks)

    def depth_offsets(self) -> tuple[float, ...]:
        """How far each depth level is from the last price, nearest first (rupees)."""
        tick = self.tick_size
        spread, step = self.spread_ticks * tick, self.step_ticks * tick
        return tuple(spread + level * step for level in range(DEPTH_LEVELS))

    def depth_book(self, instrument: Instrument) -> DepthBook:
        """The instrument's DEPTH_PATTERNS seeded depth patterns (see `DepthBook`), built once."""
        book = self._books.get(instrument.instrument_token)
        if book is None:
            book = self._books[instrument.instrument_token] = self._depth_book(instrument)
        return book

    def _depth_book(self, instrument: Instrument) -> DepthBook:
        token, lot = instrument.instrument_token, instrument.lot_size
        wire: list[tuple[int, ...]] = []
        bid_quantity: list[int] = []
        ask_quantity: list[int] = []
        of_token = mix(self.seed, token)
        for cycle in range(DEPTH_PATTERNS):
            # Pattern levels alternate bid, ask: 2 x level is a bid, 2 x level + 1 its ask.
            quantities: list[int] = []
            orders: list[int] = []
            of_cycle = mix_in(of_token, cycle)
            for level in range(2 * DEPTH_LEVELS):
                # mix(seed, token, cycle, level), its common prefix hashed once
                lots = 1 + mix_in(of_cycle, level) % self.max_lots_per_level
                quantities.append(lots * lot)
                orders.append(1 + lots // 3)
            row: list[int] = []
            for level in (*range(0, 2 * DEPTH_LEVELS, 2), *range(1, 2 * DEPTH_LEVELS, 2)):
                row += (quantities[level], 0, orders[level])
            wire.append(tuple(row))
            bid_quantity.append(sum(quantities[0::2]))
            ask_quantity.append(sum(quantities[1::2]))
        return DepthBook(tuple(wire), tuple(bid_quantity), tuple(ask_quantity))


@functools.lru_cache(maxsize=256)
def _expiry_epoch(expiry: date) -> float:
    return datetime.combine(expiry, EXPIRY_TIME, IST).timestamp()


def model_note(instrument: Instrument, underlying: Underlying, model: PricingModel) -> str:
    """Where a price comes from: the real data or the stated model."""
    if instrument.is_index:
        return "real: replayed 1-minute bars with a seeded tick path inside each minute"
    if instrument.instrument_type == "FUT":
        return (
            f"modelled: {underlying.symbol} x exp({model.carry_rate:g} x years to expiry); "
            "volume, OI and depth modelled"
        )
    return (
        f"modelled: Black-76 on the {underlying.symbol} forward (carry {model.carry_rate:g}), "
        f"volatility {underlying.volatility:g}, rate {model.risk_free_rate:g}; "
        "volume, OI and depth modelled"
    )
