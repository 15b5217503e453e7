"""The Sentinel's logins against the simulator and a real Redis: automated, manual, and refusals."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import pyotp
import pytest

from services.sentinel.adapters.redirect_app import RedirectServer
from shared import constants as c
from shared.bus import decode_entry
from shared.messages import SessionEvent
from shared.session import token_fingerprint
from tests.integration.feed_harness import running_sentinel, sentinel_settings
from tests.sim_fixtures import KiteSim
from tests.support import eventually

pytestmark = pytest.mark.integration


def count_login_steps(sim: KiteSim) -> dict[str, int]:
    """Count the password and TOTP steps the simulator receives (wrapping its account)."""
    counts = {"password": 0, "twofa": 0}

    def install(server: Any) -> None:
        sessions = server.sim.sessions
        login, twofa = sessions.login, sessions.twofa

        def counted_login(*args: Any, **kwargs: Any) -> Any:
            counts["password"] += 1
            return login(*args, **kwargs)

        def counted_twofa(*args: Any, **kwargs: Any) -> Any:
            counts["twofa"] += 1
            return twofa(*args, **kwargs)

        sessions.login, sessions.twofa = counted_login, counted_twofa

    sim.runner.call(install)
    return counts


async def session_events(redis: Any) -> list[SessionEvent]:
    events = []
    for _, fields in await redis.xrange(c.SESSION_EVENTS):
        event = decode_entry(c.SESSION_EVENTS, fields)
        assert isinstance(event, SessionEvent)
        events.append(event)
    return events


async def text(redis: Any, key: str) -> str:
    raw = await redis.get(key)
    return raw.decode() if raw else ""


async def test_the_automated_login_distributes_the_token_with_expiry_and_never_shows_it(
    kite_sim: KiteSim, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = sentinel_settings(kite_sim, redis_url)
    async with running_sentinel(settings) as rs:
        await eventually(lambda: rs.metric("tradealgo_logins_total", {"outcome": "success"}) == 1)
        token = await text(rs.redis, c.ACCESS_TOKEN_KEY)
        fingerprint = token_fingerprint(token)
        info = {
            k.decode(): v.decode() for k, v in (await rs.redis.hgetall(c.SESSION_INFO_KEY)).items()
        }
        ttl = await rs.redis.ttl(c.ACCESS_TOKEN_KEY)
        events = await session_events(rs.redis)
        await eventually(lambda: rs.metric("tradealgo_token_valid") == 1)
        assert 0 < rs.metric("tradealgo_token_expiry_seconds") <= 24 * 3600
    assert token and info["fingerprint"] == fingerprint and info["user_id"] == kite_sim.user_id
    assert info["method"] == "auto"
    # The key dies at the next 06:00 IST: within a day, and not before the token does.
    assert 0 < ttl <= 24 * 3600
    expires = info["expires_at"]
    assert expires.endswith("06:00:00+05:30")
    assert [(e.kind, e.token_fingerprint) for e in events] == [("LOGIN", fingerprint)]
    assert rs.audit.rows[0]["outcome"] == "success"
    assert rs.audit.rows[0]["token_fingerprint"] == fingerprint
    # The token, the password, the TOTP secret and the api_secret never reach a log line.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (token, kite_sim.password, kite_sim.totp_secret, kite_sim.api_secret):
        assert secret not in logged
    assert all(token not in str(v) for row in rs.audit.rows for v in row.values())


async def test_a_wrong_totp_secret_is_a_clear_error_and_no_retry_storm(
    kite_sim: KiteSim, redis_url: str
) -> None:
    counts = count_login_steps(kite_sim)
    wrong = pyotp.random_base32()
    settings = sentinel_settings(kite_sim, redis_url, totp_secret=wrong)
    async with running_sentinel(settings) as rs:
        await eventually(lambda: rs.metric("tradealgo_logins_total", {"outcome": "bad_totp"}) == 1)
        # Rejections reported by every service, and many cycles: still no new attempt.
        for _ in range(5):
            rs.sentinel.request_login("token_rejected")
            await asyncio.sleep(0.1)
        await eventually(lambda: rs.sentinel.cycles >= 10, timeout=10)
        assert counts == {"password": 1, "twofa": 1}
        assert rs.sentinel.gate.blocked_outcome == "bad_totp"
        alert = next(a for a in rs.alerter.alerts if a.key == "sentinel-login-bad_totp")
        assert alert.severity == "critical"
        assert "SENTINEL_TOTP_SECRET" in alert.text and wrong not in alert.text
        halt = {k.decode(): v.decode() for k, v in (await rs.redis.hgetall(c.HALT_KEY)).items()}
        assert halt["halted"] == "1" and "token: no access token" in halt["reasons"]
        # An explicit command (or the next schedule) is the only way to try again.
        rs.sentinel.request_login("command")
        await eventually(lambda: counts["twofa"] == 2)
        assert rs.metric("tradealgo_logins_total", {"outcome": "bad_totp"}) == 2
    assert rs.audit.rows[0]["outcome"] == "bad_totp" and rs.audit.rows[0]["token_fingerprint"] == ""


async def test_a_wrong_password_stops_before_the_totp_step_and_is_not_retried(
    kite_sim: KiteSim, redis_url: str
) -> None:
    counts = count_login_steps(kite_sim)
    settings = sentinel_settings(kite_sim, redis_url, password="not-the-password")
    async with running_sentinel(settings) as rs:
        await eventually(
            lambda: rs.metric("tradealgo_logins_total", {"outcome": "bad_credentials"}) == 1
        )
        await eventually(lambda: rs.sentinel.cycles >= 8, timeout=10)
    assert counts == {"password": 1, "twofa": 0}


async def test_a_malformed_totp_secret_fails_before_anything_is_sent(
    kite_sim: KiteSim, redis_url: str
) -> None:
    counts = count_login_steps(kite_sim)
    settings = sentinel_settings(kite_sim, redis_url, totp_secret="123456")
    async with running_sentinel(settings) as rs:
        await eventually(
            lambda: rs.metric("tradealgo_logins_total", {"outcome": "config_error"}) == 1
        )
        await eventually(lambda: rs.sentinel.cycles >= 5, timeout=10)
        assert "SENTINEL_TOTP_SECRET is unusable" in rs.audit.rows[0]["reason"]
    assert counts == {"password": 0, "twofa": 0}


async def test_a_rejected_token_reported_by_a_service_is_replaced_once(
    kite_sim: KiteSim, redis_url: str
) -> None:
    from datetime import UTC, datetime

    from shared.bus import StreamBus
    from shared.session import token_rejected_event

    settings = sentinel_settings(kite_sim, redis_url)
    counts = count_login_steps(kite_sim)
    async with running_sentinel(settings) as rs:
        await eventually(lambda: rs.metric("tradealgo_logins_total", {"outcome": "success"}) == 1)
        old = await text(rs.redis, c.ACCESS_TOKEN_KEY)
        await asyncio.to_thread(kite_sim.control.faults, expire_token=True)
        bus = StreamBus(rs.redis, service="test", maxlen=1000)
        for reporter in ("producer", "gatekeeper", "consumer"):  # three services see the 403
            await bus.publish(
                c.SESSION_EVENTS, token_rejected_event(old, reporter, datetime.now(UTC))
            )
        await eventually(lambda: rs.metric("tradealgo_logins_total", {"outcome": "success"}) == 2)
        new = await text(rs.redis, c.ACCESS_TOKEN_KEY)
        await asyncio.sleep(1.0)
        # A late report about the OLD token does not trigger another login.
        await bus.publish(c.SESSION_EVENTS, token_rejected_event(old, "late", datetime.now(UTC)))
        await asyncio.sleep(1.0)
        assert rs.metric("tradealgo_logins_total", {"outcome": "success"}) == 2
    assert new and new != old
    assert counts["twofa"] == 2


async def test_the_manual_redirect_endpoint_exchanges_a_request_token(
    kite_sim: KiteSim, redis_url: str
) -> None:
    counts = count_login_steps(kite_sim)
    settings = sentinel_settings(kite_sim, redis_url, login_method="manual")
    async with running_sentinel(settings) as rs:
        await eventually(lambda: "sentinel-manual-login" in [a.key for a in rs.alerter.alerts])
        assert counts == {"password": 0, "twofa": 0}  # manual: never automated
        server = RedirectServer("127.0.0.1", 0, "http://kite.invalid/login",
                                rs.sentinel.login_with_request_token)  # fmt: skip
        await server.start()
        try:
            request_token = await asyncio.to_thread(kite_sim.request_token)
            url = f"http://127.0.0.1:{server.port}/kite/redirect"
            async with aiohttp.ClientSession() as http:
                params = {"request_token": request_token, "status": "success"}
                async with http.get(url, params=params) as response:
                    status, page = response.status, await response.text()
                async with http.get(url, params=params) as response:  # replayed: refused
                    replay_status = response.status
                async with http.get(
                    f"http://127.0.0.1:{server.port}/kite/login", allow_redirects=False
                ) as response:
                    assert response.headers["Location"] == "http://kite.invalid/login"
        finally:
            await server.stop()
        token = await text(rs.redis, c.ACCESS_TOKEN_KEY)
        info = await rs.redis.hget(c.SESSION_INFO_KEY, "method")
    assert status == 200 and token_fingerprint(token) in page and token not in page
    assert replay_status == 502
    assert info == b"manual"


async def test_the_sentinel_adopts_a_token_from_redis_on_restart_without_logging_in(
    kite_sim: KiteSim, redis_url: str
) -> None:
    settings = sentinel_settings(kite_sim, redis_url)
    async with running_sentinel(settings) as rs:
        await eventually(lambda: rs.metric("tradealgo_token_valid") == 1)
        token = await text(rs.redis, c.ACCESS_TOKEN_KEY)
    counts = count_login_steps(kite_sim)
    started = time.monotonic()
    async with running_sentinel(settings) as rs:
        await eventually(lambda: rs.metric("tradealgo_token_valid") == 1, timeout=10)
        assert await text(rs.redis, c.ACCESS_TOKEN_KEY) == token
    assert counts == {"password": 0, "twofa": 0}
    assert time.monotonic() - started < 30


async def test_the_sentinel_notices_a_dead_token_by_itself_and_replaces_it(
    kite_sim: KiteSim, redis_url: str
) -> None:
    settings = sentinel_settings(kite_sim, redis_url, token_validate_interval_s=0.5)
    async with running_sentinel(settings) as rs:
        await eventually(lambda: rs.metric("tradealgo_token_valid") == 1)
        old = await text(rs.redis, c.ACCESS_TOKEN_KEY)
        await asyncio.to_thread(kite_sim.control.faults, expire_token=True)
        await eventually(lambda: rs.metric("tradealgo_logins_total", {"outcome": "success"}) == 2)
        new = await text(rs.redis, c.ACCESS_TOKEN_KEY)
        events = [(e.kind, e.token_fingerprint) for e in await session_events(rs.redis)]
    assert new != old
    assert ("EXPIRED", token_fingerprint(old)) in events  # announced before the new LOGIN
    assert events[-1] == ("LOGIN", token_fingerprint(new))
