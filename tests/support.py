"""Helpers for tests: wait for a condition instead of sleeping; serve a stand-in HTTP app."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta

from aiohttp import web

from shared.clock import IST
from shared.localservers import free_port
from shared.messages import DepthLevel, Tick

__all__ = ["eventually", "eventually_sync", "free_port", "serving"]


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[int]:
    """`app` served on a free loopback port (yielded) until the block ends."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", 0))
    try:
        await web.SockSite(runner, sock).start()
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()


async def eventually(
    condition: Callable[[], object] | Callable[[], Awaitable[object]],
    timeout: float = 5.0,
    interval: float = 0.02,
    message: str = "",
) -> object:
    """Poll `condition` (sync or async) until it returns something truthy; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        last = result
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"condition not met within {timeout} s: {message or condition} (last: {last!r})"
            )
        await asyncio.sleep(interval)


def eventually_sync(
    condition: Callable[[], object], timeout: float = 5.0, interval: float = 0.02, message: str = ""
) -> object:
    """`eventually` for synchronous tests (e.g. the official kiteconnect client)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"condition not met within {timeout} s: {message or condition} (last: {result!r})"
            )
        time.sleep(interval)


STREAM_T0 = datetime(2024, 8, 1, 9, 15, tzinfo=IST)


def stream_tick(token: int, n: int) -> Tick:
    """The n-th tick of an instrument, every field distinct per n (bus round-trip tests)."""
    return Tick(
        instrument_token=token,
        symbol=f"NSE:T{token}",
        last_price=100.0 + n,
        exchange_ts=STREAM_T0 + timedelta(seconds=n),
        received_ns=1_722_483_900_000_000_000 + n,
        volume=1000 * n,
        bids=(DepthLevel(99.95 + n, 10, 1),),
        asks=(DepthLevel(100.05 + n, 12, 2),),
    )
