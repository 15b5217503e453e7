"""Strike selection (weekly first, filters, ATM window, weighted score) and option exits."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

import pytest

from services.gatekeeper.options import (
    YEAR_S,
    OptionQuote,
    StrikeRules,
    StrikeWeights,
    black76_greeks,
    expiry_at,
    option_exit_levels,
    select_strike,
)
from shared import black76
from shared.clock import IST
from shared.messages import OptionType, Side

NOW = datetime(2024, 8, 1, 11, 0, tzinfo=IST)
WEEKLY = date(2024, 8, 8)
MONTHLY = date(2024, 8, 29)
SPOT = 24_480.0
RULES = StrikeRules()
WEIGHTS = StrikeWeights()


def _contract(expiry: date, strike: float, kind: OptionType, vol: float = 0.15) -> OptionQuote:
    t = (expiry_at(expiry, RULES.expiry_time) - NOW).total_seconds() / YEAR_S
    fair = black76.price(SPOT, strike, t, vol, RULES.rate, kind)
    mid = max(round(fair / 0.05) * 0.05, 0.10)
    code = f"NIFTY24{expiry:%b}{int(strike)}{kind}".upper()
    return OptionQuote(
        symbol=f"NFO:{code}",
        instrument_token=int(strike) * 10 + (1 if kind == "CE" else 2),
        expiry=expiry,
        strike=strike,
        option_type=kind,
        lot_size=25,
        tick_size=0.05,
        ltp=mid,
        bid=round(mid - 0.05, 2),
        ask=round(mid + 0.05, 2),
        volume=5_000,
        oi=50_000,
    )


def _chain() -> list[OptionQuote]:
    strikes = [24_000.0 + 50 * i for i in range(21)]
    return [
        _contract(expiry, strike, kind)
        for expiry in (WEEKLY, MONTHLY)
        for strike in strikes
        for kind in ("CE", "PE")
    ]


def test_weekly_expiry_and_the_atm_window_are_preferred() -> None:
    choice = select_strike(_chain(), SPOT, "PE", "SELL", NOW, RULES, WEIGHTS)
    assert choice.chosen is not None
    assert choice.chosen.quote.expiry == WEEKLY
    strikes = sorted(s.quote.strike for s in choice.candidates)
    assert strikes == [24_350.0, 24_400.0, 24_450.0, 24_500.0, 24_550.0, 24_600.0, 24_650.0]
    assert all(s.quote.option_type == "PE" for s in choice.candidates)
    assert choice.chosen.breakdown() in choice.reason
    assert "expiry 2024-08-08" in choice.reason
    far = dict(choice.rejected)
    assert far["NFO:NIFTY24AUG24000PE"] == "more than 3 strikes from ATM"


def test_black76_recovers_the_volatility_the_chain_was_priced_with() -> None:
    quote = _contract(MONTHLY, 24_500.0, "CE", vol=0.15)
    t = (expiry_at(MONTHLY, RULES.expiry_time) - NOW).total_seconds() / YEAR_S
    greeks = black76_greeks(quote, SPOT, t, RULES.rate)
    assert greeks is not None
    assert greeks[0] == pytest.approx(0.15, abs=0.002)
    assert 0.4 < greeks[1] < 0.6  # near-ATM call delta


@pytest.mark.parametrize(
    ("volume", "oi", "bid", "why"),
    [
        (99, 50_000, None, "volume 99 < 100"),
        (100, 999, None, "OI 999 < 1000"),
        (5_000, 50_000, 0.0, "no two-sided quote"),
    ],
)
def test_illiquid_contracts_are_rejected_with_the_reason(
    volume: int, oi: int, bid: float | None, why: str
) -> None:
    chain = _chain()
    target = next(
        q for q in chain if q.expiry == WEEKLY and q.strike == 24_500 and q.option_type == "PE"
    )
    changed = replace(target, volume=volume, oi=oi, bid=target.bid if bid is None else bid)
    chain[chain.index(target)] = changed
    choice = select_strike(chain, SPOT, "PE", "SELL", NOW, RULES, WEIGHTS)
    assert dict(choice.rejected)[target.symbol].startswith(why)
    assert all(s.quote.symbol != target.symbol for s in choice.candidates)


def test_an_illiquid_weekly_falls_back_to_the_next_expiry() -> None:
    chain = [replace(q, volume=0) if q.expiry == WEEKLY else q for q in _chain()]
    choice = select_strike(chain, SPOT, "CE", "SELL", NOW, RULES, WEIGHTS)
    assert choice.chosen is not None and choice.chosen.quote.expiry == MONTHLY


def test_a_weekly_within_the_last_hour_is_skipped() -> None:
    expiry_day = datetime(2024, 8, 8, 14, 45, tzinfo=IST)  # 45 min to the 15:30 expiry
    choice = select_strike(_chain(), SPOT, "CE", "BUY", expiry_day, RULES, WEIGHTS)
    assert choice.chosen is not None and choice.chosen.quote.expiry == MONTHLY
    assert any("expires in 45 min" in why for _, why in choice.rejected)


def test_nothing_usable_is_a_reasoned_refusal() -> None:
    choice = select_strike(
        [replace(q, oi=0) for q in _chain()], SPOT, "PE", "SELL", NOW, RULES, WEIGHTS
    )
    assert choice.chosen is None
    assert "no PE contract passes the filters" in choice.reason
    assert select_strike(_chain(), 0.0, "PE", "SELL", NOW, RULES, WEIGHTS).chosen is None


def _hand_quote(strike: float, bid: float, ask: float, volume: int, oi: int) -> OptionQuote:
    return OptionQuote(
        f"NFO:X{int(strike)}PE",
        int(strike),
        WEEKLY,
        strike,
        "PE",
        25,
        0.05,
        (bid + ask) / 2,
        bid,
        ask,
        volume,
        oi,
    )


HAND_GREEKS = {95.0: (0.20, -0.15), 100.0: (0.16, -0.45), 105.0: (0.18, -0.70)}


def _hand_greeks(
    quote: OptionQuote, forward: float, t: float, rate: float
) -> tuple[float, float] | None:
    return HAND_GREEKS[quote.strike]


@pytest.mark.parametrize(
    ("side", "expected"),
    [
        # worked by hand in the module's normalisation (see options.py):
        # distance 0/1/0; delta 1-.15/.7, 1-.15/.7, 1-.4/.7; liquidity .25/.75/.75;
        # spread 0, 1-(0.2/3.1)/(0.2/1.1), 1-(0.6/6.3)/(0.2/1.1); iv SELL 1/0/.5, BUY 0/1/.5
        ("SELL", {95.0: 0.369643, 100.0: 0.709159, 105.0: 0.395833}),
        ("BUY", {95.0: 0.219643, 100.0: 0.859159, 105.0: 0.395833}),
    ],
)
def test_scores_follow_the_documented_normalisation(
    side: Side, expected: dict[float, float]
) -> None:
    chain = [
        _hand_quote(95.0, 1.0, 1.2, 1_000, 10_000),
        _hand_quote(100.0, 3.0, 3.2, 4_000, 20_000),
        _hand_quote(105.0, 6.0, 6.6, 2_000, 40_000),
    ]
    rules = StrikeRules(strikes_around_atm=1)
    choice = select_strike(chain, 100.0, "PE", side, NOW, rules, WEIGHTS, _hand_greeks)
    totals = {s.quote.strike: s.total for s in choice.candidates}
    assert totals == pytest.approx(expected, abs=1e-6)
    assert choice.chosen is not None and choice.chosen.quote.strike == 100.0
    best = choice.chosen
    assert (best.distance, best.liquidity) == (1.0, 0.75)
    assert best.delta_score == pytest.approx(1 - 0.15 / 0.7)


def test_ties_go_to_the_nearer_then_the_lower_strike() -> None:
    chain = [_hand_quote(s, 2.0, 2.1, 1_000, 10_000) for s in (95.0, 105.0)]

    def same(quote: OptionQuote, forward: float, t: float, rate: float) -> tuple[float, float]:
        return 0.2, -0.3

    choice = select_strike(
        chain, 100.0, "PE", "SELL", NOW, StrikeRules(strikes_around_atm=1), WEIGHTS, same
    )
    assert choice.chosen is not None and choice.chosen.quote.strike == 95.0


@pytest.mark.parametrize(
    ("side", "premium", "stop", "target"),
    [
        ("SELL", 100.0, 130.0, 55.0),  # stop +30 %, target -45 % (1.5 x)
        ("SELL", 101.03, 131.30, 55.60),  # 131.339 down, 55.5665 up
        ("SELL", 10.0, 13.0, 5.5),
        ("BUY", 100.0, 70.0, 145.0),
        ("BUY", 101.03, 70.75, 146.45),  # 70.721 up, 146.4935 down
        ("BUY", 0.10, 0.10, 0.10),  # floors at one tick; 0.145 down
    ],
)
def test_option_exit_levels(side: Side, premium: float, stop: float, target: float) -> None:
    levels = option_exit_levels(side, premium, 30.0, 1.5, 0.05)
    assert (levels.stop_loss, levels.target) == (stop, target)
    assert levels.reason


def test_a_short_target_never_goes_below_one_tick() -> None:
    levels = option_exit_levels("SELL", 10.0, 50.0, 3.0, 0.05)
    assert levels.target == 0.05
