from __future__ import annotations

import json
from datetime import date

import pytest

from services.producer.sharding import shard_tokens
from services.producer.subscriptions import (
    InstrumentRef,
    chain_around,
    nearest_expiry,
    parse_instrument_json,
    resolve_subscription,
)

TODAY = date(2024, 8, 20)
WEEK1, WEEK2 = date(2024, 8, 22), date(2024, 8, 29)


def opt(strike: float, kind: str, expiry: date = WEEK1, name: str = "NIFTY") -> InstrumentRef:
    token = int(strike) * 10 + (1 if kind == "CE" else 2) + (expiry.day * 1_000_000)
    symbol = f"{name}{expiry:%y%b}{int(strike)}{kind}".upper()
    return InstrumentRef(token, "NFO", symbol, name, kind, expiry, strike)


STRIKES = [24_300 + 50 * i for i in range(9)]  # 24300 .. 24700
CHAIN = [opt(s, k, e) for e in (WEEK1, WEEK2) for s in STRIKES for k in ("CE", "PE")]
INDEX = InstrumentRef(256265, "NSE", "NIFTY 50", "NIFTY 50", "EQ", None, 0.0)


@pytest.mark.parametrize(
    ("expiries", "today", "expected"),
    [
        ([WEEK1, WEEK2], TODAY, WEEK1),
        ([WEEK1, WEEK2], WEEK1, WEEK1),  # expiry day still trades
        ([WEEK1, WEEK2], date(2024, 8, 23), WEEK2),
        ([WEEK1], date(2024, 9, 1), None),
    ],
)
def test_the_nearest_expiry_is_the_first_on_or_after_today(
    expiries: list[date], today: date, expected: date | None
) -> None:
    assert nearest_expiry([opt(24_500, "CE", e) for e in expiries], today) == expected


@pytest.mark.parametrize(
    ("spot", "each_side", "strikes"),
    [
        (24_512.0, 1, [24_450, 24_500, 24_550]),
        (24_525.0, 1, [24_450, 24_500, 24_550]),  # exact tie: the lower strike is ATM
        (24_526.0, 1, [24_500, 24_550, 24_600]),
        (24_310.0, 2, [24_300, 24_350, 24_400]),  # clipped at the chain's edge
        (30_000.0, 1, [24_650, 24_700]),
        (24_500.0, 0, [24_500]),
    ],
)
def test_the_chain_is_the_atm_strike_plus_n_each_side_with_ce_and_pe(
    spot: float, each_side: int, strikes: list[int]
) -> None:
    picked = chain_around(CHAIN, spot, WEEK1, each_side)
    assert sorted({o.strike for o in picked}) == strikes
    assert len(picked) == 2 * len(strikes)
    assert {o.expiry for o in picked} == {WEEK1}


def test_a_subscription_combines_explicit_symbols_and_option_chains() -> None:
    sub = resolve_subscription(
        explicit=["NSE:NIFTY 50"],
        underlyings={"NIFTY": "NSE:NIFTY 50"},
        instruments={INDEX.key: INDEX},
        options_by_underlying={"NIFTY": CHAIN},
        spots={"NSE:NIFTY 50": 24_512.0},
        today=TODAY,
        strikes_each_side=2,
    )
    assert sub.problems == ()
    assert sub.symbols[256265] == "NSE:NIFTY 50"
    assert len(sub.symbols) == 1 + 5 * 2
    assert sub.listed == {256265}  # the chain's options are not listed: their ticks go second


@pytest.mark.parametrize(
    ("explicit", "options", "spots", "problem"),
    [
        (["NSE:NOPE"], {"NIFTY": CHAIN}, {"NSE:NIFTY 50": 24_500.0}, "NSE:NOPE: not in today"),
        ([], {}, {"NSE:NIFTY 50": 24_500.0}, "NIFTY: no options"),
        ([], {"NIFTY": CHAIN}, {}, "no last price"),
        ([], {"NIFTY": [opt(24_500, "CE", date(2024, 8, 1))]}, {"NSE:NIFTY 50": 1.0}, "before"),
    ],
)
def test_what_cannot_be_resolved_is_reported_not_skipped(
    explicit: list[str],
    options: dict[str, list[InstrumentRef]],
    spots: dict[str, float],
    problem: str,
) -> None:
    sub = resolve_subscription(
        explicit, {"NIFTY": "NSE:NIFTY 50"}, {INDEX.key: INDEX}, options, spots, TODAY, 1
    )
    assert any(problem in p for p in sub.problems), sub.problems


def test_an_instruments_hash_value_parses_into_a_ref() -> None:
    text = json.dumps(
        {"instrument_token": 5, "exchange": "NFO", "tradingsymbol": "X", "name": "NIFTY",
         "instrument_type": "CE", "expiry": "2024-08-22", "strike": 24500.0, "lot_size": 25}
    )  # fmt: skip
    assert parse_instrument_json(text) == InstrumentRef(
        5, "NFO", "X", "NIFTY", "CE", WEEK1, 24500.0
    )


@pytest.mark.parametrize(
    ("count", "max_connections", "per_connection", "sizes", "refused"),
    [
        (0, 3, 3000, [], 0),
        (44, 3, 3000, [44], 0),  # few instruments: one connection, not three quiet ones
        (3000, 3, 3000, [3000], 0),
        (3001, 3, 3000, [1501, 1500], 0),  # balanced over the connections needed
        (9000, 3, 3000, [3000, 3000, 3000], 0),
        (9005, 3, 3000, [3000, 3000, 3000], 5),  # beyond capacity: refused with a reason
        (7, 2, 3, [3, 3], 1),
    ],
)
def test_tokens_are_sharded_over_as_few_connections_as_needed(
    count: int, max_connections: int, per_connection: int, sizes: list[int], refused: int
) -> None:
    tokens = list(range(1, count + 1))
    shards = shard_tokens(tokens, max_connections, per_connection)
    assert [len(c) for c in shards.connections] == sizes
    assert len(shards.refused) == refused
    assert bool(shards.reason) is (refused > 0)
    placed = [t for c in shards.connections for t in c]
    assert sorted(placed + list(shards.refused)) == tokens


def test_duplicate_tokens_are_subscribed_once() -> None:
    assert shard_tokens([1, 2, 1, 2], 3, 3000).connections == ((1, 2),)
