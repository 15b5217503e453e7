"""The Producer's few Kite REST calls (an IO adapter): quotes of the option underlyings.

The official client is synchronous: the call runs in a worker thread. A TokenException (403)
becomes TokenRejected so the service can report it to the Sentinel like a ticker 403. A rate-limit
reply (HTTP 429, which the client raises as NetworkException: /quote allows 1 request/s) or a
network error is retried with backoff instead of stopping the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import requests
from kiteconnect import KiteConnect
from kiteconnect import exceptions as kite_errors
from tenacity import (
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from shared.logs import register_secret


class TokenRejected(Exception):
    """Kite refused the access token (403)."""


@dataclass(frozen=True, slots=True)
class SpotQuote:
    last_price: float
    market_date: date | None  # the IST date of Kite's quote timestamp (the exchange's "today")


class KiteQuotes:
    def __init__(self, api_key: str, api_root: str, timeout_s: float, *, attempts: int = 5) -> None:
        self.api_key = api_key
        self.api_root = api_root
        self.timeout_s = timeout_s
        self.attempts = attempts

    async def spots(self, access_token: str, symbols: Sequence[str]) -> dict[str, SpotQuote]:
        """{"NSE:NIFTY 50": SpotQuote(24572.65, 2024-08-20), ...}; unknown symbols are absent.

        A full quote (one call, <= 500 symbols) rather than LTP: its timestamp tells the market's
        date, which picks the nearest expiry (and works for a replayed day too)."""
        if not symbols:
            return {}
        register_secret(access_token)

        @retry(
            retry=retry_if_exception_type(
                (kite_errors.NetworkException, requests.ConnectionError, requests.Timeout)
            ),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(initial=1.0, max=8.0),
            reraise=True,
        )
        def call() -> dict[str, SpotQuote]:
            kite = KiteConnect(
                self.api_key, access_token=access_token, root=self.api_root, timeout=self.timeout_s
            )
            try:
                data = kite.quote(list(symbols))
            except kite_errors.TokenException as exc:
                raise TokenRejected(str(exc)) from None
            out = {}
            for key, value in data.items():
                stamp = value.get("timestamp")
                # The client parses Kite's "yyyy-mm-dd hh:mm:ss" (IST) into a naive datetime.
                market_date = stamp.date() if isinstance(stamp, datetime) else None
                out[key] = SpotQuote(float(value["last_price"]), market_date)
            return out

        return await asyncio.to_thread(call)
