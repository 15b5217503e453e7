"""Option strike selection from a chain, and option exit levels.

Selection:
1. Expiries later than `now + min_time_to_expiry_s` (a contract about to expire would be exited at
   once), nearest first: the weekly is preferred; the next expiry is tried only when no contract of
   the nearer one passes the filters.
2. ATM = the listed strike nearest the underlying (ties: the lower); candidates are the listed
   strikes within `strikes_around_atm` places of it.
3. Filters: volume >= min_volume, OI >= min_oi, a two-sided quote (0 < bid <= ask), an implied
   volatility that Black-76 can find.
4. Score, each component in [0, 1] (1 best), weighted (defaults 30/20/15/25/10 %):
   - distance: 1 - |strike - underlying| / the largest such distance among the candidates;
   - delta: 1 - ||delta| - target| / max(target, 1 - target) (the largest possible miss scores 0);
   - iv: min-max over the candidates, higher IV better for a SELL (more premium for the risk),
     lower IV better for a BUY;
   - liquidity: 0.5 x volume / max volume + 0.5 x OI / max OI over the candidates;
   - spread: 1 - relative spread / the largest relative spread, relative spread = (ask-bid)/mid.
   A component whose candidates are all equal scores 1 for everyone. Ties: total, then distance,
   then the lower strike. IV and delta come from Black-76 on the quote's mid price, the forward
   given by the caller (the future's price, or the index as an approximation).
The choice carries the full breakdown of every candidate and the reason each other contract was
left out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time

from services.gatekeeper.money import to_decimal
from services.gatekeeper.pricing import round_to_tick
from shared import black76
from shared.clock import IST
from shared.messages import OptionType, Side

YEAR_S = 365.0 * 86400.0


@dataclass(frozen=True)
class OptionQuote:
    """One contract of the chain: instrument data and its latest quote."""

    symbol: str  # "NFO:NIFTY24AUG24500CE"
    instrument_token: int
    expiry: date
    strike: float
    option_type: OptionType
    lot_size: int
    tick_size: float
    ltp: float
    bid: float
    ask: float
    volume: int
    oi: int

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


@dataclass(frozen=True)
class StrikeRules:
    min_volume: int = 100
    min_oi: int = 1000
    strikes_around_atm: int = 3
    target_delta: float = 0.30
    rate: float = 0.07
    expiry_time: time = time(15, 30)
    min_time_to_expiry_s: float = 3600.0


@dataclass(frozen=True)
class StrikeWeights:
    distance: float = 0.30
    delta: float = 0.20
    iv: float = 0.15
    liquidity: float = 0.25
    spread: float = 0.10


@dataclass(frozen=True)
class StrikeScore:
    quote: OptionQuote
    iv: float
    delta: float
    distance: float
    delta_score: float
    iv_score: float
    liquidity: float
    spread: float
    total: float

    def breakdown(self) -> str:
        return (
            f"{self.quote.symbol} total {self.total:.4f} = distance {self.distance:.3f}, "
            f"delta {self.delta_score:.3f} (|{self.delta:.3f}|), iv {self.iv_score:.3f} "
            f"({self.iv:.4f}), liquidity {self.liquidity:.3f}, spread {self.spread:.3f}"
        )


@dataclass(frozen=True)
class StrikeChoice:
    chosen: StrikeScore | None
    candidates: tuple[StrikeScore, ...]
    rejected: tuple[tuple[str, str], ...]  # (symbol, why)
    reason: str


Greeks = Callable[[OptionQuote, float, float, float], tuple[float, float] | None]


def black76_greeks(
    quote: OptionQuote, forward: float, t_years: float, rate: float
) -> tuple[float, float] | None:
    """(implied vol, delta) from the quote's mid price, or None when no volatility fits."""
    vol = black76.implied_vol(quote.mid, forward, quote.strike, t_years, rate, quote.option_type)
    if vol is None:
        return None
    return vol, black76.delta(forward, quote.strike, t_years, vol, rate, quote.option_type)


def expiry_at(expiry: date, expiry_time: time) -> datetime:
    """The moment a contract expires (IST)."""
    return datetime.combine(expiry, expiry_time, IST)


def _spread(quote: OptionQuote) -> float:
    return (quote.ask - quote.bid) / quote.mid


def _filter_reason(quote: OptionQuote, rules: StrikeRules) -> str | None:
    if quote.volume < rules.min_volume:
        return f"volume {quote.volume} < {rules.min_volume}"
    if quote.oi < rules.min_oi:
        return f"OI {quote.oi} < {rules.min_oi}"
    if not 0 < quote.bid <= quote.ask:
        return f"no two-sided quote (bid {quote.bid}, ask {quote.ask})"
    return None


def _window(quotes: list[OptionQuote], underlying: float, n: int) -> list[OptionQuote]:
    strikes = sorted({q.strike for q in quotes})
    atm = min(strikes, key=lambda s: (abs(s - underlying), s))
    i = strikes.index(atm)
    kept = set(strikes[max(0, i - n) : i + n + 1])
    return [q for q in quotes if q.strike in kept]


def _relative(values: Sequence[float], higher_is_better: bool) -> list[float]:
    low, high = min(values), max(values)
    if high == low:
        return [1.0] * len(values)
    return [
        (v - low) / (high - low) if higher_is_better else (high - v) / (high - low) for v in values
    ]


