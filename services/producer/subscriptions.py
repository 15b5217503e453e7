"""What the Producer subscribes to, resolved against the day's instruments (pure).

Two sources, both from settings:
- an explicit "EXCHANGE:TRADINGSYMBOL" list (indices, stocks, futures);
- option chains around the money: for each configured underlying, the nearest expiry on or after
  today, the strikes closest to the spot price (the at-the-money one plus N on each side), both
  CE and PE.

The instruments come from the Sentinel's Redis hash (INSTRUMENTS_KEY: "EXCHANGE:SYMBOL" -> JSON);
the spot price of each underlying from a Kite LTP call. An unknown symbol or an underlying without
options is a clear error per item (collected, logged, visible in /ready), never a silent skip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class InstrumentRef:
    """The fields of an instruments row the Producer needs."""

    instrument_token: int
    exchange: str
    tradingsymbol: str
    name: str
    instrument_type: str
    expiry: date | None
    strike: float

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"


def parse_instrument_json(text: str | bytes) -> InstrumentRef:
    """One INSTRUMENTS_KEY value -> InstrumentRef (ValueError when unreadable)."""
    data = json.loads(text)
    expiry = data.get("expiry") or ""
    return InstrumentRef(
        instrument_token=int(data["instrument_token"]),
        exchange=str(data["exchange"]),
        tradingsymbol=str(data["tradingsymbol"]),
        name=str(data.get("name", "")),
        instrument_type=str(data.get("instrument_type", "")),
        expiry=date.fromisoformat(expiry) if expiry else None,
        strike=float(data.get("strike") or 0.0),
    )


@dataclass(frozen=True, slots=True)
class Subscription:
    """The resolved token -> symbol map, what could not be resolved (with reasons), and the
    instruments listed by name (not picked from an option chain): their ticks go out first."""

    symbols: dict[int, str]
    problems: tuple[str, ...]
    listed: frozenset[int] = frozenset()


def nearest_expiry(options: Iterable[InstrumentRef], today: date) -> date | None:
    """The first expiry on or after `today` (an option expiring today still trades today)."""
    expiries = {o.expiry for o in options if o.expiry is not None and o.expiry >= today}
    return min(expiries) if expiries else None


def chain_around(
    options: Iterable[InstrumentRef], spot: float, expiry: date, strikes_each_side: int
) -> list[InstrumentRef]:
    """CE and PE of the 2N+1 strikes nearest `spot` for one expiry, ordered by strike then type.

    The at-the-money strike is the one nearest to spot (the lower one on an exact tie)."""
    of_expiry = [o for o in options if o.expiry == expiry and o.instrument_type in ("CE", "PE")]
    strikes = sorted({o.strike for o in of_expiry})
    if not strikes:
        return []
    atm_index = min(range(len(strikes)), key=lambda i: (abs(strikes[i] - spot), strikes[i]))
    low = max(0, atm_index - strikes_each_side)
    chosen = set(strikes[low : atm_index + strikes_each_side + 1])
    picked = [o for o in of_expiry if o.strike in chosen]
    return sorted(picked, key=lambda o: (o.strike, o.instrument_type))


def resolve_subscription(
    explicit: Iterable[str],
    underlyings: Mapping[str, str],
    instruments: Mapping[str, InstrumentRef],
    options_by_underlying: Mapping[str, list[InstrumentRef]],
    spots: Mapping[str, float],
    today: date,
    strikes_each_side: int,
) -> Subscription:
    """Tokens and symbols to stream.

    `instruments` maps "EXCHANGE:SYMBOL" to rows (at least the explicit ones and the spots);
    `options_by_underlying` maps an underlying name to its option rows; `spots` maps the spot
    symbol ("NSE:NIFTY 50") to its last price."""
    symbols: dict[int, str] = {}
    problems: list[str] = []
    for key in explicit:
        ref = instruments.get(key)
        if ref is None:
            problems.append(f"{key}: not in today's instruments")
            continue
        symbols[ref.instrument_token] = ref.key
    listed = frozenset(symbols)
    for name, spot_symbol in underlyings.items():
        options = options_by_underlying.get(name, [])
        if not options:
            problems.append(f"{name}: no options in today's instruments")
            continue
        spot = spots.get(spot_symbol)
        if spot is None or spot <= 0:
            problems.append(f"{name}: no last price for {spot_symbol} to centre the chain on")
            continue
        expiry = nearest_expiry(options, today)
        if expiry is None:
            problems.append(f"{name}: every listed expiry is before {today}")
            continue
        for ref in chain_around(options, spot, expiry, strikes_each_side):
            symbols[ref.instrument_token] = ref.key
    return Subscription(symbols, tuple(problems), listed)
