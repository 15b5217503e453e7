"""The Producer's quote call rides out Kite's rate limit (HTTP 429) instead of failing its start."""

from __future__ import annotations

import time

import pytest
from kiteconnect.exceptions import NetworkException

from services.producer.adapters.kite_rest import KiteQuotes
from tests.sim_fixtures import KiteSim

pytestmark = pytest.mark.e2e


async def test_a_429_on_the_underlying_quote_is_retried_until_kite_answers(
    kite_sim: KiteSim,
) -> None:
    token = kite_sim.login()
    kite_sim.control.faults(rate_limit_s=1.5)
    quotes = KiteQuotes(kite_sim.api_key, kite_sim.rest_root, timeout_s=5.0, attempts=6)
    started = time.monotonic()
    spots = await quotes.spots(token, ["NSE:NIFTY 50"])
    assert time.monotonic() - started >= 1.0, "the first answers were 429s"
    assert spots["NSE:NIFTY 50"].last_price > 0


async def test_a_rate_limit_that_outlasts_the_attempts_is_reported_not_swallowed(
    kite_sim: KiteSim,
) -> None:
    token = kite_sim.login()
    kite_sim.control.faults(rate_limit_s=60)
    quotes = KiteQuotes(kite_sim.api_key, kite_sim.rest_root, timeout_s=5.0, attempts=1)
    with pytest.raises(NetworkException):
        await quotes.spots(token, ["NSE:NIFTY 50"])
    kite_sim.control.faults(rate_limit_s=0)
