"""What a strategy is: a name, a timeframe, a lookback, frozen parameters, and a pure decision.

A strategy object holds no per-instrument data. The engine asks it for a fresh `new_state()` per
instrument (or one per universe for a cross-sectional scanner) and then calls
`on_candle(candle, state)` for every CLOSED candle, in time order. The state is the strategy's
own incremental memory (indicators, last crossing, its belief of its position), so one decision
costs O(1) however long the history is. The live Consumer and the backtester run these very
classes through the same call.

`lookback` is how many candles the engine replays through `on_candle` (signals discarded) at
warm-up so that the state is ready when live candles arrive; it is also how many candles the
service keeps in memory per (instrument, timeframe).

A position a strategy "opened" during warm-up was never traded (its signal was dropped), so the
engine ends warm-up with `forget_position` (`forget_positions` for a scanner): the indicators stay
warm, the strategy is flat, and its first live decision is an entry, never an exit of a position
nobody holds. The backtester's warm-up (`BacktestConfig.live_from`) ends the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from shared.messages import Candle, Signal, Timeframe

# Kite's names of the option underlyings of the indices; an equity underlying is its symbol.
DEFAULT_UNDERLYINGS: dict[str, str] = {
    "NSE:NIFTY 50": "NIFTY",
    "NSE:NIFTY BANK": "BANKNIFTY",
    "NSE:NIFTY FIN SERVICE": "FINNIFTY",
    "NSE:NIFTY MID SELECT": "MIDCPNIFTY",
}


class StrategyParams(BaseModel):
    """Parameters common to every strategy; each strategy extends it with defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeframe: Timeframe = "15minute"
    lookback: int = Field(250, ge=1, description="candles replayed at warm-up and kept in memory")


class Strategy[P: StrategyParams, S](ABC):
    """A per-instrument strategy: one state per instrument, at most one signal per candle."""

    kind: ClassVar[str]
    params_model: ClassVar[type[StrategyParams]]

    def __init__(self, params: P, *, name: str | None = None) -> None:
        self.params = params
        self.name = name or self.kind
        self.timeframe: Timeframe = params.timeframe
        self.lookback = params.lookback

    @abstractmethod
    def new_state(self) -> S:
        """The empty incremental state of one instrument."""

    @abstractmethod
    def on_candle(self, candle: Candle, state: S) -> Signal | None:
        """Decide on a closed candle; updates `state` in place."""

    @abstractmethod
    def forget_position(self, state: S) -> str | None:
        """Make `state` flat, keeping its indicators (the end of warm-up); returns the position
        it believed it held (for the log), None when it was flat or has no position at all."""


class UniverseStrategy[P: StrategyParams, S](ABC):
    """A cross-sectional strategy: one state for its whole universe, several signals at once."""

    kind: ClassVar[str]
    params_model: ClassVar[type[StrategyParams]]

    def __init__(self, params: P, *, name: str | None = None) -> None:
        self.params = params
        self.name = name or self.kind
        self.timeframe: Timeframe = params.timeframe
        self.lookback = params.lookback

    @abstractmethod
    def new_state(self) -> S:
        """The empty incremental state of the whole universe."""

    @abstractmethod
    def on_candle(self, candle: Candle, state: S) -> list[Signal]:
        """Take one instrument's closed candle; returns the signals of any ranking it completed."""

    @abstractmethod
    def flush(self, state: S) -> list[Signal]:
        """Decide on a bucket still waiting for late members (end of data, end of session)."""

    @abstractmethod
    def forget_positions(self, state: S, symbols: Collection[str]) -> list[str]:
        """Make these members flat, keeping every indicator (the end of their warm-up); returns
        the members it believed it held, in symbol order."""


def underlying_of(symbol: str, names: dict[str, str]) -> str:
    """The option underlying of an instrument: the index name, or the equity's trading symbol."""
    return names.get(symbol) or symbol.partition(":")[2] or symbol


def gap_confidence(gap_pct: float, full_gap_pct: float) -> float:
    """0.5 for a bare crossing, rising linearly to 1.0 at a gap of `full_gap_pct` percent."""
    if full_gap_pct <= 0:
        return 1.0
    return 0.5 + 0.5 * min(1.0, gap_pct / full_gap_pct)
