"""KiteBroker.place sends, on the event loop, the very request kiteconnect's place_order sends
(method, path, headers, form body byte for byte), reads Kite's replies to the same outcomes, and
reports a transport failure as an unknown outcome (BrokerUnavailable), never as a refusal."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from kiteconnect import KiteConnect

from services.gatekeeper.adapters.kite_broker import (
    BrokerOptions,
    BrokerRejected,
    BrokerUnavailable,
    KiteBroker,
)
from tests.support import free_port, serving

pytestmark = pytest.mark.integration

PARAMS: dict[str, Any] = {
    "variety": "regular", "exchange": "NFO", "tradingsymbol": "NIFTY24AUGFUT",
    "transaction_type": "SELL", "quantity": 25, "product": "NRML", "order_type": "LIMIT",
    "validity": "DAY", "tag": "ta3f9c2e1b7d4a", "price": 24650.35,
}  # fmt: skip
HEADERS = ("X-Kite-Version", "User-Agent", "Authorization", "Content-Type")


@dataclass
class FakeKite:
    port: int = 0
    requests: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    reply: tuple[int, dict[str, Any]] = (200, {"status": "success", "data": {"order_id": "42"}})
    delay_s: float = 0.0
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k: request.headers.get(k, "") for k in HEADERS}
        self.requests.append((request.method, request.path, headers, await request.read()))
        if self.delay_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), self.delay_s)
        status, body = self.reply
        return web.json_response(body, status=status)


@pytest.fixture
async def fake_kite() -> AsyncIterator[FakeKite]:
    kite = FakeKite()
    app = web.Application()
    app.router.add_post("/orders/{variety}", kite.handle)
    async with serving(app) as kite.port:
        yield kite
        kite.released.set()


def broker(port: int, timeout_s: float = 5.0) -> KiteBroker:
    async def read_token() -> str:
        return "access-token"

    async def on_rejected(token: str) -> None:
        pass

    options = BrokerOptions("api-key", f"http://127.0.0.1:{port}", timeout_s, 1, 0.01, 0.01)
    return KiteBroker(options, read_token, on_rejected)


async def test_the_request_is_kiteconnect_s_byte_for_byte(fake_kite: FakeKite) -> None:
    official = KiteConnect("api-key", access_token="access-token",
                           root=f"http://127.0.0.1:{fake_kite.port}")  # fmt: skip
    assert await asyncio.to_thread(official.place_order, **PARAMS) == "42"
    ours = broker(fake_kite.port)
    try:
        assert await ours.place(PARAMS) == "42"
    finally:
        await ours.close()
    theirs, mine = fake_kite.requests
    assert mine == theirs
    assert mine[1] == "/orders/regular"
    assert mine[2]["Authorization"] == "token api-key:access-token"


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (400, "InputException", BrokerRejected),
        (400, "OrderException", BrokerRejected),
        (503, "NetworkException", BrokerUnavailable),
        (500, "GeneralException", BrokerUnavailable),
    ],
)
async def test_kite_s_error_replies_are_sorted_as_kiteconnect_s_exceptions_are(
    fake_kite: FakeKite, status: int, error_type: str, expected: type[Exception]
) -> None:
    fake_kite.reply = (status, {"status": "error", "error_type": error_type, "message": "no"})
    ours = broker(fake_kite.port)
    try:
        with pytest.raises(expected, match="no"):
            await ours.place(PARAMS)
    finally:
        await ours.close()


async def test_no_reply_in_time_or_no_server_is_an_unknown_outcome(fake_kite: FakeKite) -> None:
    fake_kite.delay_s = 1.0
    slow = broker(fake_kite.port, timeout_s=0.2)
    try:
        with pytest.raises(BrokerUnavailable, match="place_order"):
            await slow.place(PARAMS)
    finally:
        await slow.close()
    nobody = broker(free_port())  # nothing listens there
    try:
        with pytest.raises(BrokerUnavailable, match="place_order"):
            await nobody.place(PARAMS)
    finally:
        await nobody.close()
