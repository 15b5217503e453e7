"""The Gatekeeper's async shell: intents in, risk decisions by the pure engine, orders out.

Start-up (adapters/startup.py): state back from Redis, every unfinished order recovered by its tag
in the broker's order book, orders and positions reconciled; only then are intents read.
Tasks:
- intents (group GROUP_GATEKEEPER): check -> engine.evaluate -> decided id and order records
  persisted (one atomic Redis script call, then ClickHouse) -> sent per mode -> OrderEvents /
  RiskEvents -> ack.
  Malformed intents are dead-lettered with the reason (RejectedInput) and counted;
- ticks (XREAD of every partition from the newest entry, a read's ticks handled together):
  engine.on_tick (MTM, kill switch, the ticked position's exits), paper fills; exit intents go
  to the local decision queue; every ticks_per_yield ticks an arrived intent goes first;
- control (XREAD): Control HALT/RESUME (entries stop, exits run), SessionEvent LOGIN (a new token
  for the order-update ticker), KILL_SWITCH_RELEASED from the CLI (the hash is re-read);
- monitor: time-based exits and the kill switch every position_check_interval_s, the kill switch
  hash every kill_switch_poll_s; queued intents drained when the rate allows;
- order updates (adapters/order_updates.py): KiteTicker order updates and polling of the
  order book while orders work;
- sampler: gauges, stream lengths, heartbeat, the available margin (live).
Exactly ONE Gatekeeper may run: the rate limiter, the kill switch and the book live in its memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.gatekeeper.adapters.instruments import RedisInstruments, build_chain
from services.gatekeeper.adapters.journal import Journal
from services.gatekeeper.adapters.kite_broker import Broker, BrokerRejected, BrokerUnavailable
from services.gatekeeper.adapters.metrics import GatekeeperMetrics
from services.gatekeeper.adapters.order_desk import DeskHooks, OrderDesk
from services.gatekeeper.adapters.order_updates import FeedFactory, OrderUpdates
from services.gatekeeper.adapters.redis_state import RedisState
from services.gatekeeper.adapters.risk_reactions import RiskReactions
from services.gatekeeper.adapters.startup import (
    anchor_market_clock,
    differences,
    recover_orders,
    restore_state,
    wait_for_broker_orders,
)
from services.gatekeeper.broker_view import BrokerOrder
from services.gatekeeper.decisions import (
    Approved,
    Decision,
    Denied,
    MonitorOutcome,
    Queued,
    risk_event,
)
from services.gatekeeper.engine import RiskEngine
from services.gatekeeper.exits import ExitDecision
from services.gatekeeper.halting import halt_reason
from services.gatekeeper.intake import intent_problems
from services.gatekeeper.orders import OrderUpdate
from services.gatekeeper.paper import PaperFillModel
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.state import RiskState
from shared import constants as c
from shared.alerts import Alerter
from shared.bus import ConsumeOptions, RejectedInput, StreamBus
from shared.clock import Clock
from shared.messages import Control, Message, OrderIntent, RiskEvent, SessionEvent, Tick
from shared.runtime import freeze_start_objects

logger = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 60


@dataclass
class GatekeeperDeps:
    redis: Any  # redis.asyncio.Redis, bytes replies
    bus: StreamBus
    journal: Journal
    alerter: Alerter
    metrics: GatekeeperMetrics
    clock: Clock
    market_open: Callable[[datetime], bool]
    broker: Broker | None = None  # live, or paper against the simulator
    feed_factory: FeedFactory | None = None  # order updates on the KiteTicker


class Gatekeeper:
    def __init__(self, settings: GatekeeperSettings, deps: GatekeeperDeps) -> None:
        self.s = settings
        self.d = deps
        self.engine = RiskEngine(settings, deps.market_open)
        self.redis_state = RedisState(deps.redis, settings.state_ttl_s)
        self.instruments = RedisInstruments(deps.redis)
        self.state = RiskState.fresh(settings)
        self.desk: OrderDesk | None = None
        self.starting = "starting"
        self.decide_lock = asyncio.Lock()
        self.local_intents: asyncio.Queue[OrderIntent] = asyncio.Queue()
        self._local_ids: set[str] = set()
        self._drain_wake = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self.updates = OrderUpdates(settings, self.redis_state, deps.feed_factory, self._spawn)
        self.reactions = RiskReactions(
            settings, self.state, self.redis_state, deps.bus, deps.journal, deps.alerter,
            deps.metrics, self._spawn, self._exits,
        )  # fmt: skip
        self._ticks_seen = 0
        self._looked_up: set[str] = set()  # symbols whose instrument row was asked for
        self._waiting_in_redis: set[str] = set()  # ids in GATEKEEPER_QUEUED_KEY
        self._ticks_may_run = asyncio.Event()
        self._ticks_may_run.set()

    # -- readiness ------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """/ready: 503 with the reason while starting, halted, tripped or the breaker is open."""
        if self.starting:
            return False, self.starting
        switch = self.state.kill_switch.state
        if switch.tripped:
            return False, f"kill switch tripped: {switch.reason}"
        if self.state.halt_reason is not None:
            return False, f"halted {self.state.halt_reason}"
        denial = self.state.breaker.denial(self.d.clock.now().timestamp())
        if denial is not None:
            return False, denial
        return True, f"ready ({self.s.mode} mode)"

    # -- lifecycle ------------------------------------------------------------------------------

    def _starting(self, reason: str) -> None:
        self.starting = reason

    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Restore, recover and reconcile; intents are read only after this. False when stopped
        before the broker could be reached."""
        s, d = self.s, self.d
        d.metrics.set_mode(s.mode)
        broker = d.broker if s.sends_to_broker() else None
        broker_orders: list[BrokerOrder] = []
        if broker is not None:
            fetched = await wait_for_broker_orders(
                broker, stop or asyncio.Event(), s.token_wait_s, self._starting
            )
            if fetched is None:
                return False
            broker_orders = fetched
        await anchor_market_clock(d.clock, d.broker, s.market_clock_symbol)
        now = d.clock.now()
        self.starting = "starting: restoring state"
        restored = await restore_state(s, self.redis_state, d.journal, now)
        for problem in restored.problems:
            logger.error("start-up: %s", problem)
        self.state = self.reactions.state = restored.state
        paper = PaperFillModel() if s.mode == "paper" and s.paper_source() == "local" else None
        self.desk = OrderDesk(
            s, self.state, self.redis_state, d.journal, d.bus, d.metrics, d.clock, broker, paper,
            DeskHooks(self._after_fill, self.reactions.breaker_changed, self._ticks_may_run.set),
        )  # fmt: skip
        self.desk.adopt(restored.entries)
        self.updates.desk = self.reactions.desk = self.desk
        held = {e.order.plan.symbol for e in restored.entries}
        self.state.instruments.update(await self.instruments.by_symbols(held))
        self.starting = "starting: recovering orders"
        for order_id, kind in await recover_orders(s, self.desk, broker, broker_orders, now):
            if kind == "conflict":
                await self.reactions.reconciliation(order_id, "recovery conflict", now)
        if broker is not None:
            self.starting = "starting: reconciling with the broker"
            await self._reconcile_with(broker, now)
        await self._requeue_waiting()
        self._publish_gauges()
        await self.redis_state.open(s.redis_connections_at_start)
        self.starting = ""
        freeze_start_objects(s.gc_freeze_at_start)
        logger.info("Gatekeeper ready in %s mode: %s", s.mode, self.readiness()[1])
        return True

    async def _reconcile_with(self, broker: Broker, now: datetime) -> None:
        assert self.desk is not None
        if self.s.mode == "live":
            self.state.available_margin = await broker.available_margin()
        diffs = differences(self.desk, await broker.orders(), await broker.positions())
        for diff in diffs:
            self.d.metrics.reconciliation_differences.labels(diff.kind).inc()
            await self.reactions.reconciliation(diff.key, f"{diff.kind}: {diff.reason}", now)
        if diffs and self.s.halt_on_reconcile_differences:
            await self.reactions.halt(f"{len(diffs)} reconciliation differences at start-up", now)
        logger.info("reconciliation with the broker: %s differences", len(diffs))

    async def _requeue_waiting(self) -> None:
        """Intents that waited for the rate when the last process stopped: decided afresh."""
        intents, problems = await self.redis_state.queued()
        for problem in problems:
            logger.error("start-up: %s", problem)
        for intent in intents:
            # Prices are not persisted: decide once the symbol has ticked (or the wait is over).
            self._waiting_in_redis.add(intent.intent_id)
            self._spawn(self._when_priced(intent))

    async def _when_priced(self, intent: OrderIntent) -> None:
        deadline = self.d.clock.now().timestamp() + self.s.queue_max_wait_s
        while intent.symbol not in self.state.quotes:
            if self.d.clock.now().timestamp() >= deadline:
                break
            await asyncio.sleep(0.05)
        logger.info("intent %s queued before the restart: deciding it now", intent.intent_id)
        self._local(intent)

    async def run(self, stop: asyncio.Event) -> None:
        s, d = self.s, self.d
        ticks = [c.partitioned(c.TICKS, p) for p in range(s.tick_partitions)]
        control = [c.CONTROL, c.SESSION_EVENTS, c.RISK_EVENTS]
        # Read from where the streams stood when the process began: nothing published while it
        # restored and reconciled is missed (a HALT in that window, the first prices).
        heads = await self._heads([*ticks, *control])
        journal_stop = asyncio.Event()
        journal = asyncio.ensure_future(d.journal.run(journal_stop))
        if not await self.start(stop):
            await self._shutdown([], journal_stop, journal)
            return
        options = ConsumeOptions(
            count=s.intent_read_count, block_ms=500, reclaim_idle_ms=s.reclaim_idle_ms
        )
        loops: list[Awaitable[Any]] = [
            d.bus.consume_batches([c.INTENTS], c.GROUP_GATEKEEPER, s.consumer_name or "gatekeeper",
                                  self._on_intents, stop, options),
            d.bus.listen_batches(ticks, self._on_ticks, stop, after=heads,
                                 count=s.tick_read_count, block_ms=500),
            d.bus.listen(control, self._on_control, stop, after=heads, block_ms=500),
            self._local_loop(stop), self._drain_loop(stop), self._monitor_loop(stop),
            self.updates.apply_feed(stop), self.updates.poll(stop), self._sample_loop(stop),
        ]  # fmt: skip
        tasks = [asyncio.ensure_future(loop) for loop in loops]
        self.updates.start_feed()
        waiter = asyncio.ensure_future(stop.wait())
        try:
            done, _ = await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not waiter and task.exception() is not None:
                    logger.critical("a Gatekeeper task failed: %r", task.exception())
                    raise task.exception()  # type: ignore[misc]
        finally:
            stop.set()
            await self._shutdown([*tasks, waiter], journal_stop, journal)

    async def _heads(self, streams: list[str]) -> dict[str, str]:
        heads = {}
        for stream in streams:
            newest = await self.d.redis.xrevrange(stream, count=1)
            raw = newest[0][0] if newest else b"0-0"
            heads[stream] = raw.decode() if isinstance(raw, bytes) else str(raw)
        return heads

    async def _shutdown(
        self,
        tasks: list[asyncio.Future[Any]],
        journal_stop: asyncio.Event,
        journal: asyncio.Future[None],
    ) -> None:
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=3.0)
            for task in pending:
                task.cancel()
        for task in [*tasks, *self._background]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self.updates.close()
        if self.desk is not None:
            await self.desk.close()
        if self.d.broker is not None:
            with contextlib.suppress(Exception):
                await self.d.broker.close()
        # Last: every row written above is flushed (or spooled) before the process ends.
        journal_stop.set()
        try:
            await journal
        except Exception:
            logger.exception("the ClickHouse journal failed at shutdown")
        self.d.metrics.stopped()
        logger.info("Gatekeeper stopped")

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- intents --------------------------------------------------------------------------------

    async def _on_intents(
        self, stream: str, items: Sequence[tuple[str, Message]]
    ) -> list[BaseException | None]:
        """The intents of one read, decided together (a burst at a candle close costs one Redis
        round trip, not one each); malformed ones are rejected input (dead-lettered)."""
        received_ns = self.d.clock.time_ns()
        outcomes: list[BaseException | None] = []
        intents: list[OrderIntent] = []
        for _, message in items:
            if not isinstance(message, OrderIntent):
                outcomes.append(RejectedInput(f"{type(message).__name__} on the intents stream"))
                continue
            problems = intent_problems(message)
            if problems:
                outcomes.append(RejectedInput("malformed intent: " + "; ".join(problems)))
                continue
            outcomes.append(None)
            intents.append(message)
        if intents:
            try:
                await self._decide(intents, received_ns)
            except Exception as exc:  # left pending: redelivered, and decided ids are kept
                return [exc if outcome is None else outcome for outcome in outcomes]
        return outcomes

    def _local(self, intent: OrderIntent) -> None:
        if intent.intent_id not in self._local_ids:
            self._local_ids.add(intent.intent_id)
            self.local_intents.put_nowait(intent)

    async def _local_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                intent = await asyncio.wait_for(self.local_intents.get(), 0.5)
            except TimeoutError:
                continue
            self._local_ids.discard(intent.intent_id)
            await self._decide([intent], self.d.clock.time_ns())

    async def _decide(self, intents: Sequence[OrderIntent], received_ns: int) -> None:
        async with self.decide_lock:
            self._ticks_may_run.clear()  # until the orders are handed over (DeskHooks.sent)
            try:
                now = self.d.clock.now()
                decisions = []
                await self._load_instruments({i.symbol for i in intents})
                for intent in intents:
                    await self._prepare(intent, now)
                    decisions.append(self.engine.evaluate(intent, self.state, now))
                await self._handle(decisions, received_ns, now)
            finally:
                self._ticks_may_run.set()

    async def _load_instruments(self, symbols: set[str]) -> None:
        """The instrument rows not known yet, in one round trip (a burst of new symbols)."""
        missing = [symbol for symbol in symbols if symbol not in self.state.instruments]
        if missing:
            self._looked_up.update(missing)
            self.state.instruments.update(await self.instruments.by_symbols(missing))

    async def _learn_instruments(self, symbols: set[str]) -> None:
        try:
            await self._load_instruments(symbols)
        except Exception as exc:  # asked again on their next tick (or on an intent)
            self._looked_up.difference_update(symbols)
            logger.warning("instrument rows of %d ticking symbols not loaded: %s: %s",
                           len(symbols), type(exc).__name__, exc)  # fmt: skip

    async def _prepare(self, intent: OrderIntent, now: datetime) -> None:
        """An options intent's chain, loaded on demand (its instrument row was loaded with the
        burst's, `_load_instruments`)."""
        if intent.option_type is None:
            return
        name = intent.underlying or intent.symbol.split(":", 1)[-1]
        chain = self.state.chains.get(name)
        if chain is not None and (now - chain.ts).total_seconds() < self.s.chain_refresh_s:
            return
        assert self.desk is not None
        quote = self.state.quotes.get(intent.symbol)
        built, infos, how = await build_chain(
            self.instruments, self.d.broker, self.desk.last_ticks,
            underlying=name, spot_exchange=intent.symbol.split(":", 1)[0],
            spot=quote.last_price if quote else intent.reference_price, now=now,
            expiries=self.s.chain_expiries,
            strikes_each_side=self.s.option_strikes_around_atm + 2,
            max_quote_age_s=self.s.max_quote_age_s,
        )  # fmt: skip
        self.state.instruments.update(infos)
        if built is not None:
            self.state.chains[name] = built
            spot = quote.last_price if quote else intent.reference_price
            self.d.journal.options_chain(name, spot, built.quotes, now)
        logger.info("option chain %s: %s", name, how)

    async def _handle(self, decisions: Sequence[Decision], received_ns: int, now: datetime) -> None:
        """Carry out decisions: the approved ones' orders recorded together then sent."""
        d = self.d
        unqueued = [
            x.intent.intent_id
            for x in decisions
            if not isinstance(x, Queued) and x.intent.intent_id in self._waiting_in_redis
        ]
        if unqueued:
            self._waiting_in_redis.difference_update(unqueued)
            await self.redis_state.unqueue(unqueued)
        approved = [x for x in decisions if isinstance(x, Approved)]
        if approved:
            d.metrics.intents.labels("approved").inc(len(approved))
            assert self.desk is not None
            await self.desk.submit(approved, received_ns, now)
        for decision in decisions:
            intent = decision.intent
            if isinstance(decision, Denied) and decision.duplicate:
                d.metrics.intents.labels("duplicate").inc()
                logger.info("intent %s redelivered: %s", intent.intent_id, decision.reason)
            elif isinstance(decision, Denied):
                d.metrics.intents.labels("denied").inc()
                d.metrics.denied(decision.reasons)
                await self.redis_state.record(now, [], [intent.intent_id])
                await self.reactions.risk(risk_event(decision, f"{intent.intent_id}:denied", now))
            elif isinstance(decision, Queued):
                d.metrics.intents.labels("queued").inc()
                await self.redis_state.queue(intent)
                self._waiting_in_redis.add(intent.intent_id)
                await self.reactions.risk(risk_event(decision, f"{intent.intent_id}:queued", now))
                self._drain_wake.set()
            if decision.tripped is not None:
                await self.reactions.tripped(decision.tripped, now, ())

    async def _drain_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            wait = self.engine.retry_in_s(self.state, self.d.clock.now())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain_wake.wait(), 0.5 if wait is None else wait)
            self._drain_wake.clear()
            if stop.is_set() or len(self.state.queue) == 0:
                continue
            async with self.decide_lock:
                now = self.d.clock.now()
                decisions = self.engine.drain(self.state, now)
                await self._handle(decisions, self.d.clock.time_ns(), now)

    # -- prices and the position monitor ----------------------------------------------------

    async def _on_ticks(
        self, stream: str, items: Sequence[tuple[str, Message]]
    ) -> list[BaseException | None]:
        """A shard's ticks of one read, each in turn: quotes, MTM and paper fills from every
        tick, the kill switch and exits from a held instrument's (engine.on_tick). Awaits only
        for what a tick sets off (a fill to apply, a trip, exits) and before every slice of
        `ticks_per_yield` ticks, when an intent that arrived goes first and ticks wait while its
        orders are handed over."""
        desk = self.desk
        assert desk is not None
        engine, state, clock = self.engine, self.state, self.d.clock
        observe = getattr(clock, "observe", None)  # the market clock of a replay
        per_yield = self.s.ticks_per_yield
        # A shard's ticks start a slice of their own: the step that read and decoded them ends
        # before the first tick, so an intent waits behind one of those or one slice, not both.
        left = 0
        outcomes: list[BaseException | None] = [None] * len(items)
        # `now` once per slice: the market clock only moves when a tick's stamp is newer (then
        # it is read again), and the wall moves by microseconds within a slice.
        now: datetime | None = None
        stamp: datetime | None = None
        looked_up, unknown = self._looked_up, set[str]()
        for i, (_, message) in enumerate(items):
            if left <= 0:
                await asyncio.sleep(0)
                await self._ticks_may_run.wait()
                left, now = per_yield, None
            left -= 1
            if not isinstance(message, Tick):
                outcomes[i] = RejectedInput(f"{type(message).__name__} on a ticks stream")
                continue
            if observe is not None and message.exchange_ts != stamp:
                # Observing a stamp again changes nothing; a new one may move the clock.
                stamp = message.exchange_ts
                observe(stamp)
                now = None
            if message.symbol not in looked_up and message.symbol not in state.instruments:
                unknown.add(message.symbol)
            if now is None:
                now = clock.now()
            outcome = engine.on_tick(state, message, now)
            fills = desk.on_tick(message)
            if fills or outcome.tripped is not None or outcome.exits:
                await self._after_tick(fills, outcome, now)
                now = None  # time went by while awaiting
        self._ticks_seen += len(items)
        if unknown:
            # Instruments that trade are learnt in the background from their first tick: an
            # intent on them later is decided without a lookup round trip first.
            self._looked_up.update(unknown)
            self._spawn(self._learn_instruments(unknown))
        return outcomes

    async def _after_tick(
        self, fills: list[tuple[str, OrderUpdate]], outcome: MonitorOutcome, now: datetime
    ) -> None:
        """What one tick set off: paper fills applied, a trip or exits carried out."""
        assert self.desk is not None
        for order_id, update in fills:
            await self.desk.apply(order_id, update)
        if outcome.tripped is not None:
            await self.reactions.tripped(outcome.tripped, now, outcome.exits)
        elif outcome.exits:
            await self._exits(outcome.exits, now)

    async def _exits(self, exits: tuple[ExitDecision, ...], now: datetime) -> None:
        for intent in self.engine.exit_intents(self.state, exits, now):
            if intent.intent_id in self._local_ids or intent.intent_id in self.state.decided:
                continue
            logger.warning("exit %s of %s: %s", intent.intent_id, intent.symbol, intent.reason)
            await self.reactions.risk(
                RiskEvent(
                    event_id=f"{intent.intent_id}:exit", kind="EXIT", reason=intent.reason,
                    ts=now, intent_id=intent.intent_id, symbol=intent.symbol,
                )
            )  # fmt: skip
            self._local(intent)

    async def _monitor_loop(self, stop: asyncio.Event) -> None:
        s = self.s
        last_sync = 0.0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stop.wait(), min(s.position_check_interval_s, s.kill_switch_poll_s)
                )
            now = self.d.clock.now()
            outcome = self.engine.check_positions(self.state, now)
            if outcome.tripped is not None:
                await self.reactions.tripped(outcome.tripped, now, outcome.exits)
            elif outcome.exits:
                await self._exits(outcome.exits, now)
            if now.timestamp() - last_sync >= s.kill_switch_poll_s:
                last_sync = now.timestamp()
                await self.reactions.sync_kill_switch()

    async def _after_fill(self, now: datetime) -> None:
        assert self.desk is not None
        for position in self.state.book.positions.values():
            self.d.journal.position(position, self.s.mode, now)
        tripped = self.engine.check_kill_switch(self.state, now)
        if tripped is not None:
            await self.reactions.tripped(tripped, now, ())

    # -- control ------------------------------------------------------------------------------

    async def _on_control(self, stream: str, entry_id: str, message: Message) -> None:
        if isinstance(message, Control):
            halt = await self.redis_state.halt()
            if message.command == "HALT":
                self.state.halt_reason = (
                    halt_reason(halt) or f"by {message.source}: {message.reason}"
                )
            else:
                self.state.halt_reason = halt_reason(halt)
            self.d.metrics.set_halted(self.state.halt_reason is not None)
            logger.warning("Control %s from %s (%s): entries %s", message.command, message.source,
                           message.reason, "stopped" if self.state.halt_reason else "allowed")  # fmt: skip
        elif isinstance(message, SessionEvent) and message.kind == "LOGIN":
            self.updates.start_feed()
        elif isinstance(message, RiskEvent) and message.kind == "KILL_SWITCH_RELEASED":
            await self.reactions.sync_kill_switch()

    # -- gauges ---------------------------------------------------------------------------------

    def _publish_gauges(self) -> None:
        m, state, now = self.d.metrics, self.state, self.d.clock.now()
        m.set_pnl(state.book.realised(), state.book.unrealised())
        m.open_positions.set(state.book.open_count())
        m.limiter_tokens.set(state.limiter.bucket.tokens(now.timestamp()))
        m.queue_depth.set(len(state.queue))
        m.kill_switch.set(1 if state.kill_switch.tripped else 0)
        m.breaker.set(1 if state.breaker.denial(now.timestamp()) else 0)
        m.set_halted(state.halt_reason is not None)

    async def _sample_loop(self, stop: asyncio.Event) -> None:
        s, d = self.s, self.d
        streams = [c.INTENTS, *[c.partitioned(c.TICKS, p) for p in range(s.tick_partitions)]]
        while not stop.is_set():
            self._publish_gauges()
            try:
                await self.redis_state.heartbeat(d.clock.now(), HEARTBEAT_TTL_S)
                for stream in streams:
                    d.metrics.stream_length.labels(stream).set(await d.redis.xlen(stream))
                groups = await d.redis.xinfo_groups(c.INTENTS)
                for group in groups:
                    name = group.get("name", b"")
                    name = name.decode() if isinstance(name, bytes) else str(name)
                    d.metrics.stream_pending.labels(c.INTENTS, name).set(
                        int(group.get("pending", 0))
                    )
                if s.mode == "live" and self.desk is not None and self.desk.broker is not None:
                    self.state.available_margin = await self.desk.broker.available_margin()
            except (BrokerRejected, BrokerUnavailable) as exc:
                logger.warning("margin refresh failed: %s", exc)
            except Exception as exc:
                logger.debug("sampling failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.sample_interval_s)
