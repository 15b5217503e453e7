"""ClickHouse connections (clickhouse-driver, synchronous: async code calls it via to_thread)."""

from __future__ import annotations

import logging
import re
from typing import Any

from clickhouse_driver import Client
from pydantic import SecretStr

from shared.settings import ServiceSettings

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def quote_identifier(name: str) -> str:
    """A table/column/database name, checked and backquoted for SQL text."""
    if not _IDENTIFIER.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return f"`{name}`"


def connect_clickhouse(
    host: str,
    port: int,
    database: str,
    user: str,
    password: SecretStr,
    *,
    create_database: bool = True,
    connect_timeout_s: float = 5.0,
    send_receive_timeout_s: float = 60.0,
    settings: dict[str, Any] | None = None,
) -> Client:
    """A client on `database`, created first when missing. The password is a SecretStr and is never
    logged. The client reconnects by itself on its next call after a network error."""
    quoted = quote_identifier(database)
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "user": user,
        "password": password.get_secret_value(),
        "connect_timeout": connect_timeout_s,
        "send_receive_timeout": send_receive_timeout_s,
        "settings": settings or {},
    }
    if create_database:
        bootstrap = Client(database="default", **common)
        try:
            bootstrap.execute(f"CREATE DATABASE IF NOT EXISTS {quoted}")
        finally:
            bootstrap.disconnect()
    logger.info("ClickHouse at %s:%s, database %s, user %s", host, port, database, user)
    return Client(database=database, **common)


def clickhouse_from_settings(settings: ServiceSettings, **kwargs: Any) -> Client:
    """`connect_clickhouse` with the shared clickhouse_* settings of a service."""
    return connect_clickhouse(
        settings.clickhouse_host,
        settings.clickhouse_port,
        settings.clickhouse_database,
        settings.clickhouse_user,
        settings.clickhouse_password,
        **kwargs,
    )
