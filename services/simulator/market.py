"""The market as every client sees it: the replayed indices and the modelled derivatives.

`Market.snapshot` gives any instrument's current tick (the same values the ticker sends and the
quote endpoint shows); a derivative ticks whenever its underlying does, at the underlying's tick
time. Derivative day highs, lows and volumes are running values that never go backwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.simulator.instruments import Instrument, InstrumentUniverse, Underlying
from services.simulator.pricing import PricingModel
from services.simulator.replay import DayReplay, UnderlyingState
from services.simulator.ticker_packets import TickSnapshot


@dataclass(slots=True)
class _DerivedDay:
    open: float
    close: float
    open_interest: int
    high: float
    low: float
    volume: int
    spot_extremes: tuple[float, float] = (0.0, 0.0)  # the underlying high/low last priced


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
        return self._derived_snapshot(instrument, state, stamp)

    def _derived_snapshot(
        self, instrument: Instrument, state: UnderlyingState, stamp: int
    ) -> TickSnapshot:
        model = self.model
        underlying = self.underlyings[instrument.underlying_token]
        at = state.last_epoch
        ltp = model.price(instrument, underlying, state.last_price, at)
        weight = model.activity_weight(instrument, underlying, state.last_price, at)
        volume = model.volume(instrument, weight, self.session_fraction(at))
        day = self._derived.get(instrument.instrument_token)
        if day is None:
            open_ = model.price(instrument, underlying, state.open, state.open_epoch)
            close = (
                model.price(instrument, underlying, state.close, self.previous_close_epoch)
                if state.close > 0
                else 0.0
            )
            open_weight = model.activity_weight(instrument, underlying, state.open, at)
            day = _DerivedDay(
                open_, close, model.open_interest(instrument, open_weight), open_, open_, 0
            )
            self._derived[instrument.instrument_token] = day
        if day.spot_extremes != (state.high, state.low):
            # Re-price the day's extremes only when the underlying makes a new one: between
            # those, time decay only lowers what the old extreme is worth (the running max keeps).
            day.spot_extremes = (state.high, state.low)
            # Calls and futures rise with the underlying, puts fall: their extremes swap.
            rising = instrument.instrument_type != "PE"
            spot_high, spot_low = (state.high, state.low) if rising else (state.low, state.high)
            day.high = max(day.high, model.price(instrument, underlying, spot_high, at))
            day.low = min(day.low, model.price(instrument, underlying, spot_low, at))
        day.high = max(day.high, ltp)
        day.low = min(day.low, ltp)
        day.volume = max(day.volume, volume)
        bids, asks = model.depth(instrument, ltp, stamp)
        tick = model.tick_size
        average = round(round((day.open + day.high + day.low + ltp) / 4 / tick) * tick, 2)
        return TickSnapshot(
            instrument.instrument_token,
            ltp,
            last_quantity=model.last_quantity(instrument, stamp),
            average_price=average,
            volume=day.volume,
            buy_quantity=8 * sum(b.quantity for b in bids),
            sell_quantity=8 * sum(a.quantity for a in asks),
            open=day.open,
            high=day.high,
            low=day.low,
            close=day.close,
            last_trade_time=stamp,
            oi=day.open_interest,
            oi_day_high=day.open_interest,
            oi_day_low=day.open_interest,
            exchange_timestamp=stamp,
            bids=bids,
            asks=asks,
        )
