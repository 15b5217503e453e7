"""Signals and the order intents made from them, with ids that make replays harmless.

A signal id is a pure function of (strategy, instrument, timeframe, candle start): the same
candle delivered twice, replayed after a restart or run again in a backtest yields the same id,
and `OrderIntent.intent_id == signal_id`, so downstream dedup (the Gatekeeper's intent ids, the
Kite order tag it derives) can never turn one decision into two orders.

The id is 16 lowercase hex characters (64 bits of BLAKE2b): alphanumeric and short enough for a
Kite order tag (<= 20 characters) to be derived from it.

Conventions the Gatekeeper relies on:
- BUY / SELL signals on the candle's own instrument (equities, indices as a proxy) open or close
  according to the position the Gatekeeper holds; they are never `is_exit` by themselves.
- Option signals name the `underlying` and leave the strike to the Gatekeeper. `option_type`
  CE or PE is one leg; `option_type` None with an `underlying` is a STRADDLE (both legs, same ATM
  strike). Their `stop_loss` and `target` are None: the strategy exits by signal.
- EXIT signals come only from the option-selling strategies, whose positions are short by
  construction: the intent buys back (side BUY) and is marked `is_exit`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from shared.clock import IST
from shared.messages import (
    Action,
    Candle,
    OptionType,
    OrderIntent,
    OrderType,
    Product,
    Side,
    Signal,
    Timeframe,
)

SIGNAL_ID_LENGTH = 16
# Epoch seconds by subtraction: cheaper than .timestamp() when the zone object is IST's (the
# builder's candles), and still exact for any other zone.
_EPOCH = datetime(1970, 1, 1, 5, 30, tzinfo=IST)
_SECOND = timedelta(seconds=1)


def signal_id(strategy: str, symbol: str, timeframe: Timeframe, candle_start: datetime) -> str:
    """The deterministic id of the decision a strategy takes on one candle."""
    if candle_start.tzinfo is None:
        raise ValueError("candle_start must be timezone-aware")
    key = f"{strategy}|{symbol}|{timeframe}|{(candle_start - _EPOCH) // _SECOND}"
    return hashlib.blake2b(key.encode(), digest_size=SIGNAL_ID_LENGTH // 2).hexdigest()


def new_signal(
    strategy: str,
    candle: Candle,
    action: Action,
    *,
    confidence: float,
    reason: str,
    stop_loss: float | None = None,
    target: float | None = None,
    underlying: str | None = None,
    option_type: OptionType | None = None,
) -> Signal:
    """A signal on `candle`, stamped with the candle's close time (never the wall clock)."""
    return Signal(
        signal_id=signal_id(strategy, candle.symbol, candle.timeframe, candle.start),
        strategy=strategy,
        symbol=candle.symbol,
        instrument_token=candle.instrument_token,
        timeframe=candle.timeframe,
        action=action,
        price=candle.close,
        confidence=min(1.0, max(0.0, confidence)),
        candle_start=candle.start,
        created_at=candle.end,
        reason=reason,
        stop_loss=stop_loss,
        target=target,
        underlying=underlying,
        option_type=option_type,
        last_tick_received_ns=candle.last_tick_received_ns,
    )


def intent_side(signal: Signal) -> Side:
    """The order side of a signal: EXIT buys back a short option position (see module doc)."""
    if signal.action == "EXIT":
        if signal.underlying is None:
            raise ValueError(
                f"signal {signal.signal_id}: EXIT is only defined for option-selling strategies"
            )
        return "BUY"
    return signal.action


def intent_from_signal(
    signal: Signal,
    *,
    order_type: OrderType = "MARKET",
    product: Product = "MIS",
    quantity: int | None = None,
    created_at: datetime | None = None,
) -> OrderIntent:
    """The OrderIntent of a signal, carrying its whole context; `intent_id` is the signal id."""
    return OrderIntent(
        intent_id=signal.signal_id,
        signal_id=signal.signal_id,
        strategy=signal.strategy,
        symbol=signal.symbol,
        instrument_token=signal.instrument_token,
        side=intent_side(signal),
        order_type=order_type,
        reference_price=signal.price,
        confidence=signal.confidence,
        timeframe=signal.timeframe,
        candle_start=signal.candle_start,
        created_at=created_at or signal.created_at,
        reason=signal.reason,
        quantity=quantity,
        product=product,
        stop_loss=signal.stop_loss,
        target=signal.target,
        underlying=signal.underlying,
        option_type=signal.option_type,
        is_exit=signal.action == "EXIT",
        last_tick_received_ns=signal.last_tick_received_ns,
    )
