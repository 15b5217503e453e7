"""The replay of one trading day: real 1-minute bars -> a timeline of tick moments.

A moment is one slot of the tick grid (ticks_per_minute slots per minute) with the price of every
underlying that has a bar in that minute. The cursor only moves forward through `advance_to`
(emitting moments) or jumps through `seek` (recomputing the day's state without emitting). Minutes
without a bar (a special session's break, the end of the day) produce nothing: gaps stay gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from services.simulator.market_data import MinuteBar
from services.simulator.tick_path import minute_path, path_seed, to_paise
from shared.clock import from_epoch_s


@dataclass(frozen=True, slots=True)
class UnderlyingDay:
    """The bars of one underlying on the simulated day and the previous session's close."""

    token: int
    bars: tuple[MinuteBar, ...]
    previous_close: float  # 0.0 when the previous session is missing from the data


@dataclass(slots=True)
class UnderlyingState:
    """The day so far of one underlying, in rupees; times as epoch seconds."""

    last_price: float
    open: float
    high: float
    low: float
    close: float  # the previous session's close
    open_epoch: float
    last_epoch: float


class Moment:
    """One slot of the tick grid: (token, price in rupees) for each underlying ticking then."""

    __slots__ = ("epoch", "prices")

    def __init__(self, epoch: float, prices: list[tuple[int, float]]) -> None:
        self.epoch = epoch
        self.prices = prices

    @property
    def at(self) -> datetime:
        return from_epoch_s(self.epoch)


class DayReplay:
    """Turns the day's bars into moments, deterministically for a given seed."""

    def __init__(
        self, days: Sequence[UnderlyingDay], ticks_per_minute: int, seed: int, tick_paise: int = 5
    ) -> None:
        self.days = {d.token: d for d in days}
        self.ticks_per_minute = ticks_per_minute
        self.seed = seed
        self.tick_paise = tick_paise
        self._slot_s = 60.0 / ticks_per_minute
        by_minute: dict[float, dict[int, MinuteBar]] = {}
        for d in days:
            for bar in d.bars:
                by_minute.setdefault(bar.start.timestamp(), {})[d.token] = bar
        self._minutes = sorted(by_minute)
        self._bars = [by_minute[m] for m in self._minutes]
        self._paths: dict[tuple[int, int], list[int]] = {}
        self._minute = 0
        self._slot = 0
        self._state: dict[int, UnderlyingState] = {}

    @property
    def first_epoch(self) -> float | None:
        return self._minutes[0] if self._minutes else None

    @property
    def end_epoch(self) -> float | None:
        """The end of the last bar of the day."""
        return self._minutes[-1] + 60.0 if self._minutes else None

    def path(self, token: int, minute_index: int) -> list[int]:
        """The tick prices (paise) of one underlying's bar, cached."""
        key = (token, minute_index)
        cached = self._paths.get(key)
        if cached is None:
            bar = self._bars[minute_index][token]
            cached = minute_path(
                to_paise(bar.open),
                to_paise(bar.high),
                to_paise(bar.low),
                to_paise(bar.close),
                self.ticks_per_minute,
                path_seed(self.seed, token, int(self._minutes[minute_index])),
                self.tick_paise,
            )
            self._paths[key] = cached
        return cached

    def next_epoch(self) -> float | None:
        """When the next moment happens, or None after the day's last tick."""
        if self._minute >= len(self._minutes):
            return None
        return self._minutes[self._minute] + self._slot * self._slot_s

    def advance_to(self, epoch: float, limit: int | None = None) -> list[Moment]:
        """Emit every moment at or before `epoch` (at most `limit`), updating the state."""
        moments: list[Moment] = []
        minutes, per_minute = self._minutes, self.ticks_per_minute
        while self._minute < len(minutes) and (limit is None or len(moments) < limit):
            at = minutes[self._minute] + self._slot * self._slot_s
            if at > epoch:
                break
            moments.append(self._emit(self._minute, self._slot, at))
            self._slot += 1
            if self._slot == per_minute:
                self._slot = 0
                self._minute += 1
        return moments

    def _emit(self, minute: int, slot: int, at: float) -> Moment:
        prices: list[tuple[int, float]] = []
        for token in self._bars[minute]:
            price = self.path(token, minute)[slot] / 100
            prices.append((token, price))
            state = self._state.get(token)
            if state is None:
                day = self.days[token]
                self._state[token] = UnderlyingState(
                    price, price, price, price, day.previous_close, at, at
                )
            else:
                state.last_price = price
                state.last_epoch = at
                if price > state.high:
                    state.high = price
                elif price < state.low:
                    state.low = price
        return Moment(at, prices)

    def seek(self, epoch: float) -> None:
        """Jump to `epoch` without emitting: the state is what it would be after replaying."""
        self._minute = self._slot = 0
        self._state.clear()
        minutes = self._minutes
        # Whole minutes before `epoch` go through their bars; the current one through its ticks.
        while self._minute < len(minutes) and minutes[self._minute] + 60.0 <= epoch:
            for token, bar in self._bars[self._minute].items():
                self._apply_bar(token, bar, minutes[self._minute])
            self._minute += 1
        self.advance_to(epoch)

    def _apply_bar(self, token: int, bar: MinuteBar, start: float) -> None:
        last = start + (self.ticks_per_minute - 1) * self._slot_s
        state = self._state.get(token)
        if state is None:
            day = self.days[token]
            self._state[token] = UnderlyingState(
                bar.close, bar.open, bar.high, bar.low, day.previous_close, start, last
            )
            return
        state.last_price = bar.close
        state.last_epoch = last
        state.high = max(state.high, bar.high)
        state.low = min(state.low, bar.low)

    def state(self, token: int) -> UnderlyingState | None:
        """The underlying's day so far, or None before its first tick."""
        return self._state.get(token)

    def minute_bars_until(self, token: int, epoch: float) -> list[MinuteBar]:
        """The day's 1-minute bars of `token` known at `epoch`: the current one only partly."""
        result: list[MinuteBar] = []
        for index, start in enumerate(self._minutes):
            bar = self._bars[index].get(token)
            if bar is None:
                continue
            if start + 60.0 <= epoch:
                result.append(bar)
                continue
            if start > epoch:
                break
            seen = int((epoch - start) // self._slot_s) + 1
            prices = self.path(token, index)[:seen]
            result.append(
                MinuteBar(
                    bar.start,
                    prices[0] / 100,
                    max(prices) / 100,
                    min(prices) / 100,
                    prices[-1] / 100,
                    bar.volume,
                )
            )
        return result
