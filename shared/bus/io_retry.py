"""Retries of Redis calls on temporary errors only (tenacity, at this IO edge and nowhere else)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from shared.bus.metrics import BusMetrics

logger = logging.getLogger(__name__)

# A server restarting, a dropped connection, a timeout: worth another try. Anything else is not.
TEMPORARY_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a temporary Redis error is retried before it propagates."""

    attempts: int = 5
    initial_s: float = 0.1  # first back-off; doubles each attempt
    max_s: float = 2.0  # back-off ceiling

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial_s < 0 or self.max_s < self.initial_s:
            raise ValueError(f"invalid RetryPolicy {self!r}")


async def call_with_retry[T](
    policy: RetryPolicy,
    operation: str,
    metrics: BusMetrics,
    call: Callable[[], Awaitable[T]],
) -> T:
    """`await call()`, retried with exponential back-off on a temporary Redis error; the last
    error propagates once `policy.attempts` are used up."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        metrics.io_retried(operation)
        logger.warning(
            "redis %s failed (attempt %s of %s), retrying: %r",
            operation,
            state.attempt_number,
            policy.attempts,
            error,
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential(multiplier=policy.initial_s, max=policy.max_s),
        retry=retry_if_exception_type(TEMPORARY_REDIS_ERRORS),
        before_sleep=before_sleep,
        reraise=True,
    )
    # The explicit loop (rather than `await retrying(call)`) because tenacity only awaits the
    # result of a coroutine FUNCTION, and `call` is usually a lambda returning an awaitable.
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity either returns or reraises")
