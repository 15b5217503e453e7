"""The order desk: approved orders are recorded, sent per mode, and followed to a final state.

Every order is written to Redis (the durable record crash recovery reads) and queued for
ClickHouse BEFORE it is sent, and again at every change; each change is an OrderEvent on the
order-events stream. Sending per mode:
- logging: the full order Kite would receive is logged and stored as LOGGED; nothing is sent;
- paper, local fills: the PaperFillModel takes it and fills it on the next ticks;
- paper against the simulator, and live: `place_order` once (never retried: see kite_broker.py);
  a refusal -> REJECTED; a failure in transit -> FAILED and, after `recovery_delay_s`, the tag is
  looked up in the broker's order book (`recovery_action`) before anything is sent again.
  A new order's `place_order` runs as its own task once the order is recorded and paced: the
  next intent is decided without waiting for this one's round trip (tens of ms to the broker),
  and its outcome (acknowledgement, refusal, failure) is applied whenever it comes. Shutdown
  waits for calls in flight (up to the HTTP timeout): an abandoned call's outcome is unknown.
Broker order rows (WebSocket updates, polls) and paper fills go through the state machine; a fill
goes to the position book, then the kill switch is checked. The circuit breaker hears of every
rejection or failed call, and of every order the broker accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.gatekeeper.adapters.journal import Journal
from services.gatekeeper.adapters.kite_broker import Broker, BrokerRejected, BrokerUnavailable
from services.gatekeeper.adapters.metrics import GatekeeperMetrics
from services.gatekeeper.adapters.redis_state import RedisState
from services.gatekeeper.broker_view import BrokerOrder
from services.gatekeeper.decisions import Approved
from services.gatekeeper.order_flow import breaker_signal, intent_finished, update_from_broker
from services.gatekeeper.order_journal import JournalEntry
from services.gatekeeper.orders import (
    OrderRecord,
    OrderUpdate,
    acknowledge,
    apply_update,
    kite_order_params,
    record,
)
from services.gatekeeper.paper import PaperFillModel
from services.gatekeeper.recovery import recovery_action
from services.gatekeeper.risk.circuit_breaker import BreakerTransition
from services.gatekeeper.risk.token_bucket import SlidingWindowCaps, WindowCap
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.state import RiskState
from shared import constants as c
from shared.bus import StreamBus
from shared.clock import Clock
from shared.messages import Tick

logger = logging.getLogger(__name__)


@dataclass
class DeskHooks:
    """What the desk tells the service: a fill moved the book (check the kill switch), the
    breaker changed state, an order was just handed to the broker (the urgent part is over)."""

    after_fill: Callable[[datetime], Awaitable[None]]
    breaker_changed: Callable[[BreakerTransition, datetime], Awaitable[None]]
    sent: Callable[[], None] = lambda: None


class OrderDesk:
    def __init__(
        self,
        settings: GatekeeperSettings,
        state: RiskState,
        redis_state: RedisState,
        journal: Journal,
        bus: StreamBus,
        metrics: GatekeeperMetrics,
        clock: Clock,
        broker: Broker | None,
        paper: PaperFillModel | None,
        hooks: DeskHooks,
    ) -> None:
        self.s = settings
        self.state = state
        self.redis_state = redis_state
        self.journal = journal
        self.bus = bus
        self.metrics = metrics
        self.clock = clock
        self.broker = broker
        self.paper = paper
        self.hooks = hooks
        self.entries: dict[str, JournalEntry] = {}
        self.by_broker_id: dict[str, str] = {}
        self.by_tag: dict[str, str] = {}
        self.last_ticks: dict[str, Tick] = {}
        self._sent_ns: dict[str, int] = {}
        self._acked_ns: dict[str, int] = {}
        self._recovering: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._placing: set[asyncio.Task[None]] = set()  # place_order calls in flight
        # The broker's hard caps again, at the moment each order really goes out: the engine's
        # limiter counts decision times, and an order persisted slowly then sent late must not
        # land in the same second as the next ones (measured: 11 in a second without this).
        self.pacer = SlidingWindowCaps(
            (
                WindowCap(1.0, settings.broker_orders_per_second),
                WindowCap(60.0, settings.broker_orders_per_minute),
                WindowCap(86400.0, settings.broker_orders_per_day),
            )
        )

    # -- bookkeeping ------------------------------------------------------------------------------

    def adopt(self, entries: Iterable[JournalEntry]) -> None:
        """Start-up: take the day's records (the book was rebuilt from them)."""
        for entry in entries:
            self._index(entry)

    def _index(self, entry: JournalEntry) -> None:
        order = entry.order
        self.entries[order.plan.order_id] = entry
        self.by_tag[order.plan.tag] = order.plan.order_id
        if order.broker_order_id:
            self.by_broker_id[order.broker_order_id] = order.plan.order_id

    def working(self) -> list[JournalEntry]:
        return [e for e in self.entries.values() if not e.order.is_final]

    def broker_working(self) -> bool:
        return any(e.order.mode != "logging" for e in self.working())

    def of_intent(self, intent_id: str) -> list[OrderRecord]:
        return [e.order for e in self.entries.values() if e.order.plan.intent_id == intent_id]

    async def _save(self, entry: JournalEntry, now: datetime, step: bool = True) -> None:
        """Persist the order; `step` False: no new state (e.g. the broker id learnt late), so no
        event and no count."""
        self._index(entry)
        await self.redis_state.record(now, [entry])
        self.journal.order(entry)
        if not step:
            return
        order = entry.order
        event = order.to_event(f"{order.plan.order_id}:{order.status}:{order.filled_quantity}")
        self.journal.order_event(event)
        self.metrics.order_status(order.mode, order.status)
        await self.bus.publish(c.ORDER_EVENTS, event)

    # -- new orders -------------------------------------------------------------------------------

    async def submit(self, decisions: Sequence[Approved], received_ns: int, now: datetime) -> None:
        """Record every slice of every decision (with the intents' ids as decided, in the same
        atomic script call: one round trip however many intents a burst brought), then send."""
        mode = self.s.mode
        entries = [
            JournalEntry(
                record(plan, mode, now, "; ".join(decision.reasons)),
                decision.terms,
                now,
                received_ns,
                decision.intent.last_tick_received_ns,
                decision.intent.strategy,
            )
            for decision in decisions
            for plan in decision.orders
        ]
        for entry in entries:
            self._index(entry)
        events = [e.order.to_event(f"{e.order.plan.order_id}:RECORDED:0") for e in entries]
        # One round trip before anything is sent: records, the decided id, the RECORDED events.
        await self.redis_state.record(
            now,
            entries,
            [decision.intent.intent_id for decision in decisions],
            [(c.ORDER_EVENTS, event) for event in events],
            self.s.stream_maxlen,
        )
        self.metrics.published(c.ORDER_EVENTS, len(events))
        for entry, event in zip(entries, events, strict=True):
            self.journal.order(entry)
            self.journal.order_event(event)
            self.metrics.order_status(mode, "RECORDED")
        for entry in entries:
            await self.send(entry.order.plan.order_id, wait=False)

    async def _pace(self) -> None:
        """Wait until the broker's caps allow one more order now, then count it."""
        while True:
            now = self.clock.now().timestamp()
            if self.pacer.try_take(now):
                return
            wait = self.pacer.next_available(now) - now
            logger.info("order held %.1f ms by the broker's rate caps", wait * 1000)
            await asyncio.sleep(max(wait, 0.0005))

    def _observe_sent(self, entry: JournalEntry) -> None:
        self.hooks.sent()
        now_ns = self.clock.time_ns()
        self._sent_ns[entry.order.plan.order_id] = now_ns
        if entry.intent_received_ns:
            seconds = max(now_ns - entry.intent_received_ns, 0) / 1e9
            self.metrics.order_latency.labels("intent_to_sent").observe(seconds)
        if entry.tick_received_ns:
            self.metrics.tick_to_order.observe(max(now_ns - entry.tick_received_ns, 0) / 1e9)

    async def send(self, order_id: str, wait: bool = True) -> None:
        """Send one recorded order per mode (also recovery's "place"). `wait` False: return once
        the order is handed to the broker; its outcome is applied by a task of its own."""
        entry = self.entries[order_id]
        plan = entry.order.plan
        params = kite_order_params(plan)
        await self._pace()
        if self.s.mode == "logging":
            self._observe_sent(entry)
            logger.info("LOGGED order %s (logging-only mode, NOT sent): %s", order_id, params)
            await self.apply(order_id, OrderUpdate("LOGGED", self.clock.now(), reason="logging"))
            return
        if self.paper is not None:
            self._observe_sent(entry)
            tick = self.last_ticks.get(plan.symbol) or _tick_from_quote(
                self.state, plan.symbol, self.clock.now()
            )
            paper = self.paper.submit(plan, tick)
            logger.info("paper order %s submitted to the local fill model: %s", order_id, params)
            await self.apply(order_id, paper.update)
            return
        assert self.broker is not None, "a broker mode without a broker"
        if wait:
            self._observe_sent(entry)
            await self._place(order_id, params)
            return
        # Started at once (eager): KiteBroker writes the request before it first waits (on a
        # kept-alive connection), so the order is on the wire when the task yields; its
        # latencies are observed then, not when it was merely handed over.
        task = asyncio.Task(
            self._place(order_id, params), loop=asyncio.get_running_loop(), eager_start=True
        )
        self._observe_sent(entry)
        if task.done():  # the broker answered without suspending (a test double)
            self._placed(task)
            return
        self._placing.add(task)
        task.add_done_callback(self._placed)

    def _placed(self, task: asyncio.Task[None]) -> None:
        self._placing.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("placing an order failed unexpectedly: %r", task.exception())

    async def _place(self, order_id: str, params: dict[str, Any]) -> None:
        assert self.broker is not None
        try:
            broker_id = await self.broker.place(params)
        except BrokerRejected as exc:
            logger.warning("order %s refused by the broker: %s", order_id, exc)
            await self.apply(order_id, OrderUpdate("REJECTED", self.clock.now(), reason=str(exc)))
            return
        except BrokerUnavailable as exc:
            logger.error("order %s: place_order failed, outcome unknown: %s", order_id, exc)
            await self.apply(order_id, OrderUpdate("FAILED", self.clock.now(), reason=str(exc)))
            self._spawn(self._recover_later(order_id))
            return
        await self._acknowledged(order_id, broker_id)

    async def _acknowledged(self, order_id: str, broker_id: str) -> None:
        now = self.clock.now()
        now_ns = self.clock.time_ns()
        self._acked_ns[order_id] = now_ns
        sent = self._sent_ns.get(order_id)
        if sent is not None:
            self.metrics.order_latency.labels("sent_to_ack").observe(max(now_ns - sent, 0) / 1e9)
        entry = self.entries[order_id]
        transition = acknowledge(entry.order, broker_id, now)
        if transition.refused is not None:
            logger.error("order %s acknowledgement refused: %s", order_id, transition.refused)
            self.metrics.updates_refused.inc()
            return
        self.by_broker_id[broker_id] = order_id
        logger.info(
            "order %s placed: broker order %s (%s)", order_id, broker_id, transition.order.status
        )
        moved = transition.order.status != entry.order.status
        await self._save(replace(entry, order=transition.order), now, step=moved)
        if self.state.kill_switch.tripped and not entry.order.plan.is_exit:
            # Tripped while this order was on its way: it would add risk; cancel it now.
            await self._cancel_entry(
                self.entries[order_id], "the kill switch tripped while the order was in flight"
            )

    # -- updates ----------------------------------------------------------------------------------

    async def on_broker_order(self, broker: BrokerOrder) -> None:
        """A broker order row (WebSocket update or poll); other apps' orders are ignored."""
        order_id = self.by_broker_id.get(broker.broker_order_id) or (
            self.by_tag.get(broker.tag) if broker.tag else None
        )
        if order_id is None:
            return
        entry = self.entries[order_id]
        update, why = update_from_broker(entry.order, broker, self.clock.now())
        if update is None:
            if why != "unchanged" and why != "still pending at the broker":
                logger.warning("order %s: %s", order_id, why)
            return
        await self.apply(order_id, update)

    async def apply(self, order_id: str, update: OrderUpdate) -> None:
        """One update through the state machine; saves, publishes, books fills, tells the breaker."""
        entry = self.entries[order_id]
        before = entry.order
        transition = apply_update(before, update)
        if transition.refused is not None:
            logger.warning(
                "order %s update %s refused: %s", order_id, update.status, transition.refused
            )
            self.metrics.updates_refused.inc()
            return
        after = transition.order
        now = update.ts if update.ts.tzinfo else self.clock.now()
        await self._save(replace(entry, order=after), now)
        logger.info(
            "order %s %s -> %s filled %s/%s avg %s %s",
            order_id, before.status, after.status, after.filled_quantity,
            after.plan.quantity, after.average_price, after.reason,
        )  # fmt: skip
        if transition.fill is not None:
            if before.filled_quantity == 0 and order_id in self._acked_ns:
                gap = max(self.clock.time_ns() - self._acked_ns[order_id], 0) / 1e9
                self.metrics.order_latency.labels("ack_to_fill").observe(gap)
            problem = self.state.book.apply_fill(transition.fill, entry.terms)
            if problem is not None:
                logger.warning("fill of %s not booked: %s", order_id, problem)
            await self.hooks.after_fill(self.clock.now())
        await self._tell_breaker(before.status, after.status, after.reason)
        if (
            after.is_final
            and after.plan.is_exit
            and intent_finished(self.of_intent(after.plan.intent_id))
        ):
            self.state.book.exit_finished(after.plan.symbol)

    async def _tell_breaker(self, before: Any, after: Any, reason: str) -> None:
        signal = breaker_signal(before, after)
        if signal is None:
            return
        now = self.clock.now()
        breaker = self.state.breaker
        transition = (
            breaker.record_failure(now.timestamp(), reason or after)
            if signal == "failure"
            else breaker.record_success(now.timestamp())
        )
        if transition is not None:
            await self.hooks.breaker_changed(transition, now)

    async def poll(self) -> int:
        """Fetch the broker's order book and apply what changed; returns the rows seen."""
        if self.broker is None:
            return 0
        rows = await self.broker.orders()
        for row in rows:
            await self.on_broker_order(row)
        return len(rows)

    def on_tick(self, tick: Tick) -> list[tuple[str, OrderUpdate]]:
        """Paper (local): keep the tick for pricing new orders; fills it allows."""
        self.last_ticks[tick.symbol] = tick
        if self.paper is None:
            return []
        return [(u.order_id, u.update) for u in self.paper.on_tick(tick)]

    # -- cancellations and recovery ---------------------------------------------------------------

    async def cancel_working_entries(self, reason: str) -> None:
        """Kill switch: a resting entry that fills later would add risk: cancel it."""
        for entry in self.working():
            if not entry.order.plan.is_exit:
                await self._cancel_entry(entry, reason)

    async def _cancel_entry(self, entry: JournalEntry, reason: str) -> None:
        order = entry.order
        if self.paper is not None:
            tick = self.last_ticks.get(order.plan.symbol) or _tick_from_quote(
                self.state, order.plan.symbol, self.clock.now()
            )
            cancelled = self.paper.cancel(order.plan.order_id, tick)
            if cancelled is not None:
                await self.apply(order.plan.order_id, replace(cancelled.update, reason=reason))
        elif (
            self.broker is not None
            and order.broker_order_id
            and order.status in ("OPEN", "PARTIAL", "SENT")
        ):
            try:
                await self.broker.cancel(order.broker_order_id)
                logger.warning("cancelled working entry %s: %s", order.plan.order_id, reason)
            except (BrokerRejected, BrokerUnavailable) as exc:
                logger.error("cancel of %s failed: %s", order.plan.order_id, exc)

    async def recover(self, order_id: str, broker_orders: list[BrokerOrder], now: datetime) -> str:
        """recovery_action for one non-final order; returns the action's kind (for the report)."""
        entry = self.entries[order_id]
        order = entry.order
        with_tag = [b for b in broker_orders if b.tag == order.plan.tag]
        action = recovery_action(order, with_tag, now, self.s.recovery_max_age_s)
        logger.warning(
            "recovery of %s (%s): %s - %s", order_id, order.status, action.kind, action.reason
        )
        if action.kind in ("adopt", "abandon") and action.update is not None:
            await self.apply(order_id, action.update)
        elif action.kind == "place":
            await self.send(order_id)
        return action.kind

    async def _recover_later(self, order_id: str) -> None:
        """After a failed place_order: look the tag up (never re-send while it may exist)."""
        if order_id in self._recovering:
            return
        self._recovering.add(order_id)
        try:
            for attempt in range(1, self.s.recovery_attempts + 1):
                await asyncio.sleep(self.s.recovery_delay_s * attempt)
                if self.entries[order_id].order.status != "FAILED" or self.broker is None:
                    return
                try:
                    rows = await self.broker.orders()
                except (BrokerRejected, BrokerUnavailable) as exc:
                    logger.warning(
                        "tag lookup for %s failed (attempt %s): %s", order_id, attempt, exc
                    )
                    continue
                await self.recover(order_id, rows, self.clock.now())
                return
            logger.error(
                "order %s stays FAILED: the broker's order book could not be read", order_id
            )
        finally:
            self._recovering.discard(order_id)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._placing:  # an abandoned place_order would leave its outcome unknown
            await asyncio.wait(list(self._placing), timeout=self.s.http_timeout_s)
        for task in [*self._tasks, *self._placing]:
            task.cancel()
        for task in [*self._tasks, *self._placing]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _tick_from_quote(state: RiskState, symbol: str, now: datetime) -> Tick:
    """A minimal tick from the last quote (a paper order for an instrument not ticked yet)."""
    quote = state.quotes.get(symbol)
    token = state.instruments[symbol].instrument_token if symbol in state.instruments else 0
    return Tick(
        instrument_token=token,
        symbol=symbol,
        last_price=quote.last_price if quote else 0.0,
        exchange_ts=now,
        received_ns=0,
    )
