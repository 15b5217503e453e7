"""`python -m services.consumer` as a process: /ready with its reason, every Consumer metric of
deploy/metrics.txt in a real scrape, HALT in readiness, and a clean stop on SIGTERM that gives
the partitions back."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from shared import constants as c
from shared.bus import StreamBus, redis_client
from shared.messages import Control
from tests.support import eventually, free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def consumer_metric_names() -> list[str]:
    names = []
    for line in (ROOT / "deploy/metrics.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#") and "consumer" in parts[2].split(","):
            names.append(parts[0] + ("_bucket" if parts[1] == "histogram" else ""))
    return names


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    try:
        async with session.get(url) as response:
            return response.status, await response.text()
    except aiohttp.ClientError:
        return 0, ""


async def test_the_process_serves_readiness_and_metrics_and_stops_cleanly_on_sigterm(
    redis_url: str, clickhouse_server: Any, clickhouse_db: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CONSUMER_REDIS_URL": redis_url,
        "CONSUMER_CLICKHOUSE_HOST": clickhouse_server.host,
        "CONSUMER_CLICKHOUSE_PORT": str(clickhouse_server.port),
        "CONSUMER_CLICKHOUSE_DATABASE": clickhouse_db,
        "CONSUMER_SPOOL_DIR": str(tmp_path / "spool"),
        "CONSUMER_METRICS_PORT": str(port),
        "CONSUMER_REPLICA_NAME": "solo",
        "CONSUMER_TICK_PARTITIONS": "4",
        "CONSUMER_LEASE_RENEW_S": "0.3",
        "CONSUMER_SAMPLE_INTERVAL_S": "0.3",
        "CONSUMER_LOG_JSON": "true",
        "PYTHONPATH": str(ROOT),  # run from an empty directory: no .env in the way
    }
    names = consumer_metric_names()
    assert "tradealgo_partitions_owned" in names and len(names) >= 15
    log = (tmp_path / "consumer.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "services.consumer", cwd=tmp_path, env=env, stdout=log, stderr=log
    )
    redis = redis_client(redis_url)
    root = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            ready = await eventually(lambda: _ready(http, root), 30, message="ready")
            assert ready == (200, "ready")  # the health server answers "ready" when ready
            pending = 'tradealgo_stream_pending{group="consumer",stream="ta:ticks:0"}'
            # Stream gauges are sampled every CONSUMER_SAMPLE_INTERVAL_S: wait for one sample.
            scrape = str(await eventually(lambda: _scrape_with(http, root, pending), 10))
            missing = [n for n in names if f"\n{n}" not in scrape and f"\n{n}{{" not in scrape]
            assert missing == []
            bus = StreamBus(redis, service="test", maxlen=100)
            await bus.publish(c.CONTROL, Control(command="HALT", reason="token: expired",
                                                 source="sentinel", ts=datetime.now(UTC)))  # fmt: skip
            halted = await eventually(lambda: _status(http, root, 503), 10)
            assert "halted by sentinel: token: expired" in str(halted)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
    leases = await redis.mget([c.PARTITION_LEASE_KEY.format(p=p) for p in range(4)])
    assert leases == [None] * 4  # given back at once, not left to lapse
    assert await redis.zscore(c.CONSUMER_REPLICAS_KEY, "solo") is None
    await redis.aclose()
    text = (tmp_path / "consumer.log").read_text()
    assert '"message": "released the lease of tick partition 3: True"' in text


async def _ready(http: aiohttp.ClientSession, root: str) -> tuple[int, str] | None:
    status, body = await get(http, f"{root}/ready")
    return (status, body) if status == 200 else None


async def _status(http: aiohttp.ClientSession, root: str, want: int) -> tuple[int, str] | None:
    status, body = await get(http, f"{root}/ready")
    return (status, body) if status == want else None


async def _scrape_with(http: aiohttp.ClientSession, root: str, needle: str) -> str | None:
    status, body = await get(http, f"{root}/metrics")
    return body if status == 200 and needle in body else None
