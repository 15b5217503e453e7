"""All the candle builders of a Consumer: one per (instrument, timeframe), made on first tick.

The service feeds every tick of its partitions to `update`, calls `on_time(now)` on a timer (a
second or so) to close illiquid instruments' buckets, and drains `take_gaps` / `take_rejects`.
Candles come out per instrument in time order; nothing here does IO.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from services.consumer.buckets import SessionsOf, regular_sessions
from services.consumer.builder_state import BuilderState, encode_instrument_states
from services.consumer.candles import CandleBuilder, CandleGap, RejectedTick
from shared.messages import Candle, Tick, Timeframe


class CandleBook:
    """Builders for every subscribed instrument and timeframe."""

    def __init__(
        self,
        timeframes: Iterable[Timeframe],
        *,
        sessions_of: SessionsOf | None = None,
        grace_s: float = 2.0,
        revision_window_s: float = 600.0,
    ) -> None:
        self.timeframes: tuple[Timeframe, ...] = tuple(dict.fromkeys(timeframes))
        if not self.timeframes:
            raise ValueError("a candle book needs at least one timeframe")
        self._sessions_of = sessions_of or regular_sessions()
        self._grace_s = grace_s
        self._revision_window_s = revision_window_s
        self._builders: dict[int, tuple[CandleBuilder, ...]] = {}
        self._with_records: set[CandleBuilder] = set()  # builders holding gaps or rejects

    def update(self, tick: Tick) -> list[Candle]:
        """Add a tick to its instrument's builders; returns the candles that closed or revised."""
        builders = self._builders.get(tick.instrument_token)
        if builders is None:
            builders = self._builders[tick.instrument_token] = tuple(
                CandleBuilder(
                    tick.instrument_token,
                    tick.symbol,
                    timeframe,
                    sessions_of=self._sessions_of,
                    grace_s=self._grace_s,
                    revision_window_s=self._revision_window_s,
                    with_records=self._with_records,
                )
                for timeframe in self.timeframes
            )
        closed: list[Candle] = []
        for builder in builders:
            candles = builder.update(tick)
            if candles:
                closed.extend(candles)
        return closed

    def on_time(self, now: datetime) -> list[Candle]:
        """Close every bucket whose end plus grace has passed."""
        closed: list[Candle] = []
        for builders in self._builders.values():
            for builder in builders:
                candles = builder.on_time(now)
                if candles:
                    closed.extend(candles)
        return closed

    def take_gaps(self) -> list[CandleGap]:
        """Gaps found by every builder since the last call (in builder order; cheap when there
        are none: only builders that recorded something are visited)."""
        if not self._with_records:
            return []
        gaps = [g for b in self._recording() for g in b.take_gaps()]
        self._forget_drained()
        return gaps

    def take_rejects(self) -> list[RejectedTick]:
        """Rejected ticks of every builder since the last call."""
        if not self._with_records:
            return []
        rejects = [r for b in self._recording() for r in b.take_rejects()]
        self._forget_drained()
        return rejects

    def _recording(self) -> list[CandleBuilder]:
        order = {tf: n for n, tf in enumerate(self.timeframes)}
        return sorted(self._with_records, key=lambda b: (b.instrument_token, order[b.timeframe]))

    def _forget_drained(self) -> None:
        # In place: the builders hold this very set.
        for builder in [b for b in self._with_records if not b.has_records()]:
            self._with_records.discard(builder)

    def drop(self, instrument_token: int) -> None:
        """Forget an instrument (unsubscribed, or its partition moved to another replica)."""
        for builder in self._builders.pop(instrument_token, ()):
            self._with_records.discard(builder)

    def state_of(self, instrument_token: int) -> tuple[BuilderState, ...]:
        """The checkpoint state of one instrument's builders (empty before its first tick)."""
        return tuple(b.state() for b in self._builders.get(instrument_token, ()))

    def encoded_state_of(self, instrument_token: int) -> bytes:
        """`encode_instrument(state_of(token))`, reusing each builder's encoded closed buckets."""
        return encode_instrument_states(
            [b.encoded_state() for b in self._builders.get(instrument_token, ())]
        )

    def restore(self, states: Iterable[BuilderState]) -> int:
        """Continue one instrument's builders from checkpointed states; a timeframe this book
        does not build is ignored and one it builds without a state starts fresh. Returns the
        number of builders restored."""
        by_timeframe = {s.timeframe: s for s in states}
        if not by_timeframe:
            return 0
        first = next(iter(by_timeframe.values()))
        restored = 0
        builders: list[CandleBuilder] = []
        for timeframe in self.timeframes:
            state = by_timeframe.get(timeframe)
            if state is not None:
                restored += 1
                builders.append(
                    CandleBuilder.restore(
                        state,
                        sessions_of=self._sessions_of,
                        grace_s=self._grace_s,
                        revision_window_s=self._revision_window_s,
                        with_records=self._with_records,
                    )
                )
            else:
                builders.append(
                    CandleBuilder(
                        first.instrument_token,
                        first.symbol,
                        timeframe,
                        sessions_of=self._sessions_of,
                        grace_s=self._grace_s,
                        revision_window_s=self._revision_window_s,
                        with_records=self._with_records,
                    )
                )
        self._builders[first.instrument_token] = tuple(builders)
        return restored

    def tokens(self) -> list[int]:
        """Every instrument with builders."""
        return list(self._builders)

    def builders(self, instrument_token: int) -> tuple[CandleBuilder, ...]:
        """The builders of one instrument (empty before its first tick)."""
        return self._builders.get(instrument_token, ())

    def __len__(self) -> int:
        return len(self._builders)
