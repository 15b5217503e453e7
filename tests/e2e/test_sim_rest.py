"""Every REST call through the UNMODIFIED official client against the simulator (root= only)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import pyotp
import pytest
import requests
from kiteconnect import KiteConnect
from kiteconnect import exceptions as kite_errors

from tests.sim_fixtures import KiteSim

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[2] / "shared" / "marketdata"
CALL = "NIFTY2482224650CE"


def source_bars(day: str) -> list[tuple[str, float, float, float, float]]:
    with gzip.open(DATA / "nifty50_index_1m_2024-01-01_2024-08-23.csv.gz", "rt") as raw:
        rows = [line.strip().split(",") for line in io.StringIO(raw.read())][1:]
    return [
        (r[0], float(r[1]), float(r[2]), float(r[3]), float(r[4]))
        for r in rows
        if r[0].startswith(day)
    ]


def test_the_login_flow_gives_a_session_with_login_time(kite_sim: KiteSim) -> None:
    kite = KiteConnect(kite_sim.api_key, root=kite_sim.rest_root)
    session = kite.generate_session(kite_sim.request_token(), api_secret=kite_sim.api_secret)
    assert session["user_id"] == kite_sim.user_id
    assert session["login_time"] == datetime(2024, 8, 20, 9, 15)
    assert session["refresh_token"] == ""
    assert kite.access_token == session["access_token"]
    assert kite.profile()["user_id"] == kite_sim.user_id


def test_a_wrong_checksum_or_reused_request_token_is_a_token_exception(kite_sim: KiteSim) -> None:
    kite = KiteConnect(kite_sim.api_key, root=kite_sim.rest_root)
    request_token = kite_sim.request_token()
    with pytest.raises(kite_errors.TokenException):
        kite.generate_session(request_token, api_secret="not-the-secret")
    kite.generate_session(request_token, api_secret=kite_sim.api_secret)
    with pytest.raises(kite_errors.TokenException):
        kite.generate_session(request_token, api_secret=kite_sim.api_secret)


def test_a_wrong_totp_is_refused_in_kites_envelope(kite_sim: KiteSim) -> None:
    with requests.Session() as browser:
        login = browser.post(
            f"{kite_sim.rest_root}/api/login",
            data={"user_id": kite_sim.user_id, "password": kite_sim.password},
            timeout=10,
        ).json()
        refused = browser.post(
            f"{kite_sim.rest_root}/api/twofa",
            data={
                "user_id": kite_sim.user_id,
                "request_id": login["data"]["request_id"],
                "twofa_value": "12345x",  # never a valid code
                "twofa_type": "totp",
            },
            timeout=10,
        )
        page = browser.get(
            f"{kite_sim.rest_root}/connect/login",
            params={"v": "3", "api_key": kite_sim.api_key},
            allow_redirects=False,
            timeout=10,
        )
    assert refused.status_code == 400
    assert refused.json()["error_type"] == "InputException"
    # No browser session: the login page (a form for people), not a redirect.
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]


def test_profile_and_margins(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    assert kite.profile()["exchanges"] == ["NSE", "NFO"]
    margins = kite.margins()
    assert margins["equity"]["net"] == 1_000_000.0
    assert margins["commodity"]["enabled"] is False
    assert kite.margins("equity") == margins["equity"]
    with pytest.raises(kite_errors.InputException):
        kite.margins("currency")


def test_quote_ohlc_and_ltp_for_indices_futures_and_options(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    keys = ["NSE:NIFTY 50", "NSE:NIFTY BANK", "NFO:NIFTY24AUGFUT", f"NFO:{CALL}", "NFO:NOSUCH"]
    quote = kite.quote(keys)
    assert set(quote) == set(keys[:4])  # unknown instruments are absent, as on Kite
    nifty = quote["NSE:NIFTY 50"]
    first = source_bars("2024-08-20")[0]
    assert (
        nifty["last_price"] == first[1]
        and nifty["ohlc"]["close"] == source_bars("2024-08-19")[-1][4]
    )
    assert nifty["timestamp"] == datetime(2024, 8, 20, 9, 15)
    option = quote[f"NFO:{CALL}"]
    assert option["modelled"].startswith("modelled: Black-76")
    assert (
        len(option["depth"]["buy"]) == 5
        and option["depth"]["sell"][0]["price"] > option["last_price"]
    )
    assert option["lower_circuit_limit"] < option["last_price"] < option["upper_circuit_limit"]
    assert kite.ohlc("NSE:NIFTY 50")["NSE:NIFTY 50"]["ohlc"] == nifty["ohlc"]
    assert (
        kite.ltp(["NFO:NIFTY24AUGFUT"])["NFO:NIFTY24AUGFUT"]["last_price"]
        == quote["NFO:NIFTY24AUGFUT"]["last_price"]
    )
    assert kite.ltp("256265")["256265"]["last_price"] == first[1]  # tokens work as keys too


def test_the_instrument_master(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    everything = kite.instruments()
    nfo = kite.instruments("NFO")
    assert {i["exchange"] for i in nfo} == {"NFO"}
    indices = {i["tradingsymbol"]: i for i in everything if i["segment"] == "INDICES"}
    assert indices["NIFTY 50"]["instrument_token"] == 256265
    assert indices["NIFTY BANK"]["instrument_token"] == 260105
    by_symbol = {i["tradingsymbol"]: i for i in nfo}
    assert by_symbol[CALL]["expiry"] == date(2024, 8, 22)  # weekly
    assert by_symbol["NIFTY24AUG24650CE"]["expiry"] == date(2024, 8, 29)  # monthly
    assert by_symbol["BANKNIFTY24AUGFUT"]["lot_size"] == 15
    assert {i["tick_size"] for i in nfo} == {0.05}
    assert {i["lot_size"] for i in nfo if i["name"] == "NIFTY"} == {25}


def test_historical_candles_are_the_real_bars_resampled_at_09_15(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    minutes = kite.historical_data(256265, "2024-08-19 09:15:00", "2024-08-19 15:29:00", "minute")
    source = source_bars("2024-08-19")
    assert [(c["open"], c["high"], c["low"], c["close"]) for c in minutes] == [
        s[1:] for s in source
    ]
    assert minutes[0]["date"].isoformat() == "2024-08-19T09:15:00+05:30"
    hourly = kite.historical_data(
        256265, "2024-08-19 00:00:00", "2024-08-19 23:59:59", "60minute", oi=True
    )
    assert [c["date"].strftime("%H:%M") for c in hourly] == [
        "09:15",
        "10:15",
        "11:15",
        "12:15",
        "13:15",
        "14:15",
        "15:15",
    ]
    assert hourly[0]["high"] == max(s[2] for s in source[:60]) and hourly[0]["oi"] == 0
    days = kite.historical_data(256265, "2022-11-01 00:00:00", "2022-11-07 00:00:00", "day")
    assert [d["date"].date() for d in days][-1] == date(2022, 11, 7)  # from the daily file
    with pytest.raises(kite_errors.InputException, match="max limit"):
        kite.historical_data(256265, "2024-01-01 09:15:00", "2024-08-19 15:29:00", "minute")


def test_historical_never_serves_the_future(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    kite_sim.control.seek("10:00:30")
    today = kite.historical_data(256265, "2024-08-20 09:00:00", "2024-08-23 15:30:00", "minute")
    assert today[-1]["date"].strftime("%H:%M") == "10:00"
    assert len(today) == 46
    option = kite.historical_data(8962818, "2024-08-20 09:00:00", "2024-08-20 15:30:00", "5minute")
    assert option and all(c["low"] <= c["high"] for c in option)


def place_market_buy(kite: KiteConnect, **change: object) -> str:
    fields: dict[str, object] = {
        "variety": "regular",
        "exchange": "NFO",
        "tradingsymbol": CALL,
        "transaction_type": "BUY",
        "quantity": 25,
        "product": "MIS",
        "order_type": "MARKET",
        "market_protection": -1,
        "tag": "e2eentry",
        **change,
    }
    order_id: str = kite.place_order(**fields)
    return order_id


def test_a_market_order_its_history_trades_and_positions(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    order_id = place_market_buy(kite)
    history = kite.order_history(order_id)
    assert [h["status"] for h in history] == [
        "PUT ORDER REQ RECEIVED",
        "VALIDATION PENDING",
        "OPEN PENDING",
        "OPEN",
        "COMPLETE",
    ]
    final = history[-1]
    assert final["tag"] == "e2eentry" and final["filled_quantity"] == 25
    assert final["order_timestamp"] == datetime(2024, 8, 20, 9, 15)
    (trade,) = kite.order_trades(order_id)
    assert trade["average_price"] == final["average_price"] and kite.trades() == [trade]
    assert [o["order_id"] for o in kite.orders()] == [order_id]
    positions = kite.positions()
    assert positions["net"][0]["quantity"] == 25 and positions["day"] == positions["net"]
    assert kite.holdings() == []
    assert kite.margins("equity")["utilised"]["option_premium"] == pytest.approx(
        25 * final["average_price"]
    )


def test_a_limit_order_is_modified_and_cancelled(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    last = kite.ltp(f"NFO:{CALL}")[f"NFO:{CALL}"]["last_price"]
    order_id = kite.place_order(
        "regular", "NFO", CALL, "BUY", 50, "NRML", "LIMIT", price=round(last - 10, 1)
    )
    assert (
        kite.modify_order("regular", order_id, price=round(last - 12, 1), quantity=75) == order_id
    )
    assert kite.cancel_order("regular", order_id) == order_id
    final = kite.order_history(order_id)[-1]
    assert (final["status"], final["quantity"], final["cancelled_quantity"], final["modified"]) == (
        "CANCELLED",
        75,
        75,
        True,
    )
    with pytest.raises(kite_errors.InputException, match="CANCELLED"):
        kite.modify_order("regular", order_id, price=round(last - 11, 1))


def test_a_stop_order_triggers_as_the_clock_moves(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    last = kite.ltp(f"NFO:{CALL}")[f"NFO:{CALL}"]["last_price"]
    order_id = kite.place_order(
        "regular",
        "NFO",
        CALL,
        "SELL",
        25,
        "MIS",
        "SL-M",
        trigger_price=round(last - 2, 1),
        market_protection=5,
    )
    assert kite.order_history(order_id)[-1]["status"] == "TRIGGER PENDING"
    for _ in range(60):
        kite_sim.control.step(60)
        if kite.order_history(order_id)[-1]["status"] != "TRIGGER PENDING":
            break
    assert kite.order_history(order_id)[-1]["status"] == "COMPLETE"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"market_protection": None}, kite_errors.InputException),  # required on MARKET
        ({"market_protection": 0}, kite_errors.InputException),
        ({"quantity": 30}, kite_errors.InputException),  # not a lot multiple
        ({"tag": "x" * 21}, kite_errors.InputException),
        ({"tradingsymbol": "NIFTY 50", "exchange": "NSE"}, kite_errors.InputException),
    ],
)
def test_bad_orders_raise_input_exceptions(
    kite_sim: KiteSim, change: dict[str, object], error: type[Exception]
) -> None:
    kite = kite_sim.kite()
    fields: dict[str, object] = {
        "variety": "regular",
        "exchange": "NFO",
        "tradingsymbol": CALL,
        "transaction_type": "BUY",
        "quantity": 25,
        "product": "MIS",
        "order_type": "MARKET",
        "market_protection": -1,
        **change,
    }
    with pytest.raises(error):
        kite.place_order(**fields)
    assert kite.orders() == []


@pytest.mark.parametrize(
    ("arrange", "fields", "reason"),
    [
        (lambda sim: None, {"quantity": 1825}, "freeze quantity"),
        (lambda sim: None, {"order_type": "LIMIT", "price": 900.0}, "price band"),
        (lambda sim: sim.control.seek("15:45:00"), {}, "Markets are closed"),
        (lambda sim: sim.control.faults(reject_orders=1), {}, "fault injection"),
    ],
)
def test_rejected_orders_have_an_id_and_a_reason(
    kite_sim: KiteSim, arrange: Callable[[KiteSim], object], fields: dict[str, object], reason: str
) -> None:
    kite = kite_sim.kite()
    arrange(kite_sim)
    order_id = place_market_buy(kite, **fields)
    final = kite.order_history(order_id)[-1]
    assert final["status"] == "REJECTED" and reason in final["status_message"]


def test_insufficient_margin_is_rejected(kite_sim_factory: Callable[..., KiteSim]) -> None:
    sim = kite_sim_factory(opening_cash=500.0)
    kite = sim.kite()
    final = kite.order_history(place_market_buy(kite))[-1]
    assert final["status"] == "REJECTED" and "Insufficient funds" in final["status_message"]


def test_logout_and_the_six_am_expiry_raise_token_exceptions(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    expired_hooks: list[bool] = []
    kite.set_session_expiry_hook(lambda: expired_hooks.append(True))
    kite_sim.control.seek("2024-08-21T05:59:59+05:30")
    assert kite.profile()["user_id"] == kite_sim.user_id
    kite_sim.control.seek("2024-08-21T06:00:00+05:30")
    with pytest.raises(kite_errors.TokenException) as raised:
        kite.profile()
    assert raised.value.code == 403 and expired_hooks == [True]
    other = kite_sim.kite()
    assert other.invalidate_access_token() is True
    with pytest.raises(kite_errors.TokenException):
        other.margins()


def test_expire_token_fault_is_a_403_token_exception(kite_sim: KiteSim) -> None:
    kite = kite_sim.kite()
    kite_sim.control.faults(expire_token=True)
    with pytest.raises(kite_errors.TokenException) as raised:
        kite.positions()
    assert raised.value.code == 403


def test_rate_limits_answer_429_as_network_exceptions(
    kite_sim_factory: Callable[..., KiteSim],
) -> None:
    sim = kite_sim_factory(rate_quote_per_s=1.0)
    kite = sim.kite()
    kite.ltp("NSE:NIFTY 50")
    with pytest.raises(kite_errors.NetworkException) as raised:
        kite.ltp("NSE:NIFTY 50")
    assert raised.value.code == 429
    sim.control.faults(rate_limit_s=30)
    with pytest.raises(kite_errors.NetworkException) as during_fault:
        kite.profile()
    assert during_fault.value.code == 429
    sim.control.faults(clear=True)
    assert kite.profile()["user_id"] == sim.user_id


def test_slow_responses_time_the_client_out(kite_sim: KiteSim) -> None:
    token = kite_sim.login()
    impatient = KiteConnect(
        kite_sim.api_key, access_token=token, root=kite_sim.rest_root, timeout=0.2
    )
    kite_sim.control.faults(slow_ms=2000, slow_for_s=30)
    with pytest.raises(requests.exceptions.Timeout):
        impatient.profile()
    kite_sim.control.faults(slow_ms=0)
    assert impatient.profile()["user_id"] == kite_sim.user_id


def test_unknown_routes_answer_in_kites_envelope(kite_sim: KiteSim) -> None:
    response = requests.get(f"{kite_sim.rest_root}/no/such/route", timeout=10)
    assert response.status_code == 404
    assert response.json()["error_type"] == "GeneralException"


def test_the_login_page_form_logs_a_person_in_and_redirects_with_a_request_token(
    kite_sim: KiteSim,
) -> None:
    response = requests.post(
        f"{kite_sim.rest_root}/connect/login",
        data={
            "api_key": kite_sim.api_key,
            "user_id": kite_sim.user_id,
            "password": kite_sim.password,
            "twofa_value": pyotp.TOTP(kite_sim.totp_secret).now(),
        },
        allow_redirects=False,
        timeout=10,
    )
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{kite_sim.rest_root}/_sim/redirect?")
    request_token = location.split("request_token=")[1]
    kite = KiteConnect(kite_sim.api_key, root=kite_sim.rest_root)
    assert kite.generate_session(request_token, kite_sim.api_secret)["user_id"] == kite_sim.user_id
    page = requests.get(location, timeout=10)
    assert request_token in page.text
