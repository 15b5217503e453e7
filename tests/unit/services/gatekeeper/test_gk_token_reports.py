"""KiteBroker reports a refused access token to the Sentinel once per token, however many calls
meet it (a margin refresh and a place_order in flight together), and again for a new token."""

from __future__ import annotations

import asyncio

import pytest
from kiteconnect import exceptions as kite_errors

from services.gatekeeper.adapters.kite_broker import BrokerOptions, BrokerRejected, KiteBroker

OPTIONS = BrokerOptions(
    api_key="k", root="http://127.0.0.1:9", timeout_s=1.0, retry_attempts=1,
    retry_initial_s=0.01, retry_max_s=0.01,
)  # fmt: skip


def _refused(_: object) -> object:
    raise kite_errors.TokenException("Incorrect `api_key` or `access_token`.")


@pytest.mark.parametrize(
    ("tokens", "calls", "reports"),
    [
        (["dead"], 2, ["dead"]),  # two calls, one stored token: one report
        (["dead", "dead"], 3, ["dead"]),
        (["old", "new"], 1, ["old", "new"]),  # the re-read token is refused too: both reported
    ],
)
async def test_each_refused_token_is_reported_once(
    tokens: list[str], calls: int, reports: list[str]
) -> None:
    stored = list(tokens)
    reported: list[str] = []

    async def read_token() -> str | None:
        return stored.pop(0) if len(stored) > 1 else stored[0]

    async def on_rejected(token: str) -> None:
        reported.append(token)

    broker = KiteBroker(OPTIONS, read_token, on_rejected)
    results = await asyncio.gather(
        *(broker._call("margins", _refused, retry=False) for _ in range(calls)),
        return_exceptions=True,
    )
    assert all(isinstance(r, BrokerRejected) for r in results)
    assert reported == reports
