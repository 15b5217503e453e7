"""The Consumer's async shell: tick partitions in, candles, signals and intents out.

Tasks of one replica:
- ownership (every lease_renew_s): register in the replica set, renew the partition leases,
  take free partitions up to the fair share and give back extra ones (ownership.py). Each owned
  partition has a PartitionWorker (adapters/partition.py): restore its checkpoint, claim the
  pending entries of its consumer group and handle them, then join the reader; a partition given
  back on purpose commits first;
- reader (adapters/tick_reader.py): one XREADGROUP for every owned partition; strategy ticks of
  all partitions first, their intents in one call (adapters/intent_outbox.py), then the rest;
  commits every commit_interval_ms;
- timer (every timer_interval_s): close buckets past end + grace in each partition's market time
  (illiquid instruments close on time), then let cross-sectional strategies decide;
- flusher: ClickHouse rows of committed work, then the `_stored:` marks that tell a successor
  which rows may still be missing;
- control: HALT / RESUME. While halted the Consumer keeps building and storing candles and signals
  (history stays complete, strategies stay warm) but publishes NO intent: each withheld intent is
  logged with the halt reason and counted; they are not sent after a RESUME (they would be stale);
- sampler: stream lengths and pending counts, heartbeat, gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from services.consumer.adapters.commit import STORED_PREFIX, LeaseLost, PartitionCommitter
from services.consumer.adapters.history_loader import HistoryLoader
from services.consumer.adapters.intent_outbox import IntentOutbox
from services.consumer.adapters.leases import PartitionLeases, ReplicaRegistry, owner_value
from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.adapters.partition import PartitionWorker, WorkerContext
from services.consumer.adapters.store import ConsumerStore
from services.consumer.adapters.tick_reader import TickReader
from services.consumer.buckets import SessionsOf
from services.consumer.ownership import plan_ownership
from services.consumer.settings import ConsumerSettings
from services.consumer.strategy_engine import StrategyEngine
from services.sentinel.checks import HaltState
from shared import constants as c
from shared.bus import StreamBus, open_connections
from shared.clock import Clock
from shared.messages import Control, Message
from shared.runtime import freeze_start_objects

logger = logging.getLogger(__name__)

HEARTBEAT_TTL_S = 60


@dataclass
class ConsumerDeps:
    redis: Any  # redis.asyncio.Redis, bytes replies
    bus: StreamBus
    store: ConsumerStore
    history: HistoryLoader | None
    metrics: ConsumerMetrics
    clock: Clock
    grid_sessions: SessionsOf
    mono: Callable[[], float] = time.monotonic


@dataclass
class _Owned:
    worker: PartitionWorker
    task: asyncio.Task[None]


class Consumer:
    """One replica of the Consumer."""

    def __init__(self, settings: ConsumerSettings, deps: ConsumerDeps) -> None:
        self.s = settings
        self.d = deps
        self.replica = settings.replica_name or f"{socket.gethostname()}-{os.getpid()}"
        self.owner = owner_value(self.replica)
        self.engine = StrategyEngine.from_configs(settings.strategies)
        ttl_ms = round(settings.lease_ttl_s * 1000)
        self.leases = PartitionLeases(deps.redis, self.owner, ttl_ms)
        self.registry = ReplicaRegistry(deps.redis, self.replica, ttl_ms)
        self.committer = PartitionCommitter(
            deps.redis, owner=self.owner, group=c.GROUP_CONSUMER, maxlen=settings.stream_maxlen,
            dead_letter_maxlen=deps.bus.dead_letter_maxlen,
            intent_ttl_ms=round(settings.intent_dedup_ttl_s * 1000), retry=deps.bus.retry,
            metrics=deps.metrics,
        )  # fmt: skip
        self.outbox = IntentOutbox(
            self.committer, lambda: self.context.mono(), settings.intent_batch_ms
        )
        self.context = WorkerContext(
            settings=settings, redis=deps.redis, committer=self.committer, store=deps.store,
            engine=self.engine, history=deps.history, metrics=deps.metrics,
            grid_sessions=deps.grid_sessions, clock=deps.clock, halted=lambda: self.halt_reason,
            consumer=self.owner, outbox=self.outbox, mono=deps.mono,
            live_symbols=self._live_symbols,
        )  # fmt: skip
        deps.metrics.prime(
            settings.timeframes,
            [b.strategy.name for b in self.engine.bindings],
            [c.partitioned(c.TICKS, p) for p in range(settings.tick_partitions)],
            [c.CANDLES, c.SIGNALS, c.INTENTS, c.DEAD_LETTERS],
            [w.table for w in deps.store.writers],
        )
        self.owned: dict[int, _Owned] = {}
        self.reader = TickReader(deps.redis, settings, self.owner, self.outbox)
        self.halt_reason: str | None = None
        self.starting = "starting"
        self.live_replicas = 1

    # -- readiness ------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """/ready: 503 with the reason while starting or halted."""
        if self.starting:
            return False, self.starting
        if self.halt_reason is not None:
            return False, f"halted {self.halt_reason}: candles built, intents withheld"
        if not self.owned:
            return True, f"standby: no tick partition owned ({self.live_replicas} replicas)"
        return True, f"ready: partitions {sorted(self.owned)}"

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop`; then commit, release every partition and flush ClickHouse."""
        d = self.d
        freeze_start_objects(self.s.gc_freeze_at_start)
        # Connections opened now, not on the first intent (a handshake of several round trips):
        # the reader, commits and intent sends run at once, each on a connection of its own.
        await open_connections(d.redis, self.s.redis_connections_at_start)
        await self.committer.open()
        positions = await d.bus.positions([c.CONTROL])
        await self._read_halt()
        logger.info(
            "Consumer replica %s: %s partitions, strategies %s, halted: %s",
            self.replica, self.s.tick_partitions,
            [b.strategy.name for b in self.engine.bindings], self.halt_reason or "no",
        )  # fmt: skip
        loops_stop = asyncio.Event()
        loops = [
            asyncio.create_task(self._every(self.s.lease_renew_s, self._ownership_round,
                                            loops_stop), name="consumer-ownership"),
            asyncio.create_task(self._every(self.s.timer_interval_s, self._timer_round,
                                            loops_stop), name="consumer-timer"),
            asyncio.create_task(self._every(self.s.sample_interval_s, self._sample,
                                            loops_stop), name="consumer-sampler"),
        ]  # fmt: skip
        reader = asyncio.create_task(self.reader.run(loops_stop), name="consumer-reader")
        flusher = asyncio.create_task(
            self._every(self.s.clickhouse_flush_s, self._flush, loops_stop), name="consumer-flush"
        )
        control = asyncio.create_task(
            d.bus.listen([c.CONTROL], self._on_control, loops_stop, after=positions, block_ms=500),
            name="consumer-control",
        )
        try:
            await stop.wait()
        finally:
            logger.info("Consumer replica %s stopping", self.replica)
            loops_stop.set()
            await asyncio.gather(*loops, reader, flusher, return_exceptions=True)
            # Last rounds committed, then their rows flushed and marked, then the leases go.
            last = {p: o.worker for p, o in self.owned.items()}
            for partition in sorted(last):
                await self._drop(partition, graceful=True, release=False, why="shutting down")
            with contextlib.suppress(Exception):
                await self._flush(last)
            for partition in sorted(last):
                with contextlib.suppress(Exception):
                    await self.leases.release(partition)
            with contextlib.suppress(Exception):
                await self.registry.leave()
            await asyncio.gather(control, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self.committer.close()
            if d.history is not None:
                d.history.close()
            d.metrics.partitions_owned.set(0)
            d.metrics.stopped()

    async def _every(
        self, interval_s: float, step: Callable[[], Awaitable[None]], stop: asyncio.Event
    ) -> None:
        while not stop.is_set():
            try:
                await step()
            except Exception:
                logger.exception("%s failed; trying again in %.1f s", step.__name__, interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)

    # -- ownership ------------------------------------------------------------------------------

    async def _ownership_round(self) -> None:
        s = self.s
        self.live_replicas = await self.registry.beat(int(self.d.clock.now().timestamp() * 1000))
        for partition, owned in list(self.owned.items()):
            if owned.task.done():
                error = owned.task.exception() if not owned.task.cancelled() else None
                await self._drop(partition, graceful=False, release=not isinstance(error, LeaseLost),
                                 why=f"its worker ended: {error!r}")  # fmt: skip
        kept = await self.leases.renew(self.owned)
        for partition in set(self.owned) - kept:
            await self._drop(partition, graceful=False, release=False, why="its lease lapsed")
        for partition, owned in list(self.owned.items()):
            try:
                await owned.worker.claim_strays()
            except Exception:  # a failed worker is dropped by the next round
                logger.exception("claiming stray entries of tick partition %s failed", partition)
        holders = await self.leases.holders(s.tick_partitions)
        taken = {p for p, holder in holders.items() if holder != self.owner}
        plan = plan_ownership(s.tick_partitions, self.live_replicas, set(self.owned), taken)
        for partition in plan.release:
            await self._drop(partition, graceful=True, release=True,
                             why=f"fair share is {plan.share} of {self.live_replicas} replicas")  # fmt: skip
        for partition in plan.acquire:
            if await self.leases.acquire(partition):
                await self._take(partition)
        self.d.metrics.partitions_owned.set(len(self.owned))
        if self.starting:
            self.starting = ""
            logger.info("Consumer ready: %s", self.readiness()[1])

    def _live_symbols(self) -> set[str]:
        """Symbols whose strategies the partitions this replica runs have warmed."""
        return set().union(*(o.worker.stats.warmed for o in self.owned.values()))

    async def _take(self, partition: int) -> None:
        worker = PartitionWorker(partition, self.context)
        try:
            await worker.start()
        except Exception:
            logger.exception("take-over of partition %s failed; releasing it", partition)
            await self.leases.release(partition)
            return
        task = asyncio.create_task(worker.run(self.reader), name=f"consumer-partition-{partition}")
        self.owned[partition] = _Owned(worker, task)

    async def _drop(self, partition: int, *, graceful: bool, release: bool, why: str) -> None:
        owned = self.owned.pop(partition, None)
        if owned is None:
            return
        logger.info("dropping tick partition %s: %s", partition, why)
        owned.worker.request_stop()  # graceful: its uncommitted work is committed first
        if not graceful:
            owned.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(owned.task, timeout=self.s.lease_ttl_s)
        self.engine.forget(owned.worker.symbols() | owned.worker.stats.warmed)
        if release:
            with contextlib.suppress(Exception):
                await self.leases.release(partition)
        self.d.metrics.partitions_owned.set(len(self.owned))

    # -- timer, flusher, sampler ----------------------------------------------------------------

    async def _timer_round(self) -> None:
        for partition, owned in list(self.owned.items()):
            if owned.worker.stopping or partition not in self.owned:
                continue
            try:
                await owned.worker.on_timer()
            except LeaseLost as exc:  # the worker has failed: the ownership round drops it
                logger.error("%s", exc)
            except Exception:
                logger.exception("timer sweep of tick partition %s failed", partition)
        signals = self.engine.flush()
        if signals and self.owned:
            await next(iter(self.owned.values())).worker.commit_signals(signals)

    async def _flush(self, workers: dict[int, PartitionWorker] | None = None) -> None:
        """Flush ClickHouse rows, then mark each partition's streams as stored up to the ids
        its workers had committed before the flush (the marks never run ahead of the rows)."""
        owned = workers if workers is not None else {p: o.worker for p, o in self.owned.items()}
        marks = {p: dict(w.last_ids) for p, w in owned.items() if w.last_ids}
        await self.d.store.flush()
        for partition, ids in marks.items():
            if workers is not None or partition in self.owned:
                fields = {f"{STORED_PREFIX}{stream}": entry for stream, entry in ids.items()}
                await self.d.redis.hset(c.CONSUMER_CHECKPOINT_KEY.format(p=partition),
                                        mapping=fields)  # fmt: skip

    async def _sample(self) -> None:
        redis, metrics = self.d.redis, self.d.metrics
        await redis.set(c.HEARTBEAT_KEY.format(service="consumer"),
                        self.d.clock.now().isoformat(), ex=HEARTBEAT_TTL_S)  # fmt: skip
        for stream in (c.CANDLES, c.SIGNALS, c.INTENTS):
            metrics.stream_length.labels(stream).set(await redis.xlen(stream))
        for partition in list(self.owned):
            stream = c.partitioned(c.TICKS, partition)
            metrics.stream_length.labels(stream).set(await redis.xlen(stream))
            summary = await redis.xpending(stream, c.GROUP_CONSUMER)
            pending = summary.get("pending", 0) if isinstance(summary, dict) else summary[0]
            metrics.stream_pending.labels(stream, c.GROUP_CONSUMER).set(int(pending or 0))
        metrics.set_halted(self.halt_reason is not None)

    # -- HALT -----------------------------------------------------------------------------------

    async def _read_halt(self) -> HaltState:
        raw = await self.d.redis.hgetall(c.HALT_KEY)
        state = HaltState.from_hash({k.decode(): v.decode() for k, v in raw.items()})
        self._set_halt(
            f"by {state.source or 'unknown'}: {'; '.join(state.reasons) or 'no reason recorded'}"
            if state.halted
            else None
        )
        return state

    async def _on_control(self, stream: str, entry_id: str, message: Message) -> None:
        if not isinstance(message, Control):
            return
        if message.command == "HALT":
            self._set_halt(f"by {message.source}: {message.reason}")
        else:
            state = await self._read_halt()
            if state.halted:
                logger.warning("RESUME from %s, but the halt hash still says halted",
                               message.source)  # fmt: skip

    def _set_halt(self, reason: str | None) -> None:
        if reason != self.halt_reason:
            if reason is None:
                logger.info("trading resumed: intents are published again")
            else:
                logger.warning("trading halted %s: candles go on, intents are withheld", reason)
        self.halt_reason = reason
        self.d.metrics.set_halted(reason is not None)
