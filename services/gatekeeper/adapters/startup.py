"""Start-up before trading resumes: the day's state back from Redis, every order recovered, our
orders and positions reconciled with the broker's (an IO step of the shell).

0. The broker's order book, waited for (not ready, with the reason) until it can be read; a
   replay's market clock anchored at a quote's timestamp.

1. The kill switch (KILL_SWITCH_KEY; unreadable reads TRIPPED), the HALT state, the decided intent
   ids (Redis, plus ClickHouse `order_intents` when Redis lost them), the day's order records and
   the position book rebuilt from them.
2. Every order not final: `recovery_action` against the broker's order book (looked up by tag):
   adopt / place / abandon / conflict. Logging mode has no broker (an unsent RECORDED order is
   logged now). Paper with local fills lost its resting orders with the process: they are
   cancelled with that reason, unsent ones are placed again.
3. `reconcile` of orders and net positions with the broker: each difference is a RECONCILIATION
   RiskEvent, a log line and a metric; with `halt_on_reconcile_differences` the Gatekeeper halts
   new entries (HALT_KEY source "gatekeeper") until an operator has looked (`tradealgo resume`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from services.gatekeeper.adapters.journal import Journal
from services.gatekeeper.adapters.kite_broker import Broker, BrokerRejected, BrokerUnavailable
from services.gatekeeper.adapters.order_desk import OrderDesk
from services.gatekeeper.adapters.redis_state import RedisState
from services.gatekeeper.broker_view import BrokerOrder, BrokerPosition
from services.gatekeeper.halting import halt_reason
from services.gatekeeper.order_journal import JournalEntry, rebuild_book
from services.gatekeeper.orders import OrderUpdate
from services.gatekeeper.reconcile import Difference, reconcile
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.state import RiskState
from shared.clock import IST, to_ist

logger = logging.getLogger(__name__)


async def wait_for_broker_orders(
    broker: Broker, stop: asyncio.Event, wait_s: float, waiting: Callable[[str], None]
) -> list[BrokerOrder] | None:
    """The broker's order book, asked again every `wait_s` (each failure told to `waiting`)
    until it can be read; None when stopped first."""
    while not stop.is_set():
        try:
            return await broker.orders()
        except (BrokerRejected, BrokerUnavailable) as exc:
            reason = f"starting: waiting for the broker ({exc})"
            waiting(reason)
            logger.warning("%s; retrying in %.1f s", reason, wait_s)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait_s)
    return None


async def anchor_market_clock(clock: Any, broker: Broker | None, symbol: str) -> None:
    """A replay's market clock starts at the market's time (a quote's timestamp), so the day's
    records, the rate limiter and the breaker never see the wall clock's date."""
    anchor = getattr(clock, "anchor", None)
    if anchor is None or broker is None:
        return
    try:
        quote = (await broker.quote([symbol])).get(symbol) or {}
    except (BrokerRejected, BrokerUnavailable) as exc:
        logger.error("market clock: no quote of %s (%s): the wall clock until a tick", symbol, exc)
        return
    stamp = quote.get("timestamp") or quote.get("last_trade_time")
    if not isinstance(stamp, datetime):
        logger.error("market clock: the quote of %s has no timestamp", symbol)
        return
    # kiteconnect parses Kite's IST "yyyy-mm-dd hh:mm:ss" into a naive datetime.
    anchor(stamp if stamp.tzinfo else stamp.replace(tzinfo=IST))
    logger.info("market clock anchored at %s (%s)", clock.now().isoformat(), symbol)


@dataclass
class Restored:
    state: RiskState
    entries: list[JournalEntry]
    problems: list[str] = field(default_factory=list)


async def restore_state(
    settings: GatekeeperSettings, redis_state: RedisState, journal: Journal, now: datetime
) -> Restored:
    """Step 1: everything the engine knew before the restart."""
    switch: KillSwitchState = await redis_state.kill_switch()
    state = RiskState.fresh(settings, switch)
    state.halt_reason = halt_reason(await redis_state.halt())
    day_start = datetime.combine(to_ist(now).date(), time(0, 0), IST)
    state.decided = await redis_state.decided(now)
    try:
        state.decided |= await journal.decided_intents(day_start)
    except Exception as exc:  # ClickHouse down: Redis alone still has today's decisions
        logger.warning("decided intents from ClickHouse unavailable: %s", exc)
    entries, problems = await redis_state.orders(now)
    book, book_problems = rebuild_book(entries)
    state.book = book
    for entry in entries:
        state.decided.add(entry.order.plan.intent_id)
    restored = Restored(state, entries, problems + book_problems)
    if switch.tripped:
        logger.warning("kill switch is TRIPPED since %s: %s", switch.tripped_at, switch.reason)
    logger.info(
        "restored: %s decided intents, %s orders (%s working), %s open positions, MTM %.2f",
        len(state.decided),
        len(entries),
        sum(1 for e in entries if not e.order.is_final),
        book.open_count(),
        book.mtm(),
    )
    return restored


async def recover_orders(
    settings: GatekeeperSettings,
    desk: OrderDesk,
    broker: Broker | None,
    broker_orders: list[BrokerOrder],
    now: datetime,
) -> list[tuple[str, str]]:
    """Step 2: (order id, action kind) for every order that was not final."""
    outcomes = []
    for entry in desk.working():
        order = entry.order
        order_id = order.plan.order_id
        if desk.paper is not None and order.status not in ("RECORDED", "FAILED"):
            await desk.apply(
                order_id,
                OrderUpdate("CANCELLED", now, reason="paper order lost with the restarted process"),
            )
            outcomes.append((order_id, "abandon"))
            continue
        kind = await desk.recover(order_id, broker_orders if broker is not None else [], now)
        outcomes.append((order_id, kind))
    return outcomes


def differences(
    desk: OrderDesk, broker_orders: list[BrokerOrder], broker_positions: list[BrokerPosition]
) -> list[Difference]:
    """Step 3's diff: today's broker-backed orders and the book's net positions."""
    local_orders = [e.order for e in desk.entries.values()]
    local_positions = {
        p.symbol: p.quantity for p in desk.state.book.positions.values() if p.quantity != 0
    }
    return reconcile(local_orders, broker_orders, local_positions, broker_positions)
