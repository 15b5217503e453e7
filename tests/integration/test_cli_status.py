"""`tradealgo status` against a real Redis, real service endpoints and a real ClickHouse."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from prometheus_client import CollectorRegistry, Gauge

from services.cli.main import main
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.sentinel.checks import CHECK_NAMES
from shared import constants as c
from shared.clock import SystemClock
from shared.health import HealthServer, serve_health
from shared.localservers import ClickHouseServer
from tests.support import free_port

pytestmark = pytest.mark.integration


def gatekeeper_registry(mode: str, mtm: float) -> CollectorRegistry:
    registry = CollectorRegistry()
    pnl = Gauge("tradealgo_pnl_rupees", "P&L", ["kind"], registry=registry)
    pnl.labels("realised").set(100.0)
    pnl.labels("mtm").set(mtm)
    Gauge("tradealgo_gatekeeper_mode", "mode", ["mode"], registry=registry).labels(mode).set(1)
    return registry


@pytest.fixture
async def endpoints() -> AsyncIterator[Callable[..., Any]]:
    started: list[HealthServer] = []

    async def start(registry: CollectorRegistry, ready: tuple[bool, str] = (True, "ready")) -> str:
        server = await serve_health(registry, "127.0.0.1", 0, lambda: ready)
        started.append(server)
        return f"http://127.0.0.1:{server.port}"

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
def cli_env(
    redis_url: str,
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLI_REDIS_URL", redis_url)
    monkeypatch.setenv("CLI_CLICKHOUSE_PORT", str(clickhouse_server.port))
    monkeypatch.setenv("CLI_CLICKHOUSE_DATABASE", clickhouse_db)
    monkeypatch.setenv("CLI_HTTP_TIMEOUT_S", "1")
    for name in ("sentinel", "producer", "consumer", "gatekeeper"):
        monkeypatch.setenv(f"CLI_{name.upper()}_URL", f"http://127.0.0.1:{free_port()}")
    return redis.Redis.from_url(redis_url, decode_responses=True)


def healthy_session(client: Any) -> None:
    now = SystemClock().now()
    client.set(c.ACCESS_TOKEN_KEY, "not-a-real-token", ex=3600)
    client.hset(
        c.SESSION_INFO_KEY,
        mapping={
            "user_id": "SIM001",
            "login_time": (now - timedelta(hours=1)).isoformat(),
            "expires_at": (now + timedelta(hours=5)).isoformat(),
            "fingerprint": "1a2b3c4d",
        },
    )
    client.hset(c.CHECKS_KEY, mapping=dict.fromkeys(CHECK_NAMES, "ok"))
    client.hset(c.HALT_KEY, mapping={"halted": "0", "reasons": "[]", "source": "sentinel"})
    for name in ("sentinel", "producer", "consumer", "gatekeeper"):
        client.set(c.HEARTBEAT_KEY.format(service=name), now.isoformat(), ex=60)


async def test_status_exits_0_and_says_all_good_when_everything_is_up(
    cli_env: Any,
    endpoints: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    healthy_session(cli_env)
    for name in ("sentinel", "producer", "consumer"):
        monkeypatch.setenv(f"CLI_{name.upper()}_URL", await endpoints(CollectorRegistry()))
    monkeypatch.setenv("CLI_GATEKEEPER_URL", await endpoints(gatekeeper_registry("paper", 42.5)))
    code = await asyncio.to_thread(main, ["status"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "SIM001, token 1a2b3c4d: valid" in out
    assert "mode: paper" in out
    assert "realised +100.00, mtm +42.50" in out
    assert "All good" in out


async def test_status_exits_1_and_names_each_problem(
    cli_env: Any,
    endpoints: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    healthy_session(cli_env)
    cli_env.delete(c.ACCESS_TOKEN_KEY)
    tripped = KillSwitchState(tripped=True, reason="loss 2.00 % of capital")
    cli_env.hset(c.KILL_SWITCH_KEY, mapping=tripped.to_fields())
    monkeypatch.setenv("CLI_SENTINEL_URL", await endpoints(CollectorRegistry()))
    monkeypatch.setenv(
        "CLI_PRODUCER_URL",
        await endpoints(CollectorRegistry(), (False, "halted: token: expired")),
    )
    # consumer and gatekeeper: nothing listens on their URLs
    code = await asyncio.to_thread(main, ["status"])
    out = capsys.readouterr().out
    assert code == 1
    attention = out.split("Attention", 1)[1]
    assert "producer is not ready: halted: token: expired" in attention
    assert "consumer is down (no answer from" in attention
    assert "gatekeeper is down" in attention
    assert "no Kite access token: run `tradealgo login`" in attention
    assert "kill switch TRIPPED: loss 2.00 % of capital" in attention
    assert "mode: unknown (Gatekeeper unreachable)" in out


async def test_status_json_is_machine_readable(
    cli_env: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    healthy_session(cli_env)
    code = await asyncio.to_thread(main, ["status", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1  # no service answers
    assert doc["session"]["user_id"] == "SIM001"
    assert doc["halt"]["halted"] is False
    assert {s["name"] for s in doc["services"]} == {
        "sentinel",
        "producer",
        "consumer",
        "gatekeeper",
    }
    assert any("sentinel is down" in p for p in doc["problems"])
