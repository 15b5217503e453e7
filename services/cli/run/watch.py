"""Reads the running system for the live progress display: Redis streams and keys, /metrics."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis

from services.cli.connections import hash_of, http_get
from services.cli.metrics_text import metric_sum, parse_samples
from services.cli.run.progress import EventTally, Progress
from services.sentinel.checks import HaltState
from shared import constants as c
from shared.bus import decode_entry
from shared.clock import to_ist
from shared.messages import MessageError, Tick

logger = logging.getLogger(__name__)

EVENT_STREAMS = (c.SIGNALS, c.ORDER_EVENTS, c.RISK_EVENTS, c.CONTROL)


class StackWatcher:
    """Polls the system; every `poll` returns the latest progress and the new event lines."""

    def __init__(self, redis_url: str, metrics_urls: dict[str, str], timeout_s: float) -> None:
        self.client: Any = redis.Redis.from_url(
            redis_url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s
        )
        self.metrics_urls = metrics_urls
        self.timeout_s = timeout_s
        self.last_ids: dict[str, str] = dict.fromkeys(EVENT_STREAMS, "0-0")
        self.tally = EventTally()
        self.pool = ThreadPoolExecutor(max_workers=max(1, len(metrics_urls)))

    def close(self) -> None:
        self.client.close()
        self.pool.shutdown(wait=True)

    def poll(self) -> tuple[Progress, list[str]]:
        lines: list[str] = []
        try:
            lines = self._read_events()
            sim_time = self._newest_tick_time()
            halt = HaltState.from_hash(hash_of(self.client, c.HALT_KEY))
        except redis.RedisError as exc:
            logger.info("progress: Redis not answering: %s", exc)
            return Progress(services_total=len(self._services())), lines
        # In parallel: a loaded machine answers slowly, one slow service must not stall the line.
        answers = dict(
            zip(
                self.metrics_urls,
                self.pool.map(
                    lambda url: http_get(f"{url}/metrics", self.timeout_s),
                    self.metrics_urls.values(),
                ),
                strict=True,
            )
        )
        samples = {name: parse_samples(a.body) if a.ok else [] for name, a in answers.items()}
        ready = sum(1 for name, a in answers.items() if a.ok and name != "simulator")
        progress = Progress(
            sim_time=sim_time,
            ticks=metric_sum(samples.get("producer", []), "tradealgo_ticks_published"),
            candles=metric_sum(samples.get("consumer", []), "tradealgo_candles_closed"),
            signals=self.tally.signals,
            orders=len(self.tally.orders),
            fills=len(self.tally.filled),
            pnl=metric_sum(samples.get("gatekeeper", []), "tradealgo_pnl_rupees", {"kind": "mtm"}),
            open_positions=metric_sum(samples.get("gatekeeper", []), "tradealgo_open_positions"),
            services_ready=ready,
            services_total=len(self._services()),
            halted=halt.halted,
            halt_reason="; ".join(halt.reasons),
        )
        return progress, lines

    def _services(self) -> list[str]:
        return [name for name in self.metrics_urls if name != "simulator"]

    def _read_events(self) -> list[str]:
        lines = []
        answer = self.client.xread(self.last_ids, count=1000)
        for raw_stream, entries in answer or []:
            stream = raw_stream.decode()
            for entry_id, fields in entries:
                self.last_ids[stream] = entry_id.decode()
                try:
                    message = decode_entry(stream, fields)
                except MessageError as exc:
                    logger.info("progress: undecodable entry on %s: %s", stream, exc)
                    continue
                line = self.tally.add(message)
                if line:
                    lines.append(line)
        return lines

    def _newest_tick_time(self) -> str | None:
        streams = sorted(
            key.decode() for key in self.client.scan_iter(match=f"{c.TICKS}:*", count=100)
        )
        newest = None
        for stream in streams:
            entries = self.client.xrevrange(stream, count=1)
            if not entries:
                continue
            try:
                tick = decode_entry(stream, entries[0][1])
            except MessageError:
                continue
            if isinstance(tick, Tick) and (newest is None or tick.exchange_ts > newest):
                newest = tick.exchange_ts
        return None if newest is None else f"{to_ist(newest):%Y-%m-%d %H:%M:%S}"
