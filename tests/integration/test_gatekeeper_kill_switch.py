"""The kill switch end to end on real Redis: a loss on live ticks trips it (HALT everyone, alert,
persisted), it survives a restart (entries still refused, /ready 503), and only the CLI's
`kill-switch release` (then `resume`) lets entries through again."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from services.cli.main import main as cli
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.gatekeeper.settings import GatekeeperSettings
from services.sentinel.checks import CHECK_NAMES, HaltState
from shared import constants as c
from shared.bus import decode_entry
from shared.messages import Control, OrderEvent
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


def _settings(redis_url: str, store: Store) -> GatekeeperSettings:
    # 2 % of 100,000 = 2,000: 60 shares falling 40 rupees trip it.
    return gk_settings(
        redis_url,
        store,
        mode="paper",
        paper_fills="local",
        capital=100_000.0,
        max_capital_per_trade_pct=100.0,
        max_position_pct=100.0,
    )


async def _open_position(gk: RunningGatekeeper, clock: TradingClock) -> None:
    await seed_instruments(gk.redis, {INFY: instrument_row(INFY, INFY_TOKEN)})
    await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now())])
    await eventually(lambda: INFY in gk.service.state.quotes)
    await gk.publish_intent(intent(INFY, INFY_TOKEN, 1500.0, clock.now(), quantity=60))
    await eventually(lambda: gk.service.desk is not None and gk.service.desk.working())
    await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1500.0, clock.now(), depth=1)])
    await eventually(lambda: gk.service.state.book.quantity(INFY) == 60)


async def _controls(gk: RunningGatekeeper) -> list[Control]:
    return [decode_entry(c.CONTROL, f) for _, f in await gk.redis.xrange(c.CONTROL)]  # type: ignore[misc]


async def _denied_reason(gk: RunningGatekeeper, intent_id: str) -> str | None:
    for event in await gk.risk_events():
        if event.intent_id == intent_id and event.kind == "DENIED":
            return event.reason
    return None


async def test_a_loss_trips_the_switch_halts_everyone_and_survives_a_restart(
    redis_url: str,
    clickhouse_server: Any,
    clickhouse_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    settings = _settings(redis_url, store)
    async with running_gatekeeper(settings, clock=clock) as gk:
        await _open_position(gk, clock)
        assert gk.service.readiness()[0]
        # 1,459.95: (1459.95 - 1500.05) x 60 = -2,406 = 2.41 % of capital.
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1459.95, clock.now())])
        await eventually(lambda: gk.metric("tradealgo_kill_switch_tripped") == 1)
        ready, why = gk.service.readiness()
        assert not ready and "kill switch tripped" in why
        persisted = KillSwitchState.from_fields(
            {k.decode(): v.decode() for k, v in (await gk.redis.hgetall(c.KILL_SWITCH_KEY)).items()}
        )
        assert persisted.tripped and "2.41 %" in persisted.reason
        halt = HaltState.from_hash(
            {k.decode(): v.decode() for k, v in (await gk.redis.hgetall(c.HALT_KEY)).items()}
        )
        assert halt.halted and halt.source == "gatekeeper"
        await eventually(_has_halt_control(gk))
        assert any(e.kind == "KILL_SWITCH_TRIPPED" for e in await gk.risk_events())
        await eventually(lambda: [a.key for a in gk.alerter.alerts] == ["kill-switch"])

    # A new process: still tripped, entries refused with the reason, /ready 503.
    async with running_gatekeeper(settings, clock=clock) as gk:
        assert gk.service.state.kill_switch.tripped
        assert not gk.service.readiness()[0]
        assert gk.service.state.book.quantity(INFY) == 60  # the book came back too
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1470.0, clock.now())])
        entry = intent(INFY, INFY_TOKEN, 1470.0, clock.now(), quantity=1)
        await gk.publish_intent(entry)
        reason = await eventually(lambda: _denied_reason(gk, entry.intent_id))
        assert "kill switch tripped" in str(reason)

        # Only the CLI releases it (then an operator resumes trading).
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CLI_REDIS_URL", redis_url)
        monkeypatch.setenv("CLI_OPERATOR", "asha")
        monkeypatch.setenv("CLI_GATEKEEPER_URL", "http://127.0.0.1:9")
        monkeypatch.setenv("CLI_HTTP_TIMEOUT_S", "0.5")
        await gk.redis.hset(c.CHECKS_KEY, mapping=dict.fromkeys(CHECK_NAMES, "ok"))
        args = ["kill-switch", "release", "--reason", "reviewed the loss"]
        assert await asyncio.to_thread(cli, args) == 0
        await eventually(lambda: not gk.service.state.kill_switch.tripped)
        assert not gk.service.readiness()[0]  # still halted until resume
        assert await asyncio.to_thread(cli, ["resume", "--reason", "back to normal"]) == 0
        await eventually(gk.ready)
        assert gk.metric("tradealgo_kill_switch_tripped") == 0


def _has_halt_control(gk: RunningGatekeeper) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return any(m.command == "HALT" and m.source == "gatekeeper" for m in await _controls(gk))

    return check


async def test_with_flatten_on_kill_a_trip_closes_the_position_with_a_protected_limit(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str
) -> None:
    store = Store.of(clickhouse_server, clickhouse_db)
    clock = TradingClock()
    settings = _settings(redis_url, store).model_copy(update={"flatten_on_kill": True})
    async with running_gatekeeper(settings, clock=clock) as gk:
        await _open_position(gk, clock)
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1459.95, clock.now())])
        await eventually(lambda: gk.service.state.kill_switch.tripped)

        async def flatten_order() -> list[OrderEvent]:
            return [
                e
                for e in await gk.order_events()
                if e.side == "SELL" and e.status == "OPEN" and e.order_type == "LIMIT"
            ]

        await eventually(flatten_order)
        (exit_order,) = await flatten_order()
        assert exit_order.price == 1452.7  # 1459.95 x (1 - 0.5 %) = 1452.65025, up to the tick
        assert any("KILL_SWITCH" in e.reason for e in await gk.risk_events() if e.kind == "EXIT")
        await gk.publish_ticks([tick(INFY, INFY_TOKEN, 1459.95, clock.now(), depth=1)])
        await eventually(lambda: gk.service.state.book.quantity(INFY) == 0)
