"""The Sentinel halts the system until every pre-market check passes, then resumes it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from shared import constants as c
from shared.bus import decode_entry
from shared.messages import Control
from tests.integration.feed_harness import running_sentinel, sentinel_settings
from tests.sim_fixtures import KiteSim
from tests.support import eventually

pytestmark = pytest.mark.integration


class PublicIpService:
    """A stand-in for api.ipify.org: answers with whatever IP the test sets."""

    def __init__(self) -> None:
        self.ip = "203.0.113.7"
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _answer(self, request: web.Request) -> web.Response:
        return web.Response(text=self.ip + "\n")


@pytest.fixture
async def public_ip() -> AsyncIterator[PublicIpService]:
    service = PublicIpService()
    await service.start()
    yield service
    await service.stop()


async def halt_hash(redis: Any) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in (await redis.hgetall(c.HALT_KEY)).items()}


async def controls(redis: Any) -> list[Control]:
    out = []
    for _, fields in await redis.xrange(c.CONTROL):
        message = decode_entry(c.CONTROL, fields)
        assert isinstance(message, Control)
        out.append(message)
    return out


async def test_the_system_stays_halted_until_the_static_ip_matches_then_resumes(
    kite_sim: KiteSim, redis_url: str, public_ip: PublicIpService
) -> None:
    settings = sentinel_settings(
        kite_sim, redis_url, static_ip="198.51.100.1", public_ip_url=public_ip.url
    )
    async with running_sentinel(settings) as rs:
        await eventually(lambda: rs.metric("tradealgo_token_valid") == 1)
        await eventually(
            lambda: rs.metric("tradealgo_premarket_check", {"check": "instruments"}) == 1
        )
        halt = await halt_hash(rs.redis)
        reasons = json.loads(halt["reasons"])
        assert halt["halted"] == "1" and halt["source"] == "sentinel"
        assert reasons == [
            "static_ip: public IP 203.0.113.7 is not the registered static IP 198.51.100.1 "
            "(orders would be rejected)"
        ]
        ready, why = rs.sentinel.readiness()
        assert not ready and "static_ip" in why
        assert rs.metric("tradealgo_premarket_check", {"check": "static_ip"}) == 0
        assert rs.metric("tradealgo_halted", {"service": "sentinel"}) == 1
        checks = {k.decode(): v.decode() for k, v in (await rs.redis.hgetall(c.CHECKS_KEY)).items()}
        assert checks["token"] == "ok" and checks["static_ip"].startswith("public IP 203.0.113.7")
        assert any(a.key == "sentinel-halt" for a in rs.alerter.alerts)

        public_ip.ip = "198.51.100.1"  # the VPS got its registered IP back
        await eventually(lambda: rs.sentinel.readiness() == (True, "ready"))
        halt = await halt_hash(rs.redis)
        assert halt["halted"] == "0" and json.loads(halt["reasons"]) == []
        commands = [m.command for m in await controls(rs.redis)]
        assert commands[0] == "HALT" and commands[-1] == "RESUME"
        assert rs.metric("tradealgo_halted", {"service": "sentinel"}) == 0
        for check in ("token", "instruments", "static_ip", "redis", "clickhouse"):
            assert rs.metric("tradealgo_premarket_check", {"check": check}) == 1


async def test_an_unreachable_clickhouse_halts_and_its_return_resumes(
    kite_sim: KiteSim, redis_url: str
) -> None:
    state = {"up": False}

    async def ping() -> None:
        if not state["up"]:
            raise ConnectionRefusedError("connection refused")

    async with running_sentinel(sentinel_settings(kite_sim, redis_url), ping) as rs:
        await eventually(
            lambda: "clickhouse: unreachable: ConnectionRefusedError" in rs.sentinel.readiness()[1]
        )
        state["up"] = True
        await eventually(lambda: rs.sentinel.readiness()[0])


async def test_the_instruments_dump_lands_in_redis_with_lot_tick_and_freeze_quantities(
    kite_sim: KiteSim, redis_url: str
) -> None:
    async with running_sentinel(sentinel_settings(kite_sim, redis_url)) as rs:
        await eventually(
            lambda: rs.metric("tradealgo_premarket_check", {"check": "instruments"}) == 1
        )
        by_key = await rs.redis.hgetall(c.INSTRUMENTS_KEY)
        by_token = await rs.redis.hgetall(c.INSTRUMENT_TOKENS_KEY)
    assert len(by_key) == len(by_token) == len(rs.instruments.rows) > 100
    index = json.loads(by_key[b"NSE:NIFTY 50"])
    assert by_token[str(index["instrument_token"]).encode()] == b"NSE:NIFTY 50"
    option = next(
        json.loads(v) for k, v in by_key.items() if k.startswith(b"NFO:NIFTY") and k.endswith(b"CE")
    )
    assert option["lot_size"] == 25 and option["tick_size"] == 0.05
    assert option["freeze_quantity"] == 1800 and option["expiry"]
    banknifty = next(json.loads(v) for k, v in by_key.items() if k.startswith(b"NFO:BANKNIFTY"))
    assert banknifty["freeze_quantity"] == 600  # from settings, not the simulator's 900


async def test_an_operators_halt_is_never_lifted_by_passing_checks(
    kite_sim: KiteSim, redis_url: str
) -> None:
    async with running_sentinel(sentinel_settings(kite_sim, redis_url)) as rs:
        await eventually(lambda: rs.sentinel.readiness()[0])
        await rs.redis.hset(
            c.HALT_KEY,
            mapping={"halted": "1", "source": "cli:ops", "reasons": '["cli:ops: news"]',
                     "since": "2024-08-20T10:00:00+05:30"},
        )  # fmt: skip
        cycles = rs.sentinel.cycles
        await eventually(lambda: rs.sentinel.cycles >= cycles + 4, timeout=10)
        halt = await halt_hash(rs.redis)
        assert halt["halted"] == "1" and halt["source"] == "cli:ops"
        assert rs.sentinel.readiness() == (False, "halted: cli:ops: news")
