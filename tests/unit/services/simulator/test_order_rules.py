"""The API's input checks on place and modify: a clear InputException, never an order."""

from __future__ import annotations

from datetime import date

import pytest

from services.simulator.errors import InputError
from services.simulator.instruments import Instrument, InstrumentUniverse
from services.simulator.order_rules import (
    check_market_protection,
    parse_modification,
    parse_order_request,
)

OPTION = Instrument(
    8962818,
    35011,
    "NIFTY2482224600CE",
    "NIFTY",
    date(2024, 8, 22),
    24600.0,
    0.05,
    25,
    "CE",
    "NFO-OPT",
    "NFO",
    256265,
    1800,
)
INDEX = Instrument(
    256265, 1001, "NIFTY 50", "NIFTY 50", None, 0.0, 0.0, 0, "EQ", "INDICES", "NSE", 256265, 0
)
UNIVERSE = InstrumentUniverse([INDEX, OPTION])
GOOD = {
    "exchange": "NFO",
    "tradingsymbol": "NIFTY2482224600CE",
    "transaction_type": "BUY",
    "quantity": "50",
    "product": "MIS",
    "order_type": "LIMIT",
    "price": "101.05",
    "tag": "strat01",
}


def test_a_good_limit_order_is_accepted_with_its_tag() -> None:
    request = parse_order_request("regular", GOOD, UNIVERSE)
    assert (request.instrument, request.quantity, request.price, request.tag, request.validity) == (
        OPTION,
        50,
        101.05,
        "strat01",
        "DAY",
    )


@pytest.mark.parametrize(
    ("variety", "change", "problem"),
    [
        ("co", {}, "variety"),
        ("regular", {"tradingsymbol": "NIFTY24AUG99999CE"}, "tradingsymbol"),
        ("regular", {"exchange": "NSE", "tradingsymbol": "NIFTY 50"}, "index"),
        ("regular", {"transaction_type": "HOLD"}, "transaction_type"),
        ("regular", {"quantity": "30"}, "lot size"),
        ("regular", {"quantity": "0"}, "quantity"),
        ("regular", {"quantity": "2.5"}, "whole"),
        ("regular", {"product": "CNC"}, "product"),
        ("regular", {"order_type": "STOP"}, "order_type"),
        ("regular", {"price": ""}, "price"),
        ("regular", {"price": "101.03"}, "tick size"),
        ("regular", {"validity": "TTL"}, "validity"),
        ("regular", {"tag": "x" * 21}, "tag"),
        ("regular", {"tag": "has space"}, "tag"),
        ("regular", {"order_type": "MARKET"}, "market_protection"),
        ("regular", {"order_type": "MARKET", "market_protection": "0"}, "market_protection"),
        ("regular", {"order_type": "SL-M", "trigger_price": "100"}, "market_protection"),
        ("regular", {"order_type": "SL", "trigger_price": "102"}, "Trigger price"),
        (
            "regular",
            {"transaction_type": "SELL", "order_type": "SL", "trigger_price": "100"},
            "Trigger price",
        ),
        ("regular", {"order_type": "SL-M", "market_protection": "-1"}, "trigger_price"),
        ("regular", {"disclosed_quantity": "75"}, "disclosed"),
    ],
)
def test_bad_orders_are_refused_naming_the_field(
    variety: str, change: dict[str, str], problem: str
) -> None:
    with pytest.raises(InputError, match=problem):
        parse_order_request(variety, {**GOOD, **change}, UNIVERSE)


@pytest.mark.parametrize(
    ("order_type", "value", "expected"),
    [
        ("MARKET", 2.0, 2.0),
        ("MARKET", -1.0, -1.0),
        ("SL-M", 100.0, 100.0),
        ("LIMIT", None, 0.0),
        ("SL", 5.0, 0.0),
    ],
)
def test_market_protection_is_kept_only_where_it_applies(
    order_type: str, value: float | None, expected: float
) -> None:
    assert check_market_protection(order_type, value) == expected


@pytest.mark.parametrize("value", [0.0, -2.0, 100.5])
def test_market_protection_outside_its_range_is_refused(value: float) -> None:
    with pytest.raises(InputError):
        check_market_protection("MARKET", value)


def test_a_modification_keeps_absent_fields_unchanged() -> None:
    change = parse_modification({"price": "99.5", "order_type": ""})
    assert (change.price, change.quantity, change.order_type, change.trigger_price) == (
        99.5,
        None,
        None,
        None,
    )
    with pytest.raises(InputError):
        parse_modification({"order_type": "ICEBERG"})
