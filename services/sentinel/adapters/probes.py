"""The IO half of the pre-market checks: the public IP, Redis and ClickHouse reachability.

Each probe returns a CheckResult (never raises): the pure `checks` module turns results into halt
reasons.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from services.sentinel.checks import CheckResult, static_ip_check

logger = logging.getLogger(__name__)


async def public_ip_result(url: str, static_ip: str, timeout_s: float) -> CheckResult:
    """Compare this machine's public IP (from `url`, plain text) with the registered one."""
    if not static_ip:
        return static_ip_check(None, "")
    try:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as http, http.get(url) as response:
            if response.status != 200:
                return static_ip_check(None, static_ip, f"{url} answered HTTP {response.status}")
            text = (await response.text()).strip()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return static_ip_check(None, static_ip, f"{url}: {type(exc).__name__}")
    return static_ip_check(text.split()[0] if text else None, static_ip, f"{url} answered nothing")


async def reachable(
    name: str, probe: Callable[[], Awaitable[Any]], timeout_s: float
) -> CheckResult:
    """Run `probe`; pass when it returns in time, fail with the error otherwise."""
    try:
        await asyncio.wait_for(probe(), timeout_s)
    except TimeoutError:
        return CheckResult.failed(name, f"no answer within {timeout_s:g} s")
    except Exception as exc:
        return CheckResult.failed(name, f"unreachable: {type(exc).__name__}: {exc}")
    return CheckResult.passed(name)
