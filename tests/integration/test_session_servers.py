"""The session fixtures really are Redis and ClickHouse 26.x."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from clickhouse_driver import Client

from shared.localservers import ClickHouseServer

pytestmark = pytest.mark.integration


async def test_redis_fixture_is_a_real_server_with_streams(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    await client.xgroup_create("s", "g", id="0", mkstream=True)
    await client.xadd("s", {"a": "1"})
    entries = await client.xreadgroup("g", "c", {"s": ">"}, count=10)
    assert entries[0][1][0][1] == {b"a": b"1"}
    await client.aclose()


def test_clickhouse_fixture_is_version_26_with_a_fresh_database(
    clickhouse_server: ClickHouseServer, clickhouse_db: str
) -> None:
    client = Client(
        host=clickhouse_server.host, port=clickhouse_server.port, database=clickhouse_db
    )
    version = client.execute("SELECT version()")[0][0]
    assert int(version.split(".")[0]) >= 26
    assert client.execute("SHOW TABLES") == []
    client.disconnect()
