"""One read loop for every tick partition a replica owns.

A single XREADGROUP over all owned partitions (one round trip and one wake-up, however many
partitions) and, for the batch it returns, the ticks of strategy instruments of EVERY partition
first, their intents sent in ONE script call, then the other ticks of every partition: a closing
tick waits neither for another partition's bookkeeping nor for a read of its own. Between reads
the partitions whose commit is due start it (a task: reading goes on while Redis applies it),
and a read never blocks past the next commit due. A worker whose step fails is failed alone
(its `run` raises, the service drops the partition); a failed read is retried after a pause.
Entries a read returns for a worker that has just left are not handled: they stay pending in
the group and the partition's next owner claims them. Redis hands a blocked read the entries that
arrive while it waits, and the next owner claims only what is pending when it takes over: so a
worker leaves only once no read in flight covers its partition, and only then may its lease go.
A blocked read is cut short (CLIENT UNBLOCK) when a worker leaves or joins and at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from services.consumer.adapters.entries import Entries, entries_by_stream
from services.consumer.adapters.intent_outbox import IntentOutbox
from services.consumer.adapters.partition import PartitionWorker
from services.consumer.settings import ConsumerSettings
from shared import constants as c

logger = logging.getLogger(__name__)

READ_ATTEMPTS = 3  # reads failing in a row before the partitions are dropped (taken again)


class TickReader:
    """Reads the owned partitions' streams and drives their workers' passes."""

    def __init__(
        self, redis: Any, settings: ConsumerSettings, consumer: str, outbox: IntentOutbox
    ) -> None:
        # A connection held for the reads: one taken from the pool for each read is first
        # checked with a zero-timeout read, one more turn of the event loop before every read.
        self.redis = redis.client()
        self._pool = redis  # for CLIENT UNBLOCK while the held connection waits
        self._client_id: int | None = None  # the held connection's, once asked
        self._reading: frozenset[str] = frozenset()  # the streams of the read in flight
        self._read_over = asyncio.Event()
        self.outbox = outbox
        self.settings = settings
        self.consumer = consumer
        self._workers: dict[str, PartitionWorker] = {}  # stream -> worker
        self._changed = asyncio.Event()

    async def attach(self, worker: PartitionWorker) -> None:
        """Read `worker`'s partition from the next read on (the one in flight cut short)."""
        self._workers[worker.stream] = worker
        self._changed.set()
        await self._cut_short()

    async def detach(self, worker: PartitionWorker) -> None:
        """Stop reading `worker`'s partition (after the batch it may be in); returns once no
        read in flight covers it."""
        async with worker.lock:
            if self._workers.get(worker.stream) is worker:
                del self._workers[worker.stream]
        if worker.stream in self._reading:
            await self._cut_short()
        while worker.stream in self._reading:
            await self._read_over.wait()

    async def _cut_short(self) -> None:
        """End the blocked read in flight now, as if it had timed out."""
        if self._reading and self._client_id is not None:
            try:
                await self._pool.client_unblock(self._client_id)
            except Exception:  # it ends by itself within read_block_ms
                logger.warning("could not cut the tick read short", exc_info=True)

    async def run(self, stop: asyncio.Event) -> None:
        """Read and hand out batches until `stop`."""
        stopper = asyncio.create_task(self._cut_short_at(stop))
        try:
            await self._read(stop)
        finally:
            stopper.cancel()
            await self.redis.aclose()  # the held connection back to the pool

    async def _cut_short_at(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._changed.set()
        await self._cut_short()

    async def _read(self, stop: asyncio.Event) -> None:
        s = self.settings
        failures = 0
        while not stop.is_set():
            workers = [w for w in self._workers.values() if not w.stopping]
            if not workers:
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), s.read_block_ms / 1000)
                continue
            block_ms = s.read_block_ms
            for worker in workers:
                wait_ms = worker.ms_to_commit()
                if wait_ms == 0:
                    await self._commit(worker)
                    wait_ms = worker.ms_to_commit()
                if wait_ms is not None:
                    block_ms = max(1, min(block_ms, wait_ms))
            try:
                if self._client_id is None:
                    self._client_id = int(await self.redis.client_id())
                # A worker may have left while a commit above was awaited (no await from here
                # to the read: a worker leaving now sees it in flight).
                streams = {w.stream: ">" for w in workers if self._workers.get(w.stream) is w}
                if not streams:
                    continue
                self._reading = frozenset(streams)
                self._read_over.clear()
                try:
                    reply = await self.redis.xreadgroup(
                        c.GROUP_CONSUMER, self.consumer, streams, count=s.read_count,
                        block=block_ms,
                    )  # fmt: skip
                finally:
                    self._reading = frozenset()
                    self._read_over.set()
            except Exception as exc:
                self._client_id = None  # a new connection may follow
                failures += 1
                logger.exception("reading the tick partitions failed (%s in a row)", failures)
                if failures >= READ_ATTEMPTS:  # dropped and taken again (the group recreated)
                    for worker in workers:
                        worker.fail(exc)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            batches: list[tuple[PartitionWorker, Entries]] = []
            for stream, entries in entries_by_stream(reply):
                owner = self._workers.get(stream)
                if owner is not None and entries:
                    batches.append((owner, entries))
            if batches:
                await self._handle(sorted(batches, key=lambda b: b[0].partition))
            await asyncio.sleep(0)

    async def _commit(self, worker: PartitionWorker) -> None:
        async with worker.lock:
            if worker.failure is None:
                try:
                    worker.start_commit()
                except Exception as exc:
                    worker.fail(exc)

    async def _handle(self, batches: list[tuple[PartitionWorker, Entries]]) -> None:
        async with contextlib.AsyncExitStack() as locks:
            for worker, _ in batches:  # in partition order, one at a time: no deadlock
                await locks.enter_async_context(worker.lock)
            rest: list[tuple[PartitionWorker, Entries]] = []
            try:
                for worker, entries in batches:
                    if worker.failure is not None or self._workers.get(worker.stream) is not worker:
                        continue  # left or failed meanwhile: its entries stay pending
                    try:
                        rest.append((worker, await worker.first_pass(entries)))
                    except Exception as exc:
                        worker.fail(exc)
                self.outbox.flush()  # every partition's intents of this read, in one call
                for worker, others in rest:
                    try:
                        await worker.second_pass(others)
                    except Exception as exc:
                        worker.fail(exc)
                self.outbox.flush()
            except BaseException as exc:  # cancelled mid-batch: half-handled, never committed
                for worker, _ in batches:
                    worker.fail(exc)
                raise
