"""Order updates from the broker (an IO adapter): the KiteTicker's order-update messages and, as
their backup, polling of the order book while orders work; both applied by the OrderDesk.

The ticker runs on its own thread: its messages cross to the event loop through a queue. It is
(re)opened whenever the Sentinel logs in with a new token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from services.gatekeeper.adapters.kite_broker import BrokerRejected, BrokerUnavailable
from services.gatekeeper.adapters.order_desk import OrderDesk
from services.gatekeeper.adapters.redis_state import RedisState
from services.gatekeeper.broker_view import BrokerOrder
from services.gatekeeper.settings import GatekeeperSettings

logger = logging.getLogger(__name__)

FeedFactory = Callable[[str, Callable[[dict[str, Any]], None], Callable[[str, str], None]], Any]


class OrderUpdates:
    def __init__(
        self,
        settings: GatekeeperSettings,
        redis_state: RedisState,
        feed_factory: FeedFactory | None,
        spawn: Callable[[Awaitable[None]], None],
    ) -> None:
        self.s = settings
        self.redis_state = redis_state
        self.feed_factory = feed_factory
        self._spawn = spawn
        self.desk: OrderDesk | None = None  # set once the Gatekeeper has started
        self.feed: Any = None  # the order-update ticker, once opened
        self._token = ""
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    def start_feed(self) -> None:
        """(Re)open the order-update ticker with the current token, when one is configured."""
        if self.feed_factory is None or self.desk is None or self.desk.broker is None:
            return
        if self.s.order_updates != "websocket":
            return
        self._spawn(self._open_feed())

    async def _open_feed(self) -> None:
        token = await self.redis_state.access_token()
        if not token or token == self._token or self.feed_factory is None:
            return
        loop = asyncio.get_running_loop()

        def deliver(data: dict[str, Any]) -> None:  # on the ticker's thread
            loop.call_soon_threadsafe(self._queue.put_nowait, data)

        if self.feed is not None:
            self.feed.close()
        self._token = token
        self.feed = self.feed_factory(
            token,
            deliver,
            lambda kind, detail: logger.info("order-update ticker %s: %s", kind, detail),
        )
        self.feed.start()

    async def apply_feed(self, stop: asyncio.Event) -> None:
        """Apply the ticker's order updates as they come, until `stop`."""
        while not stop.is_set():
            try:
                data = await asyncio.wait_for(self._queue.get(), 0.5)
            except TimeoutError:
                continue
            try:
                row = BrokerOrder.from_kite(data)
            except (KeyError, ValueError, TypeError) as exc:
                logger.warning("unreadable order update %s: %s", data.get("order_id"), exc)
                continue
            assert self.desk is not None
            await self.desk.on_broker_order(row)

    async def poll(self, stop: asyncio.Event) -> None:
        """Every order_poll_interval_s while orders work, apply the broker's order book."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.s.order_poll_interval_s)
            if stop.is_set():
                return
            if self.desk is None or self.desk.broker is None or not self.desk.broker_working():
                continue
            try:
                await self.desk.poll()
            except (BrokerRejected, BrokerUnavailable) as exc:
                logger.warning("polling the order book failed: %s", exc)

    def close(self) -> None:
        if self.feed is not None:
            self.feed.close()
