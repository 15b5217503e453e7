"""The market as every client sees it: the replayed indices and the modelled derivatives.

`Market.snapshot` gives any instrument's current tick (the same values the ticker sends and the
quote endpoint shows); a derivative ticks whenever its underlying does, at the underlying's tick
time. Derivative day highs, lows and volumes are running values that never go backwards.
`Market.wire_tick` is the same tick as the integers of its packet, for the ticker's hot path: it
builds no snapshot, prices each expiry's shared terms once per moment and fills the depth from
per-instrument patterns in whole paise.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

from services.simulator.instruments import Instrument, InstrumentUniverse, Underlying
from services.simulator.pricing import DEPTH_PATTERNS, ExpiryTerms, PricingModel, mix_in
from services.simulator.replay import DayReplay, UnderlyingState
from services.simulator.ticker_packets import (
    DEPTH_LEVELS,
    TickSnapshot,
    WireTick,
    price_divisor,
    wire_values,
)

assert DEPTH_LEVELS == 5, "Market.wire_tick fills in the 5 levels of Kite's full packet"
# The wire values of the empty bid levels when only the first n are priced, by n.
EMPTY_BID_LEVELS = tuple([0] * 3 * (DEPTH_LEVELS - n) for n in range(DEPTH_LEVELS + 1))


@dataclass(slots=True)
class _DerivedDay:
    open: float
    close: float
    open_interest: int
    high: float
    low: float
    volume: int
    spot_high: float = 0.0  # the underlying high/low last priced
    spot_low: float = 0.0


class _Derivative:
    """What the hot path needs of one future or option, looked up once."""

    __slots__ = ("book", "contract", "divisor", "fast_depth", "instrument", "quantity_hash")

    def __init__(
        self, instrument: Instrument, underlying: Underlying, model: PricingModel, paise_depth: bool
    ) -> None:
        self.instrument = instrument
        self.contract = model.contract(instrument, underlying)
        self.quantity_hash = model.last_quantity_hash(instrument)
        self.book = model.depth_book(instrument)
        self.divisor = price_divisor(instrument.instrument_token)
        self.fast_depth = paise_depth and self.divisor == 100


class Market:
    """Snapshots of every instrument, from the replay state and the pricing model."""

    def __init__(
        self,
        replay: DayReplay,
        universe: InstrumentUniverse,
        underlyings: Sequence[Underlying],
        model: PricingModel,
        sessions: Sequence[tuple[float, float]],
        previous_close_epoch: float,
    ) -> None:
        self.replay = replay
        self.universe = universe
        self.underlyings = {u.token: u for u in underlyings}
        self.model = model
        self.sessions = tuple(sessions)
        self.previous_close_epoch = previous_close_epoch
        self._session_seconds = sum(close - open_ for open_, close in self.sessions) or 1.0
        self._derived: dict[int, _DerivedDay] = {}
        self._derivatives: dict[int, _Derivative] = {}
        # Depth levels' distances from the last price in paise, nearest first. Depth prices in
        # paise are the last price's -/+ these exactly when the distances lie on the paise grid
        # (the prices are rounded to it); otherwise wire ticks take the snapshot's floats.
        offsets = model.depth_offsets()
        self._offsets_paise = tuple(round(offset * 100) for offset in offsets)
        self._paise_depth = list(offsets) == sorted(offsets) and all(
            abs(offset * 100 - round(offset * 100)) < 1e-6 for offset in offsets
        )
        # Every derivative of an underlying ticks at the same moment: what depends only on the
        # moment (and the expiry) is worked out once for all of them.
        self._moment = math.nan
        self._moment_fraction = 0.0
        self._moment_terms: dict[float, ExpiryTerms] = {}

    def is_open(self, epoch: float) -> bool:
        """Whether the exchange is in a trading session (regular or special) at `epoch`."""
        return any(open_ <= epoch < close for open_, close in self.sessions)

    def session_fraction(self, epoch: float) -> float:
        """How much of the day's trading time has passed at `epoch`, 0..1."""
        elapsed = sum(max(0.0, min(epoch, close) - open_) for open_, close in self.sessions)
        return elapsed / self._session_seconds

    def reset(self) -> None:
        """Forget derived running values (after a seek)."""
        self._derived.clear()

    def underlying_state(self, instrument: Instrument) -> UnderlyingState | None:
        return self.replay.state(instrument.underlying_token)

    def last_price(self, instrument: Instrument) -> float | None:
        snapshot = self.snapshot(instrument)
        return None if snapshot is None else snapshot.last_price

    def snapshot(self, instrument: Instrument) -> TickSnapshot | None:
        """The instrument's current tick, or None before its underlying has ticked today."""
        state = self.replay.state(instrument.underlying_token)
        if state is None:
            return None
        stamp = int(state.last_epoch)
        if instrument.is_index:
            return TickSnapshot(
                instrument.instrument_token,
                state.last_price,
                open=state.open,
                high=state.high,
                low=state.low,
                close=state.close,
                exchange_timestamp=stamp,
                last_trade_time=stamp,
            )
        derivative = self._derivative(instrument)
        ltp, day, average, last_quantity = self._tick_derived(derivative, state, stamp)
        return self._snapshot(instrument, ltp, day, average, last_quantity, stamp)

    def _snapshot(
        self,
        instrument: Instrument,
        ltp: float,
        day: _DerivedDay,
        average: float,
        last_quantity: int,
        stamp: int,
    ) -> TickSnapshot:
        bids, asks = self.model.depth(instrument, ltp, stamp)
        return TickSnapshot(
            instrument.instrument_token,
            ltp,
            last_quantity,
            average,
            day.volume,
            8 * sum(b.quantity for b in bids),
            8 * sum(a.quantity for a in asks),
            day.open,
            day.high,
            day.low,
            day.close,
            stamp,
            day.open_interest,
            day.open_interest,
            day.open_interest,
            stamp,
            bids,
            asks,
        )

    def wire_tick(self, instrument: Instrument) -> WireTick | None:
        """`snapshot` as the integers of its full packet (`wire_values(snapshot)`), built without
        the snapshot: the replay's hot path. Moves the derived day values exactly as `snapshot`."""
        state = self.replay.state(instrument.underlying_token)
        if state is None:
            return None
        stamp = int(state.last_epoch)
        token = instrument.instrument_token
        derivative = self._derivatives.get(token)
        if derivative is None:
            if instrument.is_index:
                div = price_divisor(token)
                last, close = round(state.last_price * div), round(state.close * div)
                high, low = round(state.high * div), round(state.low * div)
                return [token, last, high, low, round(state.open * div), close, last - close, stamp]
            derivative = self._derivative(instrument)
        ltp, day, average, last_quantity = self._tick_derived(derivative, state, stamp)
        div = derivative.divisor
        ltp_units = round(ltp * div)
        if not derivative.fast_depth:
            return wire_values(self._snapshot(instrument, ltp, day, average, last_quantity, stamp))
        pattern = stamp % DEPTH_PATTERNS
        book = derivative.book
        oi = day.open_interest
        values = [
            token,
            ltp_units,
            last_quantity,
            round(average * div),
            day.volume,
            8 * book.bid_quantity[pattern],
            8 * book.ask_quantity[pattern],
            round(day.open * div),
            round(day.high * div),
            round(day.low * div),
            round(day.close * div),
            stamp,
            oi,
            oi,
            oi,
            stamp,
            *book.wire[pattern],
        ]
        # Prices of the 5 bids at 17, 20, .., 29 and of the 5 asks at 32, 35, .., 44 (one store
        # each is the cheapest way CPython has to fill them in).
        offsets = self._offsets_paise
        o0, o1, o2, o3, o4 = offsets
        values[17] = ltp_units - o0
        values[20] = ltp_units - o1
        values[23] = ltp_units - o2
        values[26] = ltp_units - o3
        values[29] = ltp_units - o4
        values[32] = ltp_units + o0
        values[35] = ltp_units + o1
        values[38] = ltp_units + o2
        values[41] = ltp_units + o3
        values[44] = ltp_units + o4
        if ltp_units <= o4:
            # Bids at or below zero are empty levels (all 0), left out of the total bid quantity.
            priced = bisect.bisect_left(offsets, ltp_units)
            values[16 + 3 * priced : 31] = EMPTY_BID_LEVELS[priced]
            values[5] = 8 * sum(values[16 : 16 + 3 * priced : 3])
        return values

    def _derivative(self, instrument: Instrument) -> _Derivative:
        derivative = self._derivatives.get(instrument.instrument_token)
        if derivative is None:
            underlying = self.underlyings[instrument.underlying_token]
            derivative = _Derivative(instrument, underlying, self.model, self._paise_depth)
            self._derivatives[instrument.instrument_token] = derivative
        return derivative

    def _terms(self, expiry_epoch: float, at: float) -> ExpiryTerms:
        """The expiry's terms at `at`, once per moment; a new moment also refreshes the session
        fraction (`_moment_fraction`)."""
        if at != self._moment:
            self._moment = at
            self._moment_fraction = self.session_fraction(at)
            self._moment_terms.clear()
        terms = self._moment_terms.get(expiry_epoch)
        if terms is None:
            terms = self._moment_terms[expiry_epoch] = self.model.expiry_terms(expiry_epoch, at)
        return terms

    def _tick_derived(
        self, derivative: _Derivative, state: UnderlyingState, stamp: int
    ) -> tuple[float, _DerivedDay, float, int]:
        """The derivative's last price, its day (moved on), average price and last quantity."""
        model = self.model
        contract = derivative.contract
        at = state.last_epoch
        spot = state.last_price
        terms = self._terms(contract.expiry_epoch, at)
        ltp = model.contract_price(contract, spot, terms)
        weight = model.contract_weight(contract, spot, terms)
        volume = model.volume_lots(weight, self._moment_fraction) * contract.lot_size
        token = derivative.instrument.instrument_token
        day = self._derived.get(token)
        if day is None:
            open_ = model.contract_price(
                contract, state.open, model.expiry_terms(contract.expiry_epoch, state.open_epoch)
            )
            close = (
                model.contract_price(
                    contract,
                    state.close,
                    model.expiry_terms(contract.expiry_epoch, self.previous_close_epoch),
                )
                if state.close > 0
                else 0.0
            )
            open_weight = model.contract_weight(contract, state.open, terms)
            day = _DerivedDay(
                open_,
                close,
                model.open_interest(derivative.instrument, open_weight),
                open_,
                open_,
                0,
            )
            self._derived[token] = day
        if day.spot_high != state.high or day.spot_low != state.low:
            # Re-price the day's extremes only when the underlying makes a new one: between
            # those, time decay only lowers what the old extreme is worth (the running max keeps).
            day.spot_high, day.spot_low = state.high, state.low
            # Calls and futures rise with the underlying, puts fall: their extremes swap.
            rising = contract.kind != "PE"
            spot_high, spot_low = (state.high, state.low) if rising else (state.low, state.high)
            day.high = max(day.high, model.contract_price(contract, spot_high, terms))
            day.low = min(day.low, model.contract_price(contract, spot_low, terms))
        # max/min keep the first of equal values: the same floats as max(day.high, ltp).
        if ltp > day.high:
            day.high = ltp
        if ltp < day.low:
            day.low = ltp
        if volume > day.volume:
            day.volume = volume
        tick = model.tick_size
        average = round(round((day.open + day.high + day.low + ltp) / 4 / tick) * tick, 2)
        quantity = contract.lot_size * (1 + mix_in(derivative.quantity_hash, stamp) % 4)
        return ltp, day, average, quantity
