"""Is an OrderIntent well-formed enough to decide on? (pure; the shell dead-letters what is not)

The bus already refuses payloads that do not decode into an OrderIntent. This checks what msgspec
cannot: an exchange-qualified symbol, finite positive prices, a real instrument token, a usable
confidence, a LIMIT with its price. A malformed intent is rejected input (dead letter + counter),
not a risk denial: it never reaches the engine and never consumes its id.
"""

from __future__ import annotations

import math

from shared.messages import OrderIntent

MAX_ID_CHARS = 200


def _bad_number(name: str, value: float | None, positive: bool = True) -> str | None:
    if value is None:
        return None
    if not math.isfinite(value):
        return f"{name} is {value}"
    if positive and value <= 0:
        return f"{name} {value} is not positive"
    return None


def intent_problems(intent: OrderIntent) -> list[str]:
    """Every reason the intent is malformed; empty when it can be decided on."""
    problems: list[str] = []
    if not intent.intent_id.strip() or len(intent.intent_id) > MAX_ID_CHARS:
        problems.append(f"intent_id {intent.intent_id[:40]!r} is empty or too long")
    exchange, sep, tradingsymbol = intent.symbol.partition(":")
    if not sep or not exchange or not tradingsymbol.strip():
        problems.append(f"symbol {intent.symbol!r} is not EXCHANGE:TRADINGSYMBOL")
    if intent.instrument_token <= 0:
        problems.append(f"instrument_token {intent.instrument_token} is not positive")
    for name, value in (
        ("reference_price", intent.reference_price),
        ("limit_price", intent.limit_price),
        ("stop_loss", intent.stop_loss),
        ("target", intent.target),
    ):
        problem = _bad_number(name, value)
        if problem is not None:
            problems.append(problem)
    confidence = _bad_number("confidence", intent.confidence, positive=False)
    if confidence is not None:
        problems.append(confidence)
    elif intent.confidence < 0:
        problems.append(f"confidence {intent.confidence} is negative")
    if intent.order_type == "LIMIT" and intent.limit_price is None:
        problems.append("a LIMIT intent needs a limit_price")
    if intent.created_at.tzinfo is None or intent.candle_start.tzinfo is None:
        problems.append("created_at and candle_start must be timezone-aware")
    return problems
