"""The underlying's trend regime shared by the option sellers: bullish, bearish or neutral.

bullish: fast EMA > slow EMA, the close above the slow EMA, and the EMA gap at least `band_pct`
percent of the close; bearish: the mirror image; neutral: anything else (including the gap being
inside the band). Unknown while either EMA is still warming up.
"""

from __future__ import annotations

from typing import Literal

from services.consumer.indicators import Ema

Regime = Literal["bullish", "bearish", "neutral", "unknown"]


class TrendState:
    """A fast and a slow EMA of one underlying."""

    __slots__ = ("fast", "slow")

    def __init__(self, fast: int, slow: int) -> None:
        self.fast = Ema(fast)
        self.slow = Ema(slow)

    def update(self, close: float, band_pct: float) -> tuple[Regime, float, float, float]:
        """Add a close; returns (regime, fast, slow, gap in percent of the close)."""
        fast = self.fast.update(close)
        slow = self.slow.update(close)
        gap_pct = abs(fast - slow) / close * 100.0
        if gap_pct != gap_pct:  # NaN: warming up
            return "unknown", fast, slow, gap_pct
        if gap_pct >= band_pct:
            if fast > slow and close > slow:
                return "bullish", fast, slow, gap_pct
            if fast < slow and close < slow:
                return "bearish", fast, slow, gap_pct
        return "neutral", fast, slow, gap_pct
