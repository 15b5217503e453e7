"""The KiteTicker WebSocket endpoint: handshake auth, client messages, one writer per connection.

Each connection has a bounded outgoing queue drained by its own writer task, which also sends a
1-byte heartbeat whenever the connection has been idle for `heartbeat_interval_s`. At max speed the
replay waits for a full queue (every tick is delivered); in real time a full queue drops the frame
for that connection only (a slow consumer must not stall the market for everyone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from services.simulator.errors import TokenError
from services.simulator.subscriptions import SubscriptionError, Subscriptions
from services.simulator.ticker_packets import HEARTBEAT, TickMode
from services.simulator.web.common import server_of

if TYPE_CHECKING:
    from services.simulator.service import SimulatorServer

logger = logging.getLogger(__name__)

QUEUE_FRAMES = 64


class TickerConnection:
    """One authenticated client: its subscriptions and its outgoing queue."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        subscriptions: Subscriptions,
        underlying_of: Callable[[int], int | None],
    ) -> None:
        self.ws = ws
        self.request = request
        self.subscriptions = subscriptions
        self.underlying_of = underlying_of
        self.queue: asyncio.Queue[bytes | str] = asyncio.Queue(QUEUE_FRAMES)
        self.dropped_frames = 0
        self.closed = asyncio.Event()
        self._groups: dict[int, list[tuple[int, TickMode]]] | None = None

    def subscriptions_changed(self) -> None:
        self._groups = None

    def tokens_by_underlying(self) -> dict[int, list[tuple[int, TickMode]]]:
        """Subscribed (token, mode) grouped by the underlying whose ticks move them."""
        if self._groups is None:
            groups: dict[int, list[tuple[int, TickMode]]] = {}
            for token, mode in self.subscriptions.modes.items():
                underlying = self.underlying_of(token)
                if underlying is not None:
                    groups.setdefault(underlying, []).append((token, mode))
            self._groups = groups
        return self._groups

    def offer(self, item: bytes | str) -> bool:
        """Queue without waiting; False (and counted) when the client is too slow."""
        try:
            self.queue.put_nowait(item)
            return True
        except asyncio.QueueFull:
            self.dropped_frames += 1
            return False

    async def put(self, item: bytes | str) -> None:
        """Queue, waiting while the queue is full, unless the client goes away meanwhile."""
        if self.closed.is_set():
            return
        try:
            self.queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            pass
        putting = asyncio.ensure_future(self.queue.put(item))
        closing = asyncio.ensure_future(self.closed.wait())
        _, pending = await asyncio.wait({putting, closing}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def abort(self) -> None:
        """Drop the TCP connection without a close frame (what a network failure looks like)."""
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def write_loop(self, server: SimulatorServer) -> None:
        interval = server.settings.heartbeat_interval_s
        ws = self.ws
        while True:
            try:
                item = await asyncio.wait_for(self.queue.get(), timeout=interval)
            except TimeoutError:
                if not server.sim.faults.heartbeats_stalled(time.monotonic()):
                    await ws.send_bytes(HEARTBEAT)
                continue
            if isinstance(item, str):
                await ws.send_str(item)
            else:
                await ws.send_bytes(item)


async def ticker_handler(request: web.Request) -> web.StreamResponse:
    """GET /?api_key=..&access_token=.. upgraded to a WebSocket; 403 when the token is bad."""
    server = server_of(request)
    api_key = request.query.get("api_key", "")
    access_token = request.query.get("access_token", "")
    try:
        server.sim.sessions.validate(api_key, access_token, server.now())
    except TokenError as exc:
        logger.info("ticker handshake refused: %s", exc.message)
        return web.Response(status=403, text=exc.message)
    if len(server.connections) >= server.settings.ws_max_connections:
        logger.info("ticker handshake refused: connection limit reached")
        return web.Response(status=429, text="Too many connections for this api_key.")
    ws = web.WebSocketResponse(autoping=True, max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    connection = TickerConnection(
        ws, request, Subscriptions(server.settings.ws_max_instruments), server.underlying_of
    )
    server.connections.add(connection)
    writer = asyncio.create_task(connection.write_loop(server))
    logger.info("ticker connected (%s open)", len(server.connections))
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                change = connection.subscriptions.apply(message.data)
            except SubscriptionError as exc:
                connection.offer(json.dumps({"type": "error", "data": str(exc)}))
                continue
            logger.debug("ticker client: %s", change.description)
            connection.subscriptions_changed()
            server.send_current_ticks(connection, change.refreshed)
    finally:
        server.connections.discard(connection)
        connection.closed.set()
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, RuntimeError):
            await writer
        logger.info("ticker disconnected (%s open)", len(server.connections))
    return ws
