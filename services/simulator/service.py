"""The simulator's async shell: two aiohttp servers (REST, ticker) and the replay driver.

The driver moves the simulated clock, lets the order book see every tick, and hands each ticker
connection the packets of its subscriptions (many packets per frame at max speed). Everything it
calls is pure; it only waits, sends and reacts to control requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time

from aiohttp import web

from services.simulator.kite_json import postback_json
from services.simulator.orders import Order
from services.simulator.settings import SimulatorSettings
from services.simulator.simulation import Simulation, build_simulation
from services.simulator.ticker_packets import FrameEncoder, TickMode, WireTick
from services.simulator.web.common import SERVER
from services.simulator.web.control import control_routes
from services.simulator.web.login import login_routes
from services.simulator.web.rest import kite_middleware, rest_routes
from services.simulator.web.ticker import TickerConnection, ticker_handler
from shared.calendar import NseCalendar, load_calendar

logger = logging.getLogger(__name__)

MAX_SPEED_BATCH_MOMENTS = 64


class SimulatorServer:
    """The REST API and the ticker of one simulated day; `start`/`stop` on a running loop."""

    def __init__(self, settings: SimulatorSettings, calendar: NseCalendar | None = None) -> None:
        self.settings = settings
        calendar = calendar or load_calendar(settings.market_calendar_path or None)
        self.sim: Simulation = build_simulation(settings, calendar, time.monotonic())
        self.connections: set[TickerConnection] = set()
        self.rest_root = ""
        self.ws_root = ""
        self._encoder = FrameEncoder(settings.max_packets_per_frame)
        self._wake = asyncio.Event()
        self._runners: list[web.AppRunner] = []
        self._tasks: list[asyncio.Task[None]] = []

    # -- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        rest = web.Application(middlewares=[kite_middleware])
        rest[SERVER] = self
        rest.add_routes(login_routes() + control_routes() + rest_routes())
        ticker = web.Application()
        ticker[SERVER] = self
        ticker.router.add_get("/", ticker_handler)
        rest_port = await self._serve(rest, self.settings.rest_port)
        ws_port = await self._serve(ticker, self.settings.ws_port)
        self.rest_root = f"http://{self.settings.host}:{rest_port}"
        self.ws_root = f"ws://{self.settings.host}:{ws_port}"
        # Moments at or before the start time are history: played without subscribers.
        self.sim.replay.advance_to(self.now())
        self._tasks.append(asyncio.create_task(self._drive(), name="sim-replay"))
        if self.settings.fault_drop_websocket_every_s or self.settings.fault_stall_every_s:
            self._tasks.append(asyncio.create_task(self._chaos(), name="sim-chaos"))
        logger.info(
            "simulator up: day %s from %s, speed %s, REST %s, ticker %s",
            self.sim.day,
            self.settings.start_time,
            self.settings.speed or "max",
            self.rest_root,
            self.ws_root,
        )

    async def _serve(self, app: web.Application, port: int) -> int:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site = web.TCPSite(runner, self.settings.host, port)
        await site.start()
        return int(runner.addresses[0][1])

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for connection in list(self.connections):
            with contextlib.suppress(Exception):
                await connection.ws.close()
        for runner in reversed(self._runners):
            await runner.cleanup()
        self._runners.clear()
        logger.info("simulator stopped")

    # -- time -----------------------------------------------------------------------------------

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self.sim.clock.now(time.monotonic())

    def wake(self) -> None:
        """The clock or the faults changed: the driver re-plans."""
        self._wake.set()

    async def _sleep_until_woken(self, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    async def _drive(self) -> None:
        sim = self.sim
        while True:
            clock = sim.clock
            if clock.at_max_speed:
                if await self._play(math.inf, MAX_SPEED_BATCH_MOMENTS, jump_clock=True, wait=True):
                    await asyncio.sleep(0)  # let REST requests in between batches
                    continue
                clock.jump(max(self.now(), sim.day_end_epoch), time.monotonic())
                self._close_session_if_over()
                await self._sleep_until_woken(None)
                continue
            # A step of a paused clock delivers every tick (waiting for slow clients); a clock
            # running in real time never waits for one slow client.
            await self._play(self.now(), None, jump_clock=False, wait=clock.paused)
            self._close_session_if_over()
            upcoming = sim.replay.next_epoch()
            delay: float | None = None
            if upcoming is not None:
                delay = clock.wall_delay_until(upcoming, time.monotonic())
            elif not sim.session_closed:
                delay = clock.wall_delay_until(sim.day_end_epoch, time.monotonic())
            await self._sleep_until_woken(delay)

    def _close_session_if_over(self) -> None:
        sim = self.sim
        if not sim.session_closed and self.now() >= sim.day_end_epoch:
            sim.session_closed = True
            logger.info("session over at %s: cancelling working DAY orders", sim.day_end_epoch)
            self.broadcast_orders(sim.book.close_session(sim.day_end_epoch))

    # -- publishing -------------------------------------------------------------------------------

    def underlying_of(self, token: int) -> int | None:
        instrument = self.sim.universe.by_token.get(token)
        return None if instrument is None else instrument.underlying_token

    async def _play(self, until: float, limit: int | None, jump_clock: bool, wait: bool) -> int:
        """Play the moments up to `until` (at most `limit`) one at a time, so every tick is
        matched and encoded with the market as it was at that moment; returns how many."""
        sim = self.sim
        stalled = sim.faults.ticks_stalled(time.monotonic())
        pending: dict[TickerConnection, list[tuple[WireTick, TickMode]]] = {
            c: [] for c in self.connections
        }
        capacity = self._encoder.capacity_packets
        by_token = sim.universe.by_token
        wire_tick = sim.market.wire_tick
        played = 0
        while limit is None or played < limit:
            moments = sim.replay.advance_to(until, limit=1)
            if not moments:
                break
            moment = moments[0]
            played += 1
            if jump_clock:
                sim.clock.jump(moment.epoch, time.monotonic())
            ticked = [token for token, _ in moment.prices]
            self.broadcast_orders(sim.book.on_tick(ticked, moment.epoch))
            if stalled:
                continue
            # Each token's tick is worked out once per moment, whoever subscribed to it.
            cache: dict[int, WireTick | None] = {}
            for connection, packets in pending.items():
                groups = connection.tokens_by_underlying()
                for underlying in ticked:
                    for token, mode in groups.get(underlying, ()):
                        if token in cache:
                            values = cache[token]
                        else:
                            values = cache[token] = wire_tick(by_token[token])
                        if values is not None:
                            packets.append((values, mode))
                if len(packets) >= capacity:
                    await self._flush(connection, packets, wait=wait)
        for connection, packets in pending.items():
            await self._flush(connection, packets, wait=wait)
        return played

    async def _flush(
        self, connection: TickerConnection, packets: list[tuple[WireTick, TickMode]], wait: bool
    ) -> None:
        capacity = self._encoder.capacity_packets
        while packets:
            frame = self._encoder.encode_wire(packets[:capacity])
            del packets[:capacity]
            if wait:
                await connection.put(frame)
            elif not connection.offer(frame):
                logger.warning(
                    "ticker client too slow: frame dropped (%s so far)", connection.dropped_frames
                )

    def send_current_ticks(self, connection: TickerConnection, tokens: list[int]) -> None:
        """A newly subscribed (or re-moded) token gets its current tick at once, as on Kite."""
        packets = []
        for token in tokens:
            instrument = self.sim.universe.by_token.get(token)
            snapshot = None if instrument is None else self.sim.market.snapshot(instrument)
            if snapshot is not None:
                packets.append((snapshot, connection.subscriptions.modes[token]))
        for start in range(0, len(packets), self._encoder.capacity_packets):
            chunk = packets[start : start + self._encoder.capacity_packets]
            connection.offer(self._encoder.encode(chunk))

    def broadcast_orders(self, updates: list[Order]) -> None:
        """Order updates go to every ticker connection as {"type": "order"} text messages."""
        if not updates:
            return
        s = self.settings
        secret = s.api_secret.get_secret_value()
        for order in updates:
            text = json.dumps(
                {
                    "type": "order",
                    "id": "",
                    "data": postback_json(order, s.user_id, s.api_key, secret),
                }
            )
            for connection in self.connections:
                connection.offer(text)

    # -- faults ---------------------------------------------------------------------------------

    def drop_connections(self) -> int:
        dropped = len(self.connections)
        for connection in list(self.connections):
            connection.abort()
        logger.info("fault: dropped %s ticker connection(s)", dropped)
        return dropped

    async def _chaos(self) -> None:
        """Periodic faults from settings (rehearsing a flaky day)."""
        s = self.settings
        drop_every, stall_every = s.fault_drop_websocket_every_s, s.fault_stall_every_s
        next_drop = time.monotonic() + drop_every if drop_every else math.inf
        next_stall = time.monotonic() + stall_every if stall_every else math.inf
        while True:
            await asyncio.sleep(max(0.05, min(next_drop, next_stall) - time.monotonic()))
            wall = time.monotonic()
            if wall >= next_drop:
                self.drop_connections()
                next_drop = wall + drop_every
            if wall >= next_stall:
                self.sim.faults.apply({"stall_ticks_s": s.fault_stall_for_s}, wall)
                logger.info("fault: ticks stalled for %s s", s.fault_stall_for_s)
                next_stall = wall + stall_every
