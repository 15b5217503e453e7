"""The per-service /metrics, /healthz and /ready endpoint on a loopback port."""

from __future__ import annotations

import socket

import aiohttp
import pytest
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry

from shared.health import HealthServer, serve_health
from shared.metrics import BaseMetrics


async def get(port: int, path: str) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}{path}") as resp,
    ):
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


@pytest.mark.parametrize(
    ("ready", "status", "body"),
    [
        ((True, ""), 200, "ready"),
        ((True, "whatever"), 200, "ready"),
        ((False, "halted: pre-market checks failing: token invalid"), 503,
         "halted: pre-market checks failing: token invalid"),
        ((False, ""), 503, "not ready"),
    ],
)  # fmt: skip
async def test_ready_answers_200_or_503_with_the_reason(
    ready: tuple[bool, str], status: int, body: str
) -> None:
    server = await serve_health(CollectorRegistry(), "127.0.0.1", 0, lambda: ready)
    try:
        assert await get(server.port, "/ready") == (status, "text/plain; charset=utf-8", body)
    finally:
        await server.stop()


async def test_ready_that_raises_is_not_ready() -> None:
    def broken() -> tuple[bool, str]:
        raise KeyError("halt")

    server = await serve_health(CollectorRegistry(), "127.0.0.1", 0, broken)
    try:
        status, _, body = await get(server.port, "/ready")
    finally:
        await server.stop()
    assert (status, body) == (503, "readiness check failed: KeyError")


async def test_ready_follows_state_changes_between_requests() -> None:
    state = {"halted": ""}
    server = await serve_health(
        CollectorRegistry(), "127.0.0.1", 0, lambda: (not state["halted"], state["halted"])
    )
    try:
        assert (await get(server.port, "/ready"))[0] == 200
        state["halted"] = "halted: kill switch tripped"
        assert (await get(server.port, "/ready"))[::2] == (503, "halted: kill switch tripped")
    finally:
        await server.stop()


async def test_metrics_serves_prometheus_text_from_the_given_registry() -> None:
    registry = CollectorRegistry()
    BaseMetrics(registry, "consumer").consumed("ta:ticks:1", 7)
    server = await serve_health(registry, "127.0.0.1", 0, lambda: (True, ""))
    try:
        status, content_type, body = await get(server.port, "/metrics")
    finally:
        await server.stop()
    assert status == 200
    assert content_type == CONTENT_TYPE_LATEST
    assert 'tradealgo_messages_consumed_total{service="consumer",stream="ta:ticks:1"} 7.0' in body
    assert "python_gc" not in body  # only the injected registry, not the global one


async def test_healthz_is_alive_even_when_not_ready() -> None:
    server = await serve_health(CollectorRegistry(), "127.0.0.1", 0, lambda: (False, "halted"))
    try:
        assert (await get(server.port, "/healthz"))[::2] == (200, "ok")
    finally:
        await server.stop()


async def test_a_taken_port_fails_to_start_and_stop_frees_the_port() -> None:
    server = await serve_health(CollectorRegistry(), "127.0.0.1", 0, lambda: (True, ""))
    port = server.port
    assert port > 0
    with pytest.raises(OSError):
        await serve_health(CollectorRegistry(), "127.0.0.1", port, lambda: (True, ""))
    await server.stop()
    await server.stop()  # idempotent
    again = HealthServer(CollectorRegistry(), "127.0.0.1", port, lambda: (True, ""))
    assert await again.start() == port
    await again.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
