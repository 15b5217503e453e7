"""A deterministic, seeded path of ticks inside one real 1-minute bar.

The path starts at the bar's open, ends at its close, touches its high and its low and never leaves
[low, high], so the OHLC of the ticks of a minute equals the bar exactly. The extremes are visited
in the order that makes the shorter route (a bar that closes up dips first, then rallies), at
random positions; between those waypoints the price follows a Brownian bridge rounded to the tick
grid. Prices are integers in paise, so nothing is lost to float arithmetic.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Sequence

MIN_TICKS_PER_MINUTE = 4  # open, high, low, close
# Standard deviation of a bridge's middle relative to the bar's range: wiggles that stay plausible.
BRIDGE_NOISE = 0.15


def ticks_per_minute(ticks_per_second: float) -> int:
    """Ticks in a minute for a rate; at least 4 so that open, high, low and close all appear."""
    return max(MIN_TICKS_PER_MINUTE, round(60 * ticks_per_second))


def path_seed(seed: int, token: int, minute_epoch_s: int) -> str:
    """The RNG seed of one minute of one instrument: stable across processes and platforms."""
    return f"{seed}:{token}:{minute_epoch_s}"


def minute_path(
    open_: int, high: int, low: int, close: int, count: int, seed: str, tick: int = 5
) -> list[int]:
    """`count` prices (paise) for one bar: path[0] == open, path[-1] == close, min == low, max == high.

    Raises ValueError for an inconsistent bar or fewer than 4 ticks.
    """
    if count < MIN_TICKS_PER_MINUTE:
        raise ValueError(f"a minute needs at least {MIN_TICKS_PER_MINUTE} ticks (got {count})")
    if not low <= min(open_, close) <= max(open_, close) <= high:
        raise ValueError(f"inconsistent bar o={open_} h={high} l={low} c={close}")
    if tick <= 0:
        raise ValueError(f"tick must be > 0 (got {tick})")
    rng = random.Random(seed)
    if high == low:
        return [open_] * count
    low_first = close > open_ or (close == open_ and rng.random() < 0.5)
    first, second = (low, high) if low_first else (high, low)
    p1, p2 = sorted(rng.sample(range(1, count - 1), 2))
    waypoints = ((0, open_), (p1, first), (p2, second), (count - 1, close))
    path = [0] * count
    sigma = (high - low) * BRIDGE_NOISE
    for (i0, a), (i1, b) in itertools.pairwise(waypoints):
        _bridge(path, i0, a, i1, b, sigma, low, high, tick, rng)
    return path


def _bridge(
    path: list[int],
    i0: int,
    a: int,
    i1: int,
    b: int,
    sigma: float,
    low: int,
    high: int,
    tick: int,
    rng: random.Random,
) -> None:
    steps = i1 - i0
    path[i0], path[i1] = a, b
    if steps < 2:
        return
    step_sigma = sigma / math.sqrt(steps)
    walk = [0.0]
    for _ in range(steps):
        walk.append(walk[-1] + rng.gauss(0.0, step_sigma))
    end = walk[-1]
    for j in range(1, steps):
        frac = j / steps
        value = a + (b - a) * frac + (walk[j] - frac * end)
        snapped = round(value / tick) * tick
        path[i0 + j] = min(max(snapped, low), high)


def to_paise(price: float) -> int:
    """An exchange price in rupees (two decimals) as integer paise."""
    return round(price * 100)


def ohlc_of(prices: Sequence[int]) -> tuple[int, int, int, int]:
    """Open, high, low, close of a sequence of prices."""
    return prices[0], max(prices), min(prices), prices[-1]