def _score(
    measured: list[tuple[OptionQuote, float, float]],
    underlying: float,
    side: Side,
    rules: StrikeRules,
    weights: StrikeWeights,
) -> list[StrikeScore]:
    distances = [abs(q.strike - underlying) for q, _, _ in measured]
    widest = max(distances)
    worst_delta_miss = max(rules.target_delta, 1 - rules.target_delta)
    iv_scores = _relative([iv for _, iv, _ in measured], higher_is_better=side == "SELL")
    max_volume = max(q.volume for q, _, _ in measured) or 1
    max_oi = max(q.oi for q, _, _ in measured) or 1
    spreads = [_spread(q) for q, _, _ in measured]
    widest_spread = max(spreads)
    scores = []
    for (quote, iv, delta), dist, iv_score, spread in zip(
        measured, distances, iv_scores, spreads, strict=True
    ):
        distance = 1.0 - dist / widest if widest > 0 else 1.0
        delta_score = max(0.0, 1.0 - abs(abs(delta) - rules.target_delta) / worst_delta_miss)
        liquidity = 0.5 * quote.volume / max_volume + 0.5 * quote.oi / max_oi
        spread_score = 1.0 - spread / widest_spread if widest_spread > 0 else 1.0
        total = (
            weights.distance * distance
            + weights.delta * delta_score
            + weights.iv * iv_score
            + weights.liquidity * liquidity
            + weights.spread * spread_score
        )
        scores.append(
            StrikeScore(
                quote, iv, delta, distance, delta_score, iv_score, liquidity, spread_score, total
            )
        )
    return scores


def select_strike(
    chain: Sequence[OptionQuote],
    underlying_price: float,
    option_type: OptionType,
    side: Side,
    now: datetime,
    rules: StrikeRules,
    weights: StrikeWeights,
    greeks: Greeks = black76_greeks,
) -> StrikeChoice:
    """The best contract to trade, with the score breakdown as the reason (see module doc)."""
    if underlying_price <= 0:
        return StrikeChoice(None, (), (), f"underlying price {underlying_price} is not usable")
    rejected: list[tuple[str, str]] = []
    of_type = [q for q in chain if q.option_type == option_type]
    expiries = sorted({q.expiry for q in of_type})
    for expiry in expiries:
        expires = expiry_at(expiry, rules.expiry_time)
        left_s = (expires - now).total_seconds()
        quotes = [q for q in of_type if q.expiry == expiry]
        if left_s <= rules.min_time_to_expiry_s:
            rejected.extend((q.symbol, f"expires in {left_s / 60:.0f} min") for q in quotes)
            continue
        measured: list[tuple[OptionQuote, float, float]] = []
        window = _window(quotes, underlying_price, rules.strikes_around_atm)
        rejected.extend(
            (q.symbol, f"more than {rules.strikes_around_atm} strikes from ATM")
            for q in quotes
            if q not in window
        )
        for quote in window:
            why = _filter_reason(quote, rules)
            greek = None
            if why is None:
                greek = greeks(quote, underlying_price, left_s / YEAR_S, rules.rate)
                if greek is None:
                    why = f"no implied volatility fits mid {quote.mid}"
            if why is not None or greek is None:
                rejected.append((quote.symbol, why or "no greeks"))
                continue
            measured.append((quote, greek[0], greek[1]))
        if not measured:
            continue
        scores = _score(measured, underlying_price, side, rules, weights)
        ranked = sorted(
            scores,
            key=lambda s: (-s.total, abs(s.quote.strike - underlying_price), s.quote.strike),
        )
        best = ranked[0]
        reason = (
            f"{side} {option_type} expiry {expiry} (nearest usable), underlying "
            f"{underlying_price}: chose {best.breakdown()}; {len(ranked)} candidates"
        )
        return StrikeChoice(best, tuple(ranked), tuple(rejected), reason)
    return StrikeChoice(
        None,
        (),
        tuple(rejected),
        f"no {option_type} contract passes the filters ({len(rejected)} rejected)",
    )


@dataclass(frozen=True)
class ExitLevels:
    stop_loss: float
    target: float
    reason: str


def option_exit_levels(
    side: Side, entry_premium: float, stop_pct: float, target_multiple: float, tick_size: float
) -> ExitLevels:
    """Stop at `stop_pct` % against the premium, target at `target_multiple` x that distance.

    A short option (SELL) stops when the premium RISES by stop_pct (rounded down to the tick:
    triggers no later) and takes profit when it falls by stop_pct x multiple (rounded up; at
    least one tick). A long option mirrors it.
    """
    premium = to_decimal(entry_premium)
    tick = to_decimal(tick_size)
    move = premium * to_decimal(stop_pct) / 100
    reward = move * to_decimal(target_multiple)
    if side == "SELL":
        stop = round_to_tick(premium + move, tick, "down")
        target = max(round_to_tick(premium - reward, tick, "up"), tick)
    else:
        stop = max(round_to_tick(premium - move, tick, "up"), tick)
        target = round_to_tick(premium + reward, tick, "down")
    reason = (
        f"{side} option at {premium}: stop {stop} ({stop_pct} % against), target {target} "
        f"({target_multiple} x the stop distance)"
    )
    return ExitLevels(float(stop), float(target), reason)
