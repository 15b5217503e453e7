"""The Producer's publisher sends a frame's listed instruments' ticks before its option-chain
ticks, and keeps every tick and the frames' arrival order (real Redis)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from services.producer.adapters.metrics import ProducerMetrics
from services.producer.adapters.publisher import TickPublisher
from services.producer.frame_buffer import Frame, FrameBuffer
from services.producer.settings import ProducerSettings
from services.simulator.ticker_packets import FrameEncoder, TickSnapshot
from shared import constants as c
from shared.bus import StreamBus, decode_entry, redis_client
from shared.messages import Tick

pytestmark = pytest.mark.integration

INDEX, FUTURE = 256265, 13368834
OPTIONS = [12345602 + 256 * n for n in range(6)]


def snapshot(token: int, price: float) -> TickSnapshot:
    return TickSnapshot(token, price, last_trade_time=1_724_130_000,
                        exchange_timestamp=1_724_130_001)  # fmt: skip


async def test_listed_ticks_of_a_frame_go_first_and_frames_keep_their_order(
    redis_url: str,
) -> None:
    settings = ProducerSettings(
        _env_file=None,
        redis_url=redis_url,
        tick_partitions=1,
        drain_max_ticks=1000,
        rest_after_ms=20,
    )
    redis = redis_client(redis_url)
    metrics = ProducerMetrics(CollectorRegistry())
    bus = StreamBus(redis, service="producer", maxlen=10_000, metrics=metrics)
    wake = asyncio.Event()
    buffer = FrameBuffer(100, wake.set)
    publisher = TickPublisher(buffer, wake, bus, None, metrics, settings)
    tokens = [*OPTIONS, INDEX, FUTURE]
    publisher.set_symbols({t: f"X:{t}" for t in tokens}, first={INDEX, FUTURE})
    # Two frames drained together, each the chain first and the listed two last.
    for n, price in enumerate((100.0, 200.0)):
        items = [(snapshot(t, price + i), "full") for i, t in enumerate(tokens)]
        buffer.put(Frame("c0", FrameEncoder(len(items)).encode(items), n))
    try:
        await publisher.drain()
        stream = c.partitioned(c.TICKS, 0)
        entries = await redis.xrange(stream)
        ticks = [decode_entry(stream, fields) for _, fields in entries]
    finally:
        await redis.aclose()
    assert all(isinstance(t, Tick) for t in ticks)
    order = [(t.received_ns, t.instrument_token) for t in ticks if isinstance(t, Tick)]
    # The first drained frame's listed instruments lead; the rest follow in arrival order.
    assert order == [
        (0, INDEX), (0, FUTURE),
        *[(0, t) for t in OPTIONS],
        *[(1, t) for t in tokens],
    ]  # fmt: skip
    assert publisher.published == publisher.parsed == 2 * len(tokens)
    # The rest went out no sooner than rest_after_ms after the first two (Redis's ms clock).
    first_ms, rest_ms = (int(entries[i][0].split(b"-")[0]) for i in (1, 2))
    assert rest_ms - first_ms >= 19
