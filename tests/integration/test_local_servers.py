"""The server launchers: busy port, locked data dir, graceful stop, data kept across restarts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis
from clickhouse_driver import Client

from shared.localservers import ClickHouseServer, RedisServer, ServerError

pytestmark = pytest.mark.integration


def _count(server: ClickHouseServer) -> int:
    client = Client(host=server.host, port=server.port)
    try:
        return int(client.execute("SELECT count() FROM kept.t")[0][0])
    finally:
        client.disconnect()


def test_clickhouse_keeps_data_across_graceful_restart_and_kill_9(tmp_path: Path) -> None:
    server = ClickHouseServer(tmp_path / "ch").start()
    try:
        client = Client(host=server.host, port=server.port)
        client.execute("CREATE DATABASE kept")
        client.execute("CREATE TABLE kept.t (x UInt32) ENGINE = MergeTree ORDER BY x")
        client.execute("INSERT INTO kept.t VALUES", [(1,), (2,), (3,)])
        client.disconnect()
        assert server.stop() == 0, "SIGTERM must stop ClickHouse cleanly with exit code 0"
        server.start()
        assert _count(server) == 3
        server.kill()
        server.start()
        assert _count(server) == 3
    finally:
        server.stop()


def test_clickhouse_on_a_locked_data_dir_fails_with_a_clear_error(tmp_path: Path) -> None:
    first = ClickHouseServer(tmp_path / "ch").start()
    try:
        with pytest.raises(ServerError, match="lock"):
            ClickHouseServer(tmp_path / "ch").start(timeout=30)
    finally:
        first.stop()


def test_clickhouse_on_a_busy_port_fails_instead_of_trusting_another_listener(
    tmp_path: Path,
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(ServerError, match=r"in use|before listening"):
            ClickHouseServer(tmp_path / "ch", port=port).start(timeout=30)


def test_redis_on_a_busy_port_fails_with_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(ServerError, match=f"port {port}"):
            RedisServer(tmp_path / "r", port=port).start(timeout=10)


def test_persistent_redis_keeps_data_across_kill_9_and_stops_gracefully(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "r", persist=True).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.xadd("s", {"k": "v"})
        client.close()
        server.kill()
        server.start()
        client = redis.Redis.from_url(server.url)
        assert client.xlen("s") == 1
        client.close()
    finally:
        assert server.stop() == 0
