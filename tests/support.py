"""Helpers for tests: wait for a condition instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

from shared.localservers import free_port

__all__ = ["eventually", "eventually_sync", "free_port"]


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
