"""The last N candles per (instrument, timeframe) kept in memory, N from the strategies' lookback.

Candles arrive in time order; a revision replaces the candle of the same start if it is still
held. The service uses it to serve recent history (and to re-warm a strategy) without a query.
"""

from __future__ import annotations

from collections import deque

from shared.messages import Candle, Timeframe

HistoryKey = tuple[str, Timeframe]


class CandleHistory:
    """Bounded candle windows per (symbol, timeframe)."""

    __slots__ = ("_default_depth", "_depths", "_windows")

    def __init__(self, depths: dict[HistoryKey, int], default_depth: int = 0) -> None:
        if any(d < 1 for d in depths.values()) or default_depth < 0:
            raise ValueError("history depths must be >= 1")
        self._depths = dict(depths)
        self._default_depth = default_depth
        self._windows: dict[HistoryKey, deque[Candle]] = {}

    def add(self, candle: Candle) -> bool:
        """Keep a candle; False when the key is not tracked or the candle is older than the window."""
        key = (candle.symbol, candle.timeframe)
        window = self._windows.get(key)
        if window is None:
            depth = self._depths.get(key, self._default_depth)
            if depth < 1:
                return False
            window = self._windows[key] = deque(maxlen=depth)
        if not window or candle.start > window[-1].start:
            window.append(candle)
            return True
        for i in range(len(window) - 1, -1, -1):
            held = window[i]
            if held.start == candle.start:
                if candle.revision >= held.revision:
                    window[i] = candle
                return True
            if held.start < candle.start:  # a revived gap candle: insert it in order
                if len(window) == window.maxlen:
                    window.popleft()
                    i -= 1
                window.insert(i + 1, candle)
                return True
        return False

    def candles(self, symbol: str, timeframe: Timeframe) -> list[Candle]:
        """The held candles of a key, oldest first."""
        return list(self._windows.get((symbol, timeframe), ()))

    def __len__(self) -> int:
        return sum(len(w) for w in self._windows.values())
