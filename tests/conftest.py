"""Session-wide real servers: one Redis and one ClickHouse 26.x, started once, stopped always.

Servers start lazily (only when a test asks for them), on free loopback ports under a temporary
directory, as children that die with the test process even when it is killed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from clickhouse_driver import Client

from shared.localservers import ClickHouseServer, RedisServer

pytest_plugins: list[str] = []
# The simulator fixture lives with the simulator's tests. Look it up without importing it: an
# import here would stop pytest from rewriting its asserts (PytestAssertRewriteWarning = error).
if importlib.util.find_spec("tests.sim_fixtures") is not None:
    pytest_plugins.append("tests.sim_fixtures")


@pytest.fixture(scope="session")
def servers_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tradealgo-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(servers_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer(servers_dir / "redis").start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A real Redis, flushed before the test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="session")
def clickhouse_server(servers_dir: Path) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer(servers_dir / "clickhouse").start()
    yield server
    server.stop()


@pytest.fixture
def clickhouse_db(clickhouse_server: ClickHouseServer) -> Iterator[str]:
    """The name of a fresh, empty database on the real ClickHouse; dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    client = Client(host=clickhouse_server.host, port=clickhouse_server.port)
    client.execute(f"CREATE DATABASE {name}")
    yield name
    if clickhouse_server.pid is not None:
        client.execute(f"DROP DATABASE IF EXISTS {name} SYNC")
    client.disconnect()


@pytest.fixture(autouse=True)
async def _no_leftover_tasks() -> AsyncIterator[None]:
    """Fail a test that leaves asyncio tasks running."""
    yield
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    if leftover:
        for task in leftover:
            task.cancel()
        pytest.fail(f"test left {len(leftover)} asyncio task(s) running: {leftover!r}")
