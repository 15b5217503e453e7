"""The Producer's hot path on the asyncio side (an IO adapter): buffered frames -> parsed ticks ->
one pipelined batch to the partitioned ticks stream + the same ticks to the ClickHouse sink.

The reactor thread only appends raw frames to the FrameBuffer and wakes this loop when it waits.
Each cycle drains up to `drain_max_ticks` packets, parses them (pure parser), appends them to
the ticks stream (one scripted Redis call per `publish_batch`, see tick_stream.py), queues them
for ClickHouse, and records per-instrument receipt times for the staleness gauge. While one
batch is in flight to Redis the next one is parsed (one batch in flight at most, so the order
within a shard is the arrival order). The listed instruments' ticks of a frame (indices, futures,
equities: what strategies decide on) go out before the frame's option-chain ticks are parsed.
Packets that cannot be parsed are dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from services.producer.adapters.metrics import ProducerMetrics
from services.producer.adapters.tick_stream import ScriptedStreamAppender
from services.producer.frame_buffer import Frame, FrameBuffer
from services.producer.packets import BadPacket, TickParser
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
        self.first: frozenset[int] = frozenset()

    def set_symbols(self, symbols: Mapping[int, str], first: Iterable[int] = ()) -> None:
        """The token -> symbol map from now on (old tokens stay known: frames already buffered
        must not lose their symbols), and the instruments whose ticks go out first."""
        merged = {**self.parser.symbols, **symbols}
        self.parser = TickParser(merged)
        self.first = frozenset(first)
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
        drained tick has been appended (nothing left in flight).

        The ticks of the `first` instruments in the batch's first frame are parsed and sent
        before the rest of the batch is even parsed: a frame of a whole option chain (~170
        packets, ~1 ms of parsing) does not hold back the index and futures ticks strategies
        close candles on. The rest follows `rest_after_ms` later: on a small host, parsing and
        publishing the chain (and every reader's work on it) would otherwise compete for the
        CPU with the candle close, strategy and order those first ticks set off. Packet order
        inside one frame means nothing (Kite batches whatever ticked since the last frame), so
        this reorders nothing a reader can rely on; frames still go out in arrival order."""
        while len(self.buffer):
            frames = self.buffer.drain(self.settings.drain_max_ticks)
            head = frames[0]
            starts, bad = self.parser.packet_starts(head.payload)
            if self.first:
                ahead, starts = self.parser.split_starts(head.payload, starts, self.first)
                early, unread = self.parser.parse_packets(head.payload, ahead, head.received_ns)
                bad += unread
                if early:
                    await self._settle()
                    self._send(self._accept(early, {head.connection: len(early)}))
                    if self.settings.rest_after_ms > 0:
                        await asyncio.sleep(self.settings.rest_after_ms / 1000)
            ticks, per_connection = await self._parse_rest(frames, starts, bad)
            await self._settle()
            if ticks:
                self._send(self._accept(ticks, per_connection))
        await self._settle()

    def _send(self, ticks: list[Tick]) -> None:
        """Publish in a task started at once (the command is written before this returns)."""
        self._in_flight = asyncio.Task(
            self._publish(ticks), loop=asyncio.get_running_loop(), eager_start=True
        )

    async def _settle(self) -> None:
        task, self._in_flight = self._in_flight, None
        if task is not None:
            await task

    async def _parse_rest(
        self, frames: list[Frame], head_starts: list[int], head_bad: list[BadPacket]
    ) -> tuple[list[Tick], Counter[str]]:
        """The ticks of the drained frames not sent yet: the head frame's packets at
        `head_starts`, every packet of the others. The frames go to the ClickHouse writer."""
        if self.frame_sink is not None:
            self.frame_sink.add_frames(frames)
        parser = self.parser
        head = frames[0]
        ticks, unread = parser.parse_packets(head.payload, head_starts, head.received_ns)
        per_connection: Counter[str] = Counter({head.connection: len(ticks)})
        for packet in head_bad + unread:
            await self._dead_letter(head.connection, packet.reason, packet.packet)
        for frame in frames[1:]:
            parsed, bad = parser.parse_frame(frame.payload, frame.received_ns)
            ticks.extend(parsed)
            per_connection[frame.connection] += len(parsed)
            for packet in bad:
                await self._dead_letter(frame.connection, packet.reason, packet.packet)
        return ticks, per_connection

    def _accept(self, ticks: list[Tick], per_connection: Mapping[str, int]) -> list[Tick]:
        """Count parsed ticks, keep each instrument's last one (staleness, spot prices) and
        queue them for ClickHouse: none of this waits for Redis."""
        for name, count in per_connection.items():
            if count:
                self.metrics.ticks_received.labels(name).inc(count)
        self.parsed += len(ticks)
        last = self.last_tick
        for tick in ticks:
            last[tick.instrument_token] = tick
        if self.sink is not None:
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
