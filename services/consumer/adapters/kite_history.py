"""Kite's historical API through the official kiteconnect client: paced, retried, token-aware.

- Pacing: calls are spaced 1 / `requests_per_s` apart (Kite allows 3 per second per API key), for
  every caller of this object together; ranges come pre-cut to the per-interval limits by
  warmup.plan_fetches.
- The access token is read from Redis (ACCESS_TOKEN_KEY, written by the Sentinel) and never
  logged; on HTTP 403 (TokenException) it is read again, and the call retried once with a new one.
- HTTP 429 and network errors are retried with a doubling back-off, `attempts` tries in all.
- Anything else (a bad range, an unknown instrument) raises HistoryUnavailable with the reason.
kiteconnect is synchronous: calls run in a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from kiteconnect import KiteConnect
from kiteconnect import exceptions as kite_errors

from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.warmup import HistoryFetch

logger = logging.getLogger(__name__)

TokenSource = Callable[[], Awaitable[str | None]]


class HistoryUnavailable(RuntimeError):
    """The historical API could not answer; the message says why (never with the token)."""


class KiteHistory:
    """Fetches candles of one `HistoryFetch` at a time."""

    def __init__(
        self,
        api_key: str,
        root: str,
        timeout_s: float,
        token_source: TokenSource,
        *,
        requests_per_s: float,
        attempts: int,
        metrics: ConsumerMetrics,
        backoff_s: float = 0.5,
    ) -> None:
        if requests_per_s <= 0 or attempts < 1:
            raise ValueError("requests_per_s must be > 0 and attempts >= 1")
        self.api_key = api_key
        self.root = root
        self.timeout_s = timeout_s
        self.token_source = token_source
        self.spacing_s = 1.0 / requests_per_s
        self.attempts = attempts
        self.metrics = metrics
        self.backoff_s = backoff_s
        self.calls = 0
        self._next_at = 0.0
        self._pace = asyncio.Lock()
        self._client: KiteConnect | None = None
        self._token: str | None = None

    async def fetch(self, fetch: HistoryFetch) -> list[Mapping[str, Any]]:
        """The rows of one request (kiteconnect's dicts: date, open, high, low, close, volume)."""
        token_retried = False
        delay = self.backoff_s
        attempt = 1
        while True:
            client = await self._kite(refresh=False)
            await self._wait_turn()
            try:
                rows: list[Mapping[str, Any]] = await asyncio.to_thread(
                    client.historical_data,
                    fetch.instrument_token,
                    fetch.kite_from,
                    fetch.kite_to,
                    fetch.interval,
                )
            except kite_errors.TokenException as exc:
                self.metrics.historical_calls.labels("token").inc()
                if token_retried:
                    raise HistoryUnavailable(f"access token rejected: {exc}") from None
                logger.warning("historical API refused the token; reading it again from Redis")
                token_retried = True
                await self._kite(refresh=True)
                continue
            except kite_errors.NetworkException as exc:
                self.metrics.historical_calls.labels(
                    "rate" if "many" in str(exc) else "error"
                ).inc()
                if attempt >= self.attempts:
                    raise HistoryUnavailable(f"historical API unreachable: {exc}") from None
                logger.warning(
                    "historical call %s %s failed (try %s of %s), retrying in %.1f s: %s",
                    fetch.instrument_token, fetch.interval, attempt, self.attempts, delay, exc,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay *= 2
                attempt += 1
                continue
            except kite_errors.KiteException as exc:
                self.metrics.historical_calls.labels("error").inc()
                raise HistoryUnavailable(f"historical API refused the call: {exc}") from None
            except OSError as exc:  # requests' connection errors are OSErrors
                self.metrics.historical_calls.labels("error").inc()
                if attempt >= self.attempts:
                    raise HistoryUnavailable(f"historical API unreachable: {exc!r}") from None
                await asyncio.sleep(delay)
                delay *= 2
                attempt += 1
                continue
            self.calls += 1
            self.metrics.historical_calls.labels("ok").inc()
            return rows

    async def _wait_turn(self) -> None:
        async with self._pace:
            now = time.monotonic()
            wait = self._next_at - now
            self._next_at = max(now, self._next_at) + self.spacing_s
        if wait > 0:
            await asyncio.sleep(wait)

    async def _kite(self, *, refresh: bool) -> KiteConnect:
        if self._client is not None and not refresh:
            return self._client
        token = await self.token_source()
        if not token:
            raise HistoryUnavailable("no Kite access token in Redis (has the Sentinel logged in?)")
        if self._client is None or token != self._token:
            self.close()
            self._client = KiteConnect(
                self.api_key, access_token=token, root=self.root, timeout=self.timeout_s
            )
            self._token = token
        return self._client

    def close(self) -> None:
        """Close the HTTP session (its pooled connections)."""
        if self._client is not None:
            self._client.reqsession.close()
            self._client = None


def redis_token_source(redis: Any, key: str) -> TokenSource:
    """Reads the access token the Sentinel keeps in Redis."""

    async def read() -> str | None:
        raw = await redis.get(key)
        if raw is None:
            return None
        return raw.decode() if isinstance(raw, bytes) else str(raw)

    return read
