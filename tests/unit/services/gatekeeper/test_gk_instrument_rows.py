"""Instruments from the Sentinel's rows; option quotes from ticks and Kite quotes; chain windows."""

from __future__ import annotations

import json
from datetime import date

import pytest

from services.gatekeeper.instrument_rows import (
    chain_window,
    instrument_info,
    option_quote_from_kite,
    option_quote_from_tick,
)
from services.gatekeeper.state import InstrumentInfo
from shared.messages import DepthLevel, Tick
from tests.unit.services.gatekeeper.gk_fixtures import NOW

OPTION_ROW = {
    "instrument_token": 12345602,
    "exchange_token": 48225,
    "tradingsymbol": "NIFTY2482224500CE",
    "name": "NIFTY",
    "exchange": "NFO",
    "segment": "NFO-OPT",
    "instrument_type": "CE",
    "expiry": "2024-08-22",
    "strike": 24500.0,
    "tick_size": 0.05,
    "lot_size": 25,
    "freeze_quantity": 1800,
    "last_price": 120.5,
}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (
            OPTION_ROW,
            InstrumentInfo(
                "NFO:NIFTY2482224500CE",
                12345602,
                lot_size=25,
                tick_size=0.05,
                freeze_qty=1800,
                segment="NFO-OPT",
                underlying="NIFTY",
                expiry=date(2024, 8, 22),
                strike=24500.0,
                option_type="CE",
            ),
        ),
        (
            {**OPTION_ROW, "tradingsymbol": "NIFTY 50", "exchange": "NSE", "segment": "INDICES",
             "instrument_type": "EQ", "expiry": "", "strike": 0.0, "lot_size": 0,
             "freeze_quantity": 0, "name": ""},
            InstrumentInfo("NSE:NIFTY 50", 12345602, lot_size=1, segment="INDICES"),
        ),
    ],
)  # fmt: skip
def test_instrument_info_from_the_sentinels_row(row: dict[str, object], expected: object) -> None:
    assert instrument_info(json.dumps(row)) == expected


@pytest.mark.parametrize("broken", [{"exchange": "NFO"}, {**OPTION_ROW, "expiry": "22/08/2024"}])
def test_an_unusable_row_raises_with_the_symbol(broken: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="instrument NFO:"):
        instrument_info(broken)


INFO = instrument_info(OPTION_ROW)


def test_an_option_quote_from_a_full_tick_takes_the_best_bid_and_ask() -> None:
    tick = Tick(
        instrument_token=INFO.instrument_token,
        symbol=INFO.symbol,
        last_price=120.5,
        exchange_ts=NOW,
        received_ns=1,
        volume=5000,
        oi=60000,
        bids=(DepthLevel(120.4, 50, 2), DepthLevel(120.3, 25, 1)),
        asks=(DepthLevel(120.6, 25, 1), DepthLevel(0.0, 0, 0)),
    )
    quote = option_quote_from_tick(INFO, tick)
    assert quote is not None
    assert (quote.bid, quote.ask, quote.volume, quote.oi) == (120.4, 120.6, 5000, 60000)


def test_an_option_quote_from_kite() -> None:
    quote = option_quote_from_kite(
        INFO,
        {
            "last_price": 99.0,
            "volume": 700,
            "oi": 4000,
            "depth": {
                "buy": [{"price": 98.9, "quantity": 25}, {"price": 98.8, "quantity": 0}],
                "sell": [{"price": 99.1, "quantity": 50}],
            },
        },
    )
    assert quote is not None and (quote.bid, quote.ask, quote.ltp) == (98.9, 99.1, 99.0)


def test_no_quote_without_a_last_price() -> None:
    assert option_quote_from_kite(INFO, {"last_price": 0}) is None


def _opt(strike: float, expiry: date) -> InstrumentInfo:
    return InstrumentInfo(
        f"NFO:N{expiry:%m%d}{int(strike)}CE", int(strike), 25, 0.05, None, "NFO-OPT", "NIFTY",
        expiry, strike, "CE",
    )  # fmt: skip


def test_the_chain_window_keeps_the_nearest_expiries_and_strikes_around_spot() -> None:
    past, near, nxt, far = date(2024, 7, 25), date(2024, 8, 1), date(2024, 8, 8), date(2024, 8, 29)
    options = [_opt(24000.0 + 100 * i, e) for e in (past, near, nxt, far) for i in range(10)]
    window = chain_window(options, 24_420.0, NOW, expiries=2, strikes_each_side=1)
    assert {o.expiry for o in window} == {near, nxt}
    assert sorted({o.strike for o in window if o.expiry == near}) == [24300.0, 24400.0, 24500.0]
