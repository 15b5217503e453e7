"""The Gatekeeper's modes against real Redis: logging-only sends nothing, paper fills locally."""

from __future__ import annotations

from typing import Any

import pytest

from services.gatekeeper.order_journal import decode_entry
from shared import constants as c
from tests.gatekeeper_support import (
    Store,
    TradingClock,
    gk_settings,
    instrument_row,
    intent,
    running_gatekeeper,
    seed_instruments,
    tick,
)
from tests.support import eventually

pytestmark = pytest.mark.integration

INFY, INFY_TOKEN = "NSE:INFY", 408065


class NoBroker:
    """A broker that fails the test if anything reaches it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def place(self, params: dict[str, object]) -> str:
        self.calls.append("place")
        raise AssertionError("logging-only mode called place_order")

    async def orders(self) -> list[object]:
        self.calls.append("orders")
        return []

    async def close(self) -> None:
        pass


async def test_logging_mode_logs_and_stores_the_full_order_and_sends_nothing(
    redis_url: str,
    clickhouse_server: Any,
    clickhouse_db: str,
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    broker = NoBroker()
    settings = gk_settings(redis_url, store, mode="logging", api_key="k")
    async with running_gatekeeper(settings, clock=clock, broker=broker) as gk:  # type: ignore[arg-type]
        await seed_instruments(gk.redis, {INFY: instrument_row(INFY, INFY_TOKEN)})
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now())])
        await eventually(lambda: INFY in gk.service.state.quotes)
        await gk.publish_intent(intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=10))

        async def logged() -> bool:
            return any(e.status == "LOGGED" for e in await gk.order_events())

        await eventually(logged)
        events = await gk.order_events()
        assert [e.status for e in events] == ["RECORDED", "LOGGED"]
        assert events[-1].order_type == "LIMIT" and events[-1].price == 1507.5
        assert events[-1].quantity == 10 and events[-1].tag.startswith("ta")
        records = await gk.redis.hgetall(c.GATEKEEPER_ORDERS_KEY.format(day="2024-08-20"))
        (record,) = [decode_entry(v).order for v in records.values()]
        assert record.status == "LOGGED" and record.mode == "logging"
        assert gk.metric("tradealgo_orders_total", {"mode": "logging", "status": "LOGGED"}) == 1
        assert gk.metric("tradealgo_gatekeeper_mode", {"mode": "logging"}) == 1
    assert broker.calls == []
    # The service stopped: its audit trail is in ClickHouse (the last version of each order).
    (order,) = store.rows("SELECT status, mode, quantity, price, tag FROM orders FINAL")
    assert order[:4] == ("LOGGED", "logging", 10, 1507.5) and order[4] == events[-1].tag
    assert sorted(r[0] for r in store.rows("SELECT status FROM order_events")) == [
        "LOGGED",
        "RECORDED",
    ]


async def test_paper_mode_fills_locally_on_the_next_ticks_and_tracks_the_position(
    redis_url: str,
    clickhouse_server: Any,
    clickhouse_db: str,
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    settings = gk_settings(redis_url, store, mode="paper", paper_fills="local")
    async with running_gatekeeper(settings, clock=clock) as gk:
        await seed_instruments(gk.redis, {INFY: instrument_row(INFY, INFY_TOKEN)})
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now())])
        await eventually(lambda: INFY in gk.service.state.quotes)
        await gk.publish_intent(intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=60))

        async def has(status: str) -> bool:
            return any(e.status == status for e in await gk.order_events())

        await eventually(lambda: has("OPEN"))
        # 40 at the ask: the first tick fills 40 of 60 (partial), the next the rest.
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now(), depth=1, depth_qty=40)])
        await eventually(lambda: has("PARTIAL"))
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now(), depth=1, depth_qty=40)])
        await eventually(lambda: has("COMPLETE"))
        statuses = [e.status for e in await gk.order_events()]
        assert statuses == ["RECORDED", "OPEN", "PARTIAL", "COMPLETE"]
        position = gk.service.state.book.get(INFY)
        assert position is not None and position.quantity == 60
        assert position.average_price == pytest.approx(1500.05)
        await eventually(lambda: gk.metric("tradealgo_open_positions") == 1, timeout=3)
    ((quantity, average, status),) = store.rows(
        "SELECT quantity, average_price, status FROM positions FINAL"
    )
    assert (quantity, status) == (60, "OPEN") and average == pytest.approx(1500.05)
