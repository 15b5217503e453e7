"""Pre-trade validity rules: each a small pure function returning a denial reason or None.

The engine runs them all and reports every reason that applies, not just the first. Boundaries:
- signal age: older than `max_age_s` is denied (exactly max_age_s passes); created more than
  `max_skew_s` in the future is denied (a clock problem, not a fresh signal);
- confidence: below the minimum is denied (equal passes);
- concurrent positions: opening one more when `open_count >= max` is denied;
- position size: a resulting position worth MORE than max_pct of capital is denied;
- daily loss: MTM loss at or above the limit denies new entries (same convention as the kill switch);
- margin: required above available is denied; unknown margin is denied when required.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

from services.gatekeeper.money import to_decimal
from services.gatekeeper.risk.kill_switch import KillSwitchState, loss_breach


def already_decided(intent_id: str, decided: Collection[str]) -> str | None:
    """Idempotency: an intent id that already has a decision is never decided again."""
    if intent_id in decided:
        return f"intent {intent_id} was already decided"
    return None


def signal_too_old(
    created_at: datetime, now: datetime, max_age_s: float, max_skew_s: float
) -> str | None:
    """An entry on a stale signal trades a market that has moved on."""
    age = (now - created_at).total_seconds()
    if age > max_age_s:
        return f"signal is {age:.1f} s old, older than the {max_age_s:.0f} s limit"
    if age < -max_skew_s:
        return f"signal is {-age:.1f} s in the future (clock skew above {max_skew_s:.1f} s)"
    return None


def not_allowed(
    symbol: str,
    underlying: str | None,
    allowed_symbols: Collection[str],
    allowed_underlyings: Collection[str],
) -> str | None:
    """Allow-lists; an empty list allows everything. Symbols match with or without exchange."""
    if allowed_symbols:
        bare = symbol.split(":", 1)[-1]
        if symbol not in allowed_symbols and bare not in allowed_symbols:
            return f"symbol {symbol} is not in the allowed symbols"
    if allowed_underlyings and underlying is not None and underlying not in allowed_underlyings:
        return f"underlying {underlying} is not in the allowed underlyings"
    return None


def confidence_too_low(confidence: float, min_confidence: float) -> str | None:
    if confidence < min_confidence:
        return f"confidence {confidence:.3f} is below the minimum {min_confidence:.3f}"
    return None


def market_closed(now: datetime, market_open: Callable[[datetime], bool]) -> str | None:
    """Orders only while the exchange's normal session is open (the NSE calendar decides)."""
    if not market_open(now):
        return f"market is closed at {now.isoformat()}"
    return None


def too_many_positions(open_count: int, max_positions: int) -> str | None:
    """For an entry that opens a NEW position."""
    if open_count >= max_positions:
        return f"{open_count} positions open, the maximum is {max_positions}"
    return None


def position_too_large(position_value: float, capital: float, max_pct: float) -> str | None:
    """The position after this order, valued at its price, as a share of capital."""
    limit = to_decimal(capital) * to_decimal(max_pct) / 100
    if to_decimal(abs(position_value)) > limit:
        return (
            f"position value {abs(position_value):.2f} would exceed {max_pct} % of capital "
            f"({limit:.2f})"
        )
    return None


def daily_loss_limit_reached(mtm: float, capital: float, limit_pct: float) -> str | None:
    """New entries stop at the daily loss limit (below the kill switch); exits still run."""
    if limit_pct <= 0:
        return None
    breach = loss_breach(mtm, capital, limit_pct)
    if breach is None:
        return None
    return "daily loss limit: " + breach.replace("kill-switch limit", "daily loss limit")


def insufficient_margin(required: float, available: float | None, needed: bool) -> str | None:
    """Live: the broker's available margin must cover the order (unknown margin fails closed)."""
    if not needed:
        return None
    if available is None:
        return "available margin is unknown"
    if to_decimal(required) > to_decimal(available):
        return f"order needs margin {required:.2f}, only {available:.2f} available"
    return None


def kill_switch_tripped(state: KillSwitchState) -> str | None:
    if state.tripped:
        return f"kill switch tripped: {state.reason}"
    return None


def trading_halted(halt_reason: str | None) -> str | None:
    """A HALT (Sentinel, operator, kill switch) stops new entries; exits are not asked."""
    if halt_reason is not None:
        return f"trading is halted ({halt_reason or 'no reason given'}): no new entries"
    return None


def short_not_allowed(product: str, opens_short: bool) -> str | None:
    """Delivery (CNC) cannot be sold short; intraday (MIS) and F&O (NRML) can."""
    if opens_short and product == "CNC":
        return "a CNC sell without holdings would be a short sale"
    return None


def stale_quote(quote_ts: datetime | None, now: datetime, max_age_s: float) -> str | None:
    """Entries are priced off a recent LTP only."""
    if quote_ts is None:
        return "no last price for the instrument"
    age = (now - quote_ts).total_seconds()
    if age > max_age_s:
        return f"last price is {age:.1f} s old, older than {max_age_s:.0f} s"
    return None
