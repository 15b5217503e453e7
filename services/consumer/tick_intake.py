"""Which ticks the Consumer builds candles from (pure).

- A tick whose values can never make a candle (a price that is not a positive finite number, a
  naive timestamp, a negative volume) is bad input: the shell dead-letters it with the reason.
- A tick stamped with its RECEIPT time rather than the exchange's is ignored unless the settings
  say otherwise. The Producer gives packets without an exchange timestamp (ltp, quote and index
  quote modes, and the quote-mode snapshot Kite sends on every subscribe) their receipt time. In
  full mode the only such ticks are those snapshots: their price is the LAST trade, possibly the
  previous close, and taking it at its receipt time would make it the open of the current
  candle; in a replay of a past day the receipt time is not even on that day. Kite's exchange
  timestamps are whole seconds, so a stamp with microseconds that equals the receipt time (to the
  microsecond float rounding allows) is a receipt stamp.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from shared.messages import Tick

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tick_problem(tick: Tick) -> str | None:
    """Why a tick can never become part of a candle, or None when it is usable."""
    price = tick.last_price
    if not math.isfinite(price) or price <= 0:
        return f"last_price {price!r} is not a positive finite number"
    if tick.exchange_ts.tzinfo is None:
        return "exchange_ts has no time zone"
    if tick.volume < 0:
        return f"negative cumulative volume {tick.volume}"
    return None


def receipt_stamped(tick: Tick) -> bool:
    """True when the tick's exchange_ts is the Producer's substitute (its receipt time)."""
    ts = tick.exchange_ts
    if ts.microsecond == 0 or tick.received_ns <= 0 or ts.tzinfo is None:
        return False
    micros = (ts - _EPOCH) // _MICROSECOND
    # The Producer builds the stamp as datetime.fromtimestamp(received_ns / 1e9): a float of
    # ~0.24 us resolution rounded to the microsecond, so it lies within 1.5 us of the receipt.
    return abs(micros - tick.received_ns / 1000) <= 1.5


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC) - _EPOCH
