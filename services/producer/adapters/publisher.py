"""The Producer's hot path on the asyncio side (an IO adapter): buffered frames -> parsed ticks ->
one pipelined batch to the partitioned ticks stream + the same ticks to the ClickHouse sink.

The reactor thread only appends raw frames to the FrameBuffer and wakes this loop when it waits.
Each cycle drains up to `drain_max_ticks` packets, parses them (pure parser), appends them to
the ticks stream (one scripted Redis call per `publish_batch`, see tick_stream.py), queues them
for ClickHouse, and records per-instrument receipt times for the staleness gauge. While one
batch is in flight to Redis the next one is parsed (one batch in flight at most, so the order
within a shard is the arrival order). Packets that cannot be parsed are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from services.producer.adapters.metrics import ProducerMetrics
from services.producer.adapters.tick_stream import ScriptedStreamAppender
from services.producer.frame_buffer import Frame, FrameBuffer
from services.producer.packets import TickParser
from services.producer.settings import ProducerSettings
from shared import constants as c
from shared.bus import DeadLetter, DeadLetterKind, StreamBus
from shared.messages import Tick

logger = logging.getLogger(__name__)

SERVICE = "producer"
LAG_SAMPLES_PER_BATCH = 64  # tick lag is observed on a sample of each batch (cheap histogram)


def _token(tick: Tick) -> int:
    return tick.instrument_token


class TickSink(Protocol):
    def add(self, ticks: Sequence[Tick]) -> None:
        """Queue ticks for ClickHouse `ticks` (never blocks; batching and spooling are its job)."""


@runtime_checkable
class FrameSink(Protocol):
    """A ClickHouse writer fed with raw frames (parsed again elsewhere, e.g. another process)."""

    def set_symbols(self, symbols: Mapping[int, str]) -> None: ...

    def add_frames(self, frames: Sequence[Frame]) -> None:
        """Queue frames (never blocks; counts what it cannot take)."""


class TickPublisher:
    def __init__(
        self,
        buffer: FrameBuffer,
        wake: asyncio.Event,
        bus: StreamBus,
        sink: TickSink | FrameSink | None,
        metrics: ProducerMetrics,
        settings: ProducerSettings,
    ) -> None:
        self.buffer = buffer
        self.wake = wake
        self.bus = bus
        self.sink: TickSink | None = None
        self.frame_sink: FrameSink | None = None
        if isinstance(sink, FrameSink):
            self.frame_sink = sink
        else:
            self.sink = sink
        self.metrics = metrics
        self.settings = settings
        self.parser = TickParser({})
        self.last_tick: dict[int, Tick] = {}  # per instrument: staleness, spot prices
        self.published = 0
        self.parsed = 0
        self.appender = ScriptedStreamAppender(
            bus.redis, settings.ticks_maxlen, settings.publish_batch, metrics, bus.retry
        )
        self._in_flight: asyncio.Task[None] | None = None

    def set_symbols(self, symbols: Mapping[int, str]) -> None:
        """The token -> symbol map from now on (old tokens stay known: frames already buffered
        must not lose their symbols)."""
        merged = {**self.parser.symbols, **symbols}
        self.parser = TickParser(merged)
        if self.frame_sink is not None:
            self.frame_sink.set_symbols(merged)

    async def run(self, stop: asyncio.Event) -> None:
        """Publish whatever arrives until `stop` (whoever sets stop also sets `wake`)."""
        while not stop.is_set():
            self.wake.clear()
            if not self.buffer.arm():
                await self.wake.wait()
            if stop.is_set():
                return
            await self.drain()

    async def drain(self) -> None:
        """Parse and publish what is buffered, one bounded batch at a time; returns when every
        drained tick has been appended (nothing left in flight)."""
        while len(self.buffer):
            ticks = await self._parse_batch()
            await self._settle()
            if ticks:
                self._in_flight = asyncio.create_task(self._publish(ticks))
        await self._settle()

    async def _settle(self) -> None:
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def _parse_batch(self) -> list[Tick]:
        frames = self.buffer.drain(self.settings.drain_max_ticks)
        if self.frame_sink is not None:
            self.frame_sink.add_frames(frames)
        ticks: list[Tick] = []
        per_connection: Counter[str] = Counter()
        parser = self.parser
        for frame in frames:
            parsed, bad = parser.parse_frame(frame.payload, frame.received_ns)
            ticks.extend(parsed)
            per_connection[frame.connection] += len(parsed)
            for packet in bad:
                await self._dead_letter(frame.connection, packet.reason, packet.packet)
        for name, count in per_connection.items():
            self.metrics.ticks_received.labels(name).inc(count)
        self.parsed += len(ticks)
        # Before the publish: staleness and the ClickHouse copy do not wait for Redis.
        last = self.last_tick
        for tick in ticks:
            last[tick.instrument_token] = tick
        if self.sink is not None and ticks:
            self.sink.add(ticks)
        return ticks

    async def _publish(self, ticks: list[Tick]) -> None:
        try:
            await self.appender.publish_partitioned(
                c.TICKS, ticks, self.settings.tick_partitions, _token
            )
        except Exception as exc:
            # Redis is down past the retries: the ticks still go to ClickHouse (spooled);
            # the gap on the stream is counted and logged, and the loop goes on.
            self.metrics.ticks_dropped.labels("redis_unavailable").inc(len(ticks))
            logger.error("%d ticks not published to Redis: %s: %s", len(ticks),
                         type(exc).__name__, exc)  # fmt: skip
            return
        self.published += len(ticks)
        self.metrics.ticks_published.inc(len(ticks))
        now_s = time.time()
        stride = max(1, len(ticks) // LAG_SAMPLES_PER_BATCH)
        for tick in ticks[::stride]:
            self.metrics.tick_lag.observe(max(0.0, now_s - tick.exchange_ts.timestamp()))

    async def _dead_letter(self, connection: str, reason: str, packet: bytes) -> None:
        self.metrics.bad_packets.inc()
        letter = DeadLetter(
            kind=DeadLetterKind.MALFORMED,
            reason=f"ticker packet from {connection}: {reason}",
            service=SERVICE,
            stream=c.TICKS,
            entry_id="",
            deliveries=0,
            fields={b"packet": packet, b"connection": connection.encode()},
        )
        try:
            await self.bus.dead_letter(letter)
        except Exception as exc:
            logger.error("bad packet not dead-lettered (%s): %s", type(exc).__name__, reason)
