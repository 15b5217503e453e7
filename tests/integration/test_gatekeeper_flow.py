"""The intent flow on real Redis: malformed intents are dead-lettered and counted, a HALT stops
entries but not exits, the position monitor exits on a stop-loss, a redelivered intent is never
decided twice."""

from __future__ import annotations

from typing import Any

import pytest

from services.sentinel.checks import halt_hash
from shared import constants as c
from shared.bus import DeadLetter, entry_fields, parse_dead_letter
from shared.messages import Control
from tests.gatekeeper_support import (
    RunningGatekeeper,
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


async def _priced(gk: RunningGatekeeper, clock: TradingClock, price: float = 1500.0) -> None:
    await seed_instruments(gk.redis, {INFY: instrument_row(INFY, INFY_TOKEN)})
    await gk.publish_ticks([tick(INFY, INFY_TOKEN, price, clock.now())])
    await eventually(lambda: INFY in gk.service.state.quotes)


async def _decision(gk: RunningGatekeeper, intent_id: str) -> str | None:
    for risk in await gk.risk_events():
        if risk.intent_id == intent_id and risk.kind == "DENIED":
            return f"DENIED: {risk.reason}"
    for order in await gk.order_events():
        if order.intent_id == intent_id and order.status in ("LOGGED", "OPEN", "COMPLETE"):
            return str(order.status)
    return None


async def test_a_malformed_intent_is_dead_lettered_with_its_reason_and_counted(
    redis_url: str,
    clickhouse_server: Any,
    clickhouse_db: str,
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    async with running_gatekeeper(gk_settings(redis_url, store), clock=clock) as gk:
        await _priced(gk, clock)
        bad = intent("INFY", INFY_TOKEN, float("nan"), clock.now())
        await gk.publish_intent(bad)

        async def letters() -> list[DeadLetter]:
            return [parse_dead_letter(f) for _, f in await gk.redis.xrange(c.DEAD_LETTERS)]

        await eventually(letters)
        (letter,) = await letters()
        assert letter.kind.value == "rejected" and letter.stream == c.INTENTS
        assert (
            "EXCHANGE:TRADINGSYMBOL" in letter.reason and "reference_price is nan" in letter.reason
        )
        labels = {"service": "gatekeeper", "stream": c.INTENTS, "reason_kind": "rejected"}
        await eventually(lambda: gk.metric("tradealgo_dead_letters_total", labels) == 1)
        # ...and the next intent is handled normally.
        good = intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=1)
        await gk.publish_intent(good)
        assert await eventually(lambda: _decision(gk, good.intent_id)) == "LOGGED"


async def test_a_halt_stops_entries_but_exits_still_go_out(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    settings = gk_settings(redis_url, store, mode="paper", paper_fills="local")
    async with running_gatekeeper(settings, clock=clock) as gk:
        await _priced(gk, clock)
        entry = intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=10)
        await gk.publish_intent(entry)
        await eventually(lambda: _decision(gk, entry.intent_id))
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now(), depth=1)])
        await eventually(lambda: gk.service.state.book.quantity(INFY) == 10)

        now = clock.now()
        await gk.redis.hset(c.HALT_KEY, mapping=halt_hash(True, ["cli:ops: news"], now, now))
        await gk.bus.publish(
            c.CONTROL, Control(command="HALT", reason="news", source="cli:ops", ts=now)
        )
        await eventually(lambda: gk.service.state.halt_reason is not None)
        assert not gk.service.readiness()[0]
        assert gk.metric("tradealgo_halted", {"service": "gatekeeper"}) == 1

        another = intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=10)
        await gk.publish_intent(another)
        denied = await eventually(lambda: _decision(gk, another.intent_id))
        assert "halted" in str(denied)

        exit_ = intent(INFY, INFY_TOKEN, 1500.0, clock.now(), side="SELL", is_exit=True)
        await gk.publish_intent(exit_)
        assert await eventually(lambda: _decision(gk, exit_.intent_id)) == "OPEN"
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now(), depth=1)])
        await eventually(lambda: gk.service.state.book.quantity(INFY) == 0)


async def test_the_monitor_exits_a_position_at_its_stop_loss(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    settings = gk_settings(redis_url, store, mode="paper", paper_fills="local")
    async with running_gatekeeper(settings, clock=clock) as gk:
        await _priced(gk, clock)
        entry = intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=10, stop_loss=1480.0)
        await gk.publish_intent(entry)
        await eventually(lambda: _decision(gk, entry.intent_id))
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now(), depth=1)])
        await eventually(lambda: gk.service.state.book.quantity(INFY) == 10)

        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1479.0, clock.now())])

        async def exit_event() -> bool:
            return any(e.kind == "EXIT" and "STOP_LOSS" in e.reason for e in await gk.risk_events())

        await eventually(exit_event)
        await eventually(lambda: gk.service.desk is not None and gk.service.desk.working())
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1479.0, clock.now(), depth=1)])
        await eventually(lambda: gk.service.state.book.quantity(INFY) == 0)
        position = gk.service.state.book.get(INFY)
        assert position is not None and position.realised_pnl < 0


async def test_an_intent_delivered_twice_is_decided_once(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    async with running_gatekeeper(gk_settings(redis_url, store), clock=clock) as gk:
        await _priced(gk, clock)
        once = intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=1)
        await gk.publish_intent(once)
        await gk.publish_intent(once)
        await eventually(
            lambda: gk.metric("tradealgo_intents_total", {"decision": "duplicate"}) == 1
        )
        logged = [e for e in await gk.order_events() if e.status == "LOGGED"]
        assert len(logged) == 1


async def test_a_burst_read_together_is_recorded_in_one_round_trip_and_every_order_goes_out(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    async with running_gatekeeper(gk_settings(redis_url, store), clock=clock) as gk:
        await _priced(gk, clock)
        records: list[int] = []
        record = gk.service.redis_state.record

        async def counted(*args: Any, **kwargs: Any) -> Any:
            records.append(len(args[1]) if len(args) > 1 else 0)
            return await record(*args, **kwargs)

        gk.service.redis_state.record = counted  # type: ignore[method-assign]
        burst = [intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=1) for _ in range(3)]
        # One MULTI: the blocked reader is served once, with all three (a candle close's burst).
        async with gk.redis.pipeline(transaction=True) as pipe:
            for each in burst:
                pipe.xadd(c.INTENTS, entry_fields(c.INTENTS, each))  # type: ignore[arg-type]
            await pipe.execute()
        await eventually(
            lambda: gk.metric("tradealgo_intents_total", {"decision": "approved"}) == 3
        )

        async def all_logged() -> bool:
            return [await _decision(gk, each.intent_id) for each in burst] == ["LOGGED"] * 3

        await eventually(all_logged)
    assert records[0] == 3  # the three orders' records in the first (and only) write
