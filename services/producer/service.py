"""The Producer's async shell: KiteTicker frames -> Tick messages -> Redis ticks stream + ClickHouse.

Tasks:
- publisher: drains the FrameBuffer the reactor thread fills, parses frames (pure parser),
  publishes pipelined batches to the partitioned ticks stream and hands the same ticks to the
  ClickHouse sink (batched and spooled by the shared writer);
- watchdog: stall decisions (pure) -> alert + a fresh KiteTicker for the silent connection;
- listener: SessionEvent LOGIN -> reconnect with the new token, no restart; Control HALT/RESUME
  -> readiness only (ticks keep flowing while halted: risk needs prices);
- sampler: gauges (silence, staleness, buffer, stream lengths), heartbeat.
A 403 from the ticker or from Kite REST -> a SessionEvent EXPIRED (token fingerprint only) for the
Sentinel, then the Producer waits for a different token in Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from services.producer.adapters.feed import TickerFeed
from services.producer.adapters.instrument_source import RedisInstruments
from services.producer.adapters.kite_rest import KiteQuotes, TokenRejected
from services.producer.adapters.metrics import ProducerMetrics
from services.producer.adapters.publisher import FrameSink, TickPublisher, TickSink
from services.producer.adapters.resolver import SubscriptionResolver
from services.producer.frame_buffer import FrameBuffer
from services.producer.settings import ProducerSettings
from services.producer.sharding import shard_tokens
from services.producer.subscriptions import Subscription
from services.producer.ticker import (
    EVENT_CLOSED,
    EVENT_CONNECTED,
    EVENT_GAVE_UP,
    EVENT_RECONNECTING,
    EVENT_SERVER_ERROR,
    EVENT_TOKEN_REJECTED,
    TickerEvent,
)
from services.producer.watchdog import (
    find_stalls,
    instrument_staleness,
    seconds_since_last_tick,
)
from shared import constants as c
from shared.alerts import Alert, Alerter, Severity
from shared.bus import StreamBus
from shared.calendar import NseCalendar
from shared.clock import Clock
from shared.messages import Control, Message, SessionEvent
from shared.runtime import freeze_start_objects
from shared.session import token_fingerprint, token_rejected_event

logger = logging.getLogger(__name__)

SERVICE = "producer"
HEARTBEAT_TTL_S = 60


@dataclass
class ProducerDeps:
    redis: Any  # redis.asyncio.Redis, bytes replies
    bus: StreamBus
    quotes: KiteQuotes
    instruments: RedisInstruments
    sink: TickSink | FrameSink | None
    alerter: Alerter
    metrics: ProducerMetrics
    clock: Clock
    calendar: NseCalendar | None


class Producer:
    def __init__(self, settings: ProducerSettings, deps: ProducerDeps) -> None:
        self.settings = settings
        self.d = deps
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()
        self.buffer = FrameBuffer(settings.buffer_max_frames, self._wake_threadsafe)
        self.publisher = TickPublisher(
            self.buffer, self._wake, deps.bus, deps.sink, deps.metrics, settings
        )
        self.feed = TickerFeed(settings, self.buffer, deps.metrics, self._notify_threadsafe)
        self.resolver = SubscriptionResolver(settings, deps.instruments, deps.quotes, deps.clock)
        self.subscription = Subscription({}, ())
        self.token = ""
        self.rejected_fingerprint = ""
        self.halted = False
        self.halt_reason = ""
        self.waiting_for = "an access token"
        self._dropped_seen = 0
        self._token_changed = asyncio.Event()
        self._stop: asyncio.Event | None = None
        self._background: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        """A fire-and-forget task that is still tracked (and cancelled at shutdown)."""
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def published(self) -> int:
        """Ticks appended to the ticks stream so far."""
        return self.publisher.published

    # -- readiness ------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        """/ready: streaming or not, and why; a HALT is reported although ticks keep flowing."""
        if self.waiting_for:
            return False, f"waiting for {self.waiting_for}"
        if not self.feed.any_connected():
            return False, "no ticker connection is open"
        if self.halted:
            return False, f"halted ({self.halt_reason}); ticks keep streaming (risk needs prices)"
        return True, "ready"

    # -- lifecycle ------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = stop
        await self._read_halt()
        listener = asyncio.create_task(self._listen(stop), name="producer-listen")
        sampler = asyncio.create_task(self._sample(stop), name="producer-sample")
        tasks: list[asyncio.Task[None]] = [listener, sampler]
        publishing: asyncio.Task[None] | None = None
        try:
            if not await self._start_feed(stop):
                return
            freeze_start_objects(self.settings.gc_freeze_at_start)
            publishing = asyncio.create_task(self.publisher.run(stop), name="producer-publish")
            tasks.append(asyncio.create_task(self._watchdog(stop), name="producer-watchdog"))
            tasks.append(asyncio.create_task(self._token_loop(stop), name="producer-token"))
            await stop.wait()
        finally:
            self._wake.set()
            self._token_changed.set()
            self.feed.close_all()
            if publishing is not None:
                # Not cancelled: a batch cut in the middle of its append would be in Redis (and
                # ClickHouse) without being counted. It returns after the batch in hand.
                await publishing
            tasks.extend(self._background)
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self.publisher.drain()
            logger.info("producer stopped after publishing %d ticks", self.publisher.published)

    async def _start_feed(self, stop: asyncio.Event) -> bool:
        """Wait for a token and the instruments, resolve, shard, connect. False when stopped."""
        while not stop.is_set():
            token = await self._current_token()
            if not token or token_fingerprint(token) == self.rejected_fingerprint:
                self.waiting_for = "an access token" if not token else "a new access token"
            elif not await self.d.instruments.loaded():
                self.waiting_for = "the instruments dump (Sentinel)"
            else:
                try:
                    subscription = await self._resolve(token)
                except TokenRejected as exc:
                    await self._token_rejected(token, f"Kite LTP: {exc}")
                    subscription = None
                if subscription is not None and subscription.symbols:
                    self.token = token
                    self._apply_subscription(subscription)
                    self.feed.connect_all(self.token, "start")
                    self.waiting_for = ""
                    return True
                if subscription is not None:
                    self.waiting_for = "instruments to subscribe: " + "; ".join(
                        subscription.problems
                    )
            logger.info("producer not streaming yet: waiting for %s", self.waiting_for)
            self._token_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._token_changed.wait(), self.settings.token_poll_s)
        return False

    async def _resolve(self, token: str) -> Subscription:
        return await self.resolver.resolve(token, self.publisher.last_tick)

    def _apply_subscription(self, subscription: Subscription) -> None:
        s = self.settings
        shards = shard_tokens(
            list(subscription.symbols), s.max_connections, s.instruments_per_connection
        )
        if shards.reason:
            logger.error("%s", shards.reason)
        self.subscription = subscription
        self.publisher.set_symbols(subscription.symbols, subscription.listed)
        self.feed.set_shards({f"c{i}": tokens for i, tokens in enumerate(shards.connections)})
        streamed = sum(len(t) for t in self.feed.shards.values())
        self.d.metrics.subscribed_instruments.set(streamed)
        logger.info(
            "streaming %d instruments over %d connection(s), mode %s",
            streamed,
            len(self.feed.shards),
            s.tick_mode,
        )

    # -- thread bridge --------------------------------------------------------------------------

    def _wake_threadsafe(self) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
                loop.call_soon_threadsafe(self._wake.set)

    def _notify_threadsafe(self, event: TickerEvent) -> None:
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_ticker_event, event)

    def _on_ticker_event(self, event: TickerEvent) -> None:
        name, kind, detail = event
        conn = self.feed.connections.get(name)
        if kind == EVENT_CONNECTED:
            logger.info("ticker %s connected: %s", name, detail)
        elif kind == EVENT_CLOSED:
            # Not closed by us: KiteTicker reconnects (and resubscribes) by itself.
            self.d.metrics.reconnects.labels(name, "dropped").inc()
            logger.warning("ticker %s closed, KiteTicker reconnects: %s", name, detail)
        elif kind == EVENT_RECONNECTING:
            logger.warning("ticker %s still reconnecting (attempt %s)", name, detail)
        elif kind == EVENT_GAVE_UP:
            logger.error("ticker %s gave up reconnecting: %s", name, detail)
        elif kind == EVENT_SERVER_ERROR:
            logger.error("ticker %s: Kite says: %s", name, detail)
        elif kind == EVENT_TOKEN_REJECTED and conn is not None:
            self._spawn(self._token_rejected(self.token, f"ticker {name}: {detail}"))

    async def _retry_resolution(self) -> None:
        """Some instruments could not be resolved (e.g. no spot price before the open): try
        again with what is known now, and resubscribe when more can be streamed."""
        try:
            subscription = await self._resolve(self.token)
        except Exception as exc:
            logger.warning("subscription not re-resolved: %s: %s", type(exc).__name__, exc)
            return
        if set(subscription.symbols) - set(self.subscription.symbols):
            logger.info("subscription grows from %d to %d instruments: resubscribing",
                        len(self.subscription.symbols), len(subscription.symbols))  # fmt: skip
            self._apply_subscription(subscription)
            self.feed.connect_all(self.token, "resubscribe")
        else:
            self.subscription = subscription

    # -- token ----------------------------------------------------------------------------------

    async def _current_token(self) -> str:
        raw = await self.d.redis.get(c.ACCESS_TOKEN_KEY)
        return raw.decode() if isinstance(raw, bytes) else (raw or "")

    async def _token_rejected(self, token: str, where: str) -> None:
        fingerprint = token_fingerprint(token)
        if not token or fingerprint == self.rejected_fingerprint:
            return
        self.rejected_fingerprint = fingerprint
        self.waiting_for = "a new access token (Kite rejected the current one)"
        logger.error("access token %s rejected (%s): reporting to the Sentinel", fingerprint, where)
        try:
            await self.d.bus.publish(
                c.SESSION_EVENTS, token_rejected_event(token, SERVICE, self.d.clock.now())
            )
        except Exception as exc:
            logger.error("could not report the token rejection: %s", type(exc).__name__)
        self._token_changed.set()

    async def _token_loop(self, stop: asyncio.Event) -> None:
        """Adopt a new token from Redis: on a LOGIN event, or by polling while rejected."""
        while not stop.is_set():
            self._token_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._token_changed.wait(), self.settings.token_poll_s)
            if stop.is_set():
                return
            try:
                token = await self._current_token()
            except Exception as exc:
                logger.warning("cannot read the access token: %s", type(exc).__name__)
                continue
            if not token or token == self.token:
                continue
            if token_fingerprint(token) == self.rejected_fingerprint:
                continue
            await self._adopt_token(token)

    async def _adopt_token(self, token: str) -> None:
        logger.info("new access token %s: reconnecting without a restart", token_fingerprint(token))
        self.token = token
        try:
            subscription = await self._resolve(token)
            if subscription.symbols and set(subscription.symbols) != set(self.subscription.symbols):
                self._apply_subscription(subscription)
        except Exception as exc:  # keep streaming what we have; the new token still applies
            logger.warning("subscription not re-resolved for the new token: %s", exc)
        self.rejected_fingerprint = ""
        self.waiting_for = ""
        self.feed.connect_all(self.token, "token")

    # -- watchdog and gauges --------------------------------------------------------------------

    async def _watchdog(self, stop: asyncio.Event) -> None:
        s = self.settings
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.watchdog_interval_s)
            if stop.is_set() or self.waiting_for:
                continue
            now = time.time()
            market_open = (
                self.d.calendar.is_market_open(self.d.clock.now()) if self.d.calendar else True
            )
            views = self.feed.views()
            for name, view in views.items():
                self.d.metrics.seconds_since_last_tick.labels(name).set(
                    seconds_since_last_tick(view, now)
                )
                self.d.metrics.connected.labels(name).set(
                    1 if self.feed.connections[name].connected else 0
                )
            stalls = find_stalls(
                views.values(), now, market_open, s.stall_seconds,
                s.watch_outside_market_hours, s.stall_backoff_max_s,
            )  # fmt: skip
            for stall in stalls:
                if self.feed.connections[stall.connection].token_rejected:
                    continue  # explained: waiting for a new token, reconnecting would not help
                logger.error("feed stall: %s", stall.reason)
                self.d.metrics.feed_stalls.labels(stall.connection).inc()
                self.feed.replace(stall.connection, self.token, "stall")
                self._spawn(
                    self.d.alerter.send(
                        Alert(Severity.CRITICAL, f"producer-stall-{stall.connection}",
                              "Tick feed stalled", stall.reason)
                    )
                )  # fmt: skip

    async def _sample(self, stop: asyncio.Event) -> None:
        s = self.settings
        key = c.HEARTBEAT_KEY.format(service=SERVICE)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.sample_interval_s)
            m = self.d.metrics
            m.buffer_frames.set(len(self.buffer))
            dropped = self.buffer.dropped_packets
            if dropped > self._dropped_seen:
                m.ticks_dropped.labels("buffer_overflow").inc(dropped - self._dropped_seen)
                logger.warning("publisher fell behind: %d ticks dropped from the buffer so far",
                               dropped)  # fmt: skip
                self._dropped_seen = dropped
            if self.subscription.problems and not self.waiting_for:
                await self._retry_resolution()
            if self.feed.connections:
                staleness = instrument_staleness(
                    {t: tick.received_ns / 1e9 for t, tick in self.publisher.last_tick.items()},
                    {t: name for name, tokens in self.feed.shards.items() for t in tokens},
                    self.feed.views(), time.time(), s.instrument_stale_seconds, s.stall_seconds,
                )  # fmt: skip
                m.stale_instruments.set(staleness.stale)
            try:
                await self.d.redis.set(key, self.d.clock.now().isoformat(), ex=HEARTBEAT_TTL_S)
                written = [c.partitioned(c.TICKS, p) for p in range(s.tick_partitions)]
                for stream in (*written, c.SESSION_EVENTS, c.CONTROL):
                    m.stream_length.labels(stream).set(await self.d.redis.xlen(stream))
            except Exception as exc:
                logger.debug("sampling Redis failed: %s", type(exc).__name__)

    # -- events ---------------------------------------------------------------------------------

    async def _read_halt(self) -> None:
        try:
            raw = await self.d.redis.hgetall(c.HALT_KEY)
        except Exception as exc:
            logger.warning("cannot read the HALT state: %s", type(exc).__name__)
            return
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        self._set_halted(fields.get("halted") == "1", fields.get("reasons", ""))

    def _set_halted(self, halted: bool, reason: str) -> None:
        if halted != self.halted:
            logger.warning("system %s (%s); ticks keep streaming", "HALTED" if halted else "RESUMED",
                           reason)  # fmt: skip
        self.halted, self.halt_reason = halted, reason
        self.d.metrics.set_halted(halted)

    async def _listen(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.d.bus.listen([c.SESSION_EVENTS, c.CONTROL], self._on_event, stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event listener failed; restarting in 1 s")
                await asyncio.sleep(1.0)

    async def _on_event(self, stream: str, entry_id: str, message: Message) -> None:
        if isinstance(message, Control):
            self._set_halted(message.command == "HALT", message.reason)
        elif (
            isinstance(message, SessionEvent)
            and message.kind == "LOGIN"
            and message.token_fingerprint != token_fingerprint(self.token)
        ):
            self._token_changed.set()
