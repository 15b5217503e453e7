"""The order request sent on the event loop is kiteconnect's, field for field, and its reply is
read as kiteconnect reads it (the same exception class for every Kite error)."""

from __future__ import annotations

import json

import pytest
from kiteconnect import exceptions as kite_errors

from services.gatekeeper.adapters.kite_orders import kite_reply, place_form

JSON = "application/json"


def test_the_form_has_kiteconnect_s_fields_in_its_order_without_the_empty_ones() -> None:
    params = {"tag": "t1", "quantity": 25, "variety": "regular", "price": 24650.4,
              "exchange": "NFO", "tradingsymbol": "NIFTY24AUGFUT", "transaction_type": "BUY",
              "product": "NRML", "order_type": "LIMIT", "validity": "DAY", "trigger_price": None,
              "market_protection": -1}  # fmt: skip
    assert place_form(params) == [
        ("variety", "regular"), ("exchange", "NFO"), ("tradingsymbol", "NIFTY24AUGFUT"),
        ("transaction_type", "BUY"), ("quantity", "25"), ("product", "NRML"),
        ("order_type", "LIMIT"), ("price", "24650.4"), ("validity", "DAY"), ("tag", "t1"),
        ("market_protection", "-1"),
    ]  # fmt: skip


def test_a_field_place_order_does_not_take_is_refused() -> None:
    with pytest.raises(TypeError, match="stoploss"):
        place_form({"variety": "regular", "stoploss": 1})


def _body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_a_success_reply_gives_its_data() -> None:
    reply = kite_reply(200, JSON, _body(status="success", data={"order_id": "151220000000000"}))
    assert reply == {"order_id": "151220000000000"}


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (400, "InputException", kite_errors.InputException),
        (400, "OrderException", kite_errors.OrderException),
        (403, "TokenException", kite_errors.TokenException),
        (403, "PermissionException", kite_errors.PermissionException),
        (429, "NetworkException", kite_errors.NetworkException),
        (502, "DataException", kite_errors.DataException),
        (500, "GeneralException", kite_errors.GeneralException),
        (500, "SomethingNew", kite_errors.GeneralException),  # unknown: kiteconnect's default
        (500, "log", kite_errors.GeneralException),  # a name that is not an exception class
    ],
)
def test_an_error_reply_raises_kiteconnect_s_exception_with_message_and_code(
    status: int, error_type: str, expected: type[Exception]
) -> None:
    body = _body(status="error", error_type=error_type, message="Insufficient funds")
    with pytest.raises(expected, match="Insufficient funds") as excinfo:
        kite_reply(status, JSON + "; charset=utf-8", body)
    assert type(excinfo.value) is expected
    assert excinfo.value.code == status  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("content_type", "body", "why"),
    [
        ("text/html", b"<html>502 Bad Gateway</html>", "Unknown Content-Type"),
        (JSON, b"{not json", "Couldn't parse"),
        (JSON, b"[1, 2]", "unexpected Kite reply"),
    ],
)
def test_a_reply_that_is_not_kite_json_is_a_data_exception(
    content_type: str, body: bytes, why: str
) -> None:
    with pytest.raises(kite_errors.DataException, match=why):
        kite_reply(502, content_type, body)
