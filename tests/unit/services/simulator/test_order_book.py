"""The simulated exchange + RMS on the real 2024-08-20 replay: statuses, fills, rejections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from services.simulator.errors import InputError
from services.simulator.order_rules import parse_modification, parse_order_request
from services.simulator.orders import Order
from services.simulator.settings import SimulatorSettings
from services.simulator.simulation import Simulation, build_simulation
from shared.calendar import load_calendar
from shared.charges import ChargeSchedule, order_charges
from shared.clock import IST

CALENDAR = load_calendar()
CALL = "NIFTY2482224650CE"  # weekly, at the money at the open


def at(hh: int, mm: int, ss: int = 0) -> float:
    return datetime(2024, 8, 20, hh, mm, ss, tzinfo=IST).timestamp()


def simulation(**overrides: Any) -> Simulation:
    sim = build_simulation(SimulatorSettings(paused=True, speed=0, **overrides), CALENDAR, 0.0)
    sim.replay.advance_to(at(9, 15))
    return sim


def place(sim: Simulation, now: float | None = None, **fields: str) -> tuple[Order, list[Order]]:
    form = {
        "exchange": "NFO",
        "tradingsymbol": CALL,
        "transaction_type": "BUY",
        "quantity": "25",
        "product": "MIS",
        "order_type": "MARKET",
        "market_protection": "-1",
        **fields,
    }
    request = parse_order_request(form.pop("variety", "regular"), form, sim.universe)
    return sim.book.place(request, at(9, 15) if now is None else now)


def statuses(sim: Simulation, order: Order) -> list[str]:
    return [o.status for o in sim.book.history[order.order_id]]


def run_until(sim: Simulation, end: float, until: Any = None) -> list[Order]:
    """Replay moment by moment, letting the book see every tick (as the shell does)."""
    updates: list[Order] = []
    while (upcoming := sim.replay.next_epoch()) is not None and upcoming <= end:
        for moment in sim.replay.advance_to(upcoming):
            updates += sim.book.on_tick([t for t, _ in moment.prices], moment.epoch)
        if until is not None and until():
            break
    return updates


def test_a_market_buy_fills_at_the_ask_through_every_interim_status() -> None:
    sim = simulation()
    snapshot = sim.market.snapshot(sim.universe.by_key[f"NFO:{CALL}"])
    assert snapshot is not None
    order, updates = place(sim, tag="entry1")
    assert statuses(sim, order) == [
        "PUT ORDER REQ RECEIVED",
        "VALIDATION PENDING",
        "OPEN PENDING",
        "OPEN",
        "COMPLETE",
    ]
    assert [u.status for u in updates] == ["OPEN", "COMPLETE"]
    assert (order.filled_quantity, order.average_price, order.tag) == (
        25,
        snapshot.asks[0].price,
        "entry1",
    )
    (trade,) = sim.book.trades
    assert (trade.quantity, trade.price) == (25, snapshot.asks[0].price)
    expected = order_charges(ChargeSchedule(), "options", "BUY", 25, snapshot.asks[0].price).total
    assert sim.book.account.charges == pytest.approx(expected)


def test_a_market_order_larger_than_level_one_slips_and_one_beyond_the_depth_rests() -> None:
    sim = simulation(depth_max_lots_per_level=2)
    instrument = sim.universe.by_key[f"NFO:{CALL}"]
    snapshot = sim.market.snapshot(instrument)
    assert snapshot is not None
    depth_total = sum(a.quantity for a in snapshot.asks)
    order, _ = place(sim, quantity=str(depth_total + 25))
    assert order.filled_quantity == depth_total and order.status == "OPEN"
    assert order.average_price > snapshot.asks[0].price
    ioc, _ = place(sim, quantity=str(depth_total + 25), validity="IOC")
    assert (ioc.status, ioc.cancelled_quantity) == ("CANCELLED", 25)
    assert ioc.filled_quantity == depth_total


def test_a_limit_order_rests_until_the_price_trades_through_it() -> None:
    sim = simulation()
    last = sim.market.last_price(sim.universe.by_key[f"NFO:{CALL}"])
    assert last is not None
    limit = round(last - 5.0, 2)
    order, _ = place(sim, order_type="LIMIT", price=f"{limit:.2f}")
    assert order.status == "OPEN" and order.filled_quantity == 0
    run_until(sim, at(15, 29, 59), until=lambda: order.status == "COMPLETE")
    assert (order.status, order.average_price) == ("COMPLETE", limit)
    assert sim.market.last_price(sim.universe.by_key[f"NFO:{CALL}"]) <= limit  # type: ignore[operator]


def test_a_stop_waits_in_trigger_pending_then_fills() -> None:
    sim = simulation()
    last = sim.market.last_price(sim.universe.by_key[f"NFO:{CALL}"])
    assert last is not None
    trigger = round(last + 3.0, 2)
    order, _ = place(sim, order_type="SL-M", trigger_price=f"{trigger:.2f}")
    assert order.status == "TRIGGER PENDING"
    run_until(sim, at(15, 29, 59), until=lambda: order.status != "TRIGGER PENDING")
    assert order.status == "COMPLETE" and order.average_price >= trigger
    assert "TRIGGER PENDING" in statuses(sim, order)


@pytest.mark.parametrize(
    ("settings", "fields", "now", "reason"),
    [
        ({}, {"quantity": "1825"}, None, "freeze quantity"),
        ({}, {"order_type": "LIMIT", "price": "500.00"}, None, "price band"),
        ({"opening_cash": 1000.0}, {}, None, "Insufficient funds"),
        ({}, {}, at(15, 30), "Markets are closed"),
        ({}, {}, at(9, 14), "Markets are closed"),
        ({"fault_reject_orders": 1}, {}, None, "fault injection"),
        ({}, {"variety": "amo"}, None, "AMO"),
        ({}, {"order_type": "SL-M", "trigger_price": "1.00"}, None, "higher than the LTP"),
        (
            {},
            {"order_type": "SL-M", "trigger_price": "900.00", "transaction_type": "SELL"},
            None,
            "lower than the LTP",
        ),
    ],
)
def test_risk_and_exchange_rules_reject_with_a_reason(
    settings: dict[str, Any], fields: dict[str, str], now: float | None, reason: str
) -> None:
    sim = simulation(**settings)
    order, updates = place(sim, now, **fields)
    assert order.status == "REJECTED" and reason in (order.status_message or "")
    assert [u.status for u in updates] == ["REJECTED"]
    assert not sim.book.trades


def test_a_short_option_blocks_margin_and_closing_it_needs_none() -> None:
    sim = simulation()
    instrument = sim.universe.by_key[f"NFO:{CALL}"]
    before = sim.book.account.available(sim.book.margin_use_without())
    place(sim, transaction_type="SELL")
    after = sim.book.account.available(sim.book.margin_use_without())
    assert before - after > 0.1 * 25 * 24000  # 15 % of the underlying's notional
    assert sim.book.account.margin_needed(instrument, "MIS", "BUY", 25, 100.0, 24650.0) == 0.0


def test_modify_then_cancel_a_resting_order() -> None:
    sim = simulation(max_modifications=2)
    order, _ = place(sim, order_type="LIMIT", price="70.00", quantity="50")
    updates = sim.book.modify(
        "regular", order.order_id, parse_modification({"price": "71.00"}), at(9, 15)
    )
    assert [u.status for u in updates] == ["OPEN"] and order.price == 71.0 and order.modified
    assert "MODIFY VALIDATION PENDING" in statuses(sim, order)
    sim.book.modify("regular", order.order_id, parse_modification({"quantity": "75"}), at(9, 15))
    with pytest.raises(InputError, match="modifications"):
        sim.book.modify(
            "regular", order.order_id, parse_modification({"price": "72.00"}), at(9, 15)
        )
    (cancelled,) = sim.book.cancel("regular", order.order_id, at(9, 15))
    assert (cancelled.status, cancelled.cancelled_quantity) == ("CANCELLED", 75)
    with pytest.raises(InputError, match="CANCELLED"):
        sim.book.cancel("regular", order.order_id, at(9, 15))
    with pytest.raises(InputError):
        sim.book.cancel("regular", "nope", at(9, 15))


def test_the_close_cancels_working_day_orders() -> None:
    sim = simulation()
    order, _ = place(sim, order_type="LIMIT", price="70.00")
    (update,) = sim.book.close_session(at(15, 30))
    assert update.status == "CANCELLED" and order.pending_quantity == 0


def test_positions_and_realised_pnl_after_a_round_trip() -> None:
    sim = simulation()
    buy, _ = place(sim)
    run_until(sim, at(9, 30))
    sell, _ = place(sim, at(9, 30), transaction_type="SELL")
    (position,) = sim.book.account.open_positions()
    assert position.quantity == 0
    assert position.realised == pytest.approx(25 * (sell.average_price - buy.average_price))
