"""The set of KiteTicker connections of the Producer (an IO adapter): one per shard of
instruments, each replaced by a fresh one on a new token, a stall or a resubscription.

Connections live on the process-global Twisted reactor (see ticker.py); this keeps their names
("c0", "c1", ...), counts reconnects by reason and gives the watchdog its view of each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from services.producer.adapters.metrics import ProducerMetrics
from services.producer.frame_buffer import FrameBuffer
from services.producer.settings import ProducerSettings
from services.producer.ticker import TickerConnection, TickerEvent, TickerOptions
from services.producer.watchdog import ConnectionView

logger = logging.getLogger(__name__)


class TickerFeed:
    def __init__(
        self,
        settings: ProducerSettings,
        buffer: FrameBuffer,
        metrics: ProducerMetrics,
        notify: Callable[[TickerEvent], None],
    ) -> None:
        s = settings
        self.options = TickerOptions(
            s.api_key, s.kite_ws_root, s.tick_mode, s.reconnect_max_tries,
            s.reconnect_max_delay_s, s.connect_timeout_s, int(s.snapshot_grace_s * 1e9),
        )  # fmt: skip
        self.buffer = buffer
        self.metrics = metrics
        self.notify = notify
        self.connections: dict[str, TickerConnection] = {}
        self.shards: dict[str, tuple[int, ...]] = {}

    def set_shards(self, shards: Mapping[str, tuple[int, ...]]) -> None:
        """The instruments of each connection from now on (applied by the next connect)."""
        self.shards = dict(shards)
        for name in self.shards:
            self.metrics.connection_seen(name)

    def connect_all(self, token: str, reason: str) -> None:
        """A fresh connection per shard with `token`; connections without a shard are closed."""
        for name in list(self.connections):
            if name not in self.shards:
                self.connections.pop(name).close()
        for name in self.shards:
            self.replace(name, token, reason)

    def replace(self, name: str, token: str, reason: str) -> None:
        """A fresh KiteTicker for one shard; the old one is dropped at once."""
        old = self.connections.get(name)
        if old is not None:
            old.close()
            self.metrics.reconnects.labels(name, reason).inc()
        conn = TickerConnection(
            name, self.shards[name], token, self.options, self.buffer, self.notify,
            time.time_ns(),
        )  # fmt: skip
        if reason == "stall" and old is not None:
            # Forced reconnects in a row without a tick: the watchdog waits longer each time.
            conn.silent_restarts = old.silent_restarts + 1 if old.last_frame_ns is None else 1
        self.connections[name] = conn
        conn.start()
        logger.info(
            "ticker %s (re)connecting: %s, %d instruments", name, reason, len(self.shards[name])
        )

    def close_all(self) -> None:
        for conn in self.connections.values():
            conn.close(clean=True)

    def any_connected(self) -> bool:
        return any(conn.connected for conn in self.connections.values())

    def views(self) -> dict[str, ConnectionView]:
        """What the watchdog knows of each connection (wall seconds)."""
        return {
            name: ConnectionView(
                name,
                conn.started_ns / 1e9,
                None if conn.last_frame_ns is None else conn.last_frame_ns / 1e9,
                conn.silent_restarts,
            )
            for name, conn in self.connections.items()
        }
