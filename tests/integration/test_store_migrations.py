"""Migrations and the schema on the real ClickHouse 26.x."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException
from pydantic import SecretStr

from shared.localservers import ClickHouseServer
from shared.store import MigrationError, apply_migrations, connect_clickhouse
from shared.store.migrations import schema_dir

pytestmark = pytest.mark.integration

TABLES = {
    "ticks": "producer",
    "candles": "consumer",
    "historical_data": "consumer",
    "instruments": "sentinel",
    "options_data": "gatekeeper",
    "trading_signals": "consumer",
    "order_intents": "consumer",
    "orders": "gatekeeper",
    "order_events": "gatekeeper",
    "positions": "gatekeeper",
    "risk_events": "gatekeeper",
    "sessions": "sentinel",
    "performance_metrics": "every service",
    "dead_letters": "every service",
}


@pytest.fixture
def client(clickhouse_server: ClickHouseServer, clickhouse_db: str) -> Iterator[Client]:
    client = connect_clickhouse(
        clickhouse_server.host, clickhouse_server.port, clickhouse_db, "default", SecretStr("")
    )
    yield client
    client.disconnect()


def test_migrations_create_every_table_once_and_a_second_run_applies_nothing(
    client: Client, clickhouse_db: str
) -> None:
    first = apply_migrations(client)
    assert [(m.version, m.name) for m in first] == [(1, "initial")]
    assert apply_migrations(client) == []
    rows = client.execute(
        "SELECT name, comment FROM system.tables WHERE database = %(db)s", {"db": clickhouse_db}
    )
    comments = dict(rows)
    assert set(comments) == {*TABLES, "schema_migrations"}
    for table, owner in TABLES.items():
        assert comments[table].startswith(f"owner: {owner}"), table
    recorded = client.execute("SELECT version, name, checksum FROM schema_migrations")
    assert recorded == [(1, "initial", first[0].checksum)]


def test_a_migration_interrupted_half_way_is_completed_by_the_next_run(
    client: Client, tmp_path: Path
) -> None:
    shutil.copy(Path(str(schema_dir() / "001_initial.sql")), tmp_path / "001_initial.sql")
    client.execute("CREATE TABLE ticks (x UInt8) ENGINE = Memory")  # as if 001 died mid-way
    assert [m.version for m in apply_migrations(client, tmp_path)] == [1]
    assert ("candles",) in client.execute("SHOW TABLES")


def test_an_edited_applied_migration_stops_the_start_up(client: Client, tmp_path: Path) -> None:
    (tmp_path / "001_first.sql").write_text(
        "CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = Memory;\n"
    )
    apply_migrations(client, tmp_path)
    (tmp_path / "001_first.sql").write_text(
        "CREATE TABLE IF NOT EXISTS a (x UInt16) ENGINE = Memory;\n"
    )
    (tmp_path / "002_second.sql").write_text(
        "CREATE TABLE IF NOT EXISTS b (x UInt8) ENGINE = Memory;\n"
    )
    with pytest.raises(MigrationError, match="001_first changed after it was applied"):
        apply_migrations(client, tmp_path)
    assert ("b",) not in client.execute("SHOW TABLES")  # nothing after the error ran


def test_later_migrations_apply_in_version_order(client: Client, tmp_path: Path) -> None:
    (tmp_path / "001_a.sql").write_text(
        "CREATE TABLE IF NOT EXISTS a (x UInt8) ENGINE = MergeTree ORDER BY x;\n"
    )
    apply_migrations(client, tmp_path)
    (tmp_path / "003_c.sql").write_text("ALTER TABLE a ADD COLUMN IF NOT EXISTS z UInt8;\n")
    (tmp_path / "002_b.sql").write_text(
        "ALTER TABLE a ADD COLUMN IF NOT EXISTS y UInt8;\n"
        "ALTER TABLE a ADD COLUMN IF NOT EXISTS w UInt8 AFTER y;\n"
    )
    assert [m.version for m in apply_migrations(client, tmp_path)] == [2, 3]
    columns = [r[0] for r in client.execute("DESCRIBE TABLE a")]
    assert columns == ["x", "y", "w", "z"]


def test_connect_creates_a_missing_database(clickhouse_server: ClickHouseServer) -> None:
    name = f"fresh_{uuid.uuid4().hex[:10]}"
    client = connect_clickhouse(
        clickhouse_server.host, clickhouse_server.port, name, "default", SecretStr("")
    )
    try:
        assert client.execute("SELECT currentDatabase()") == [(name,)]
    finally:
        client.execute(f"DROP DATABASE {name}")
        client.disconnect()


def test_connect_refuses_a_database_name_that_is_not_an_identifier(
    clickhouse_server: ClickHouseServer,
) -> None:
    with pytest.raises(ValueError, match="not a plain identifier"):
        connect_clickhouse(
            clickhouse_server.host, clickhouse_server.port, "x; DROP", "default", SecretStr("")
        )


def test_a_failed_login_shows_the_password_neither_in_logs_nor_in_the_error(
    clickhouse_server: ClickHouseServer, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-Pa55word-never-shown"
    caplog.set_level("DEBUG")
    with pytest.raises(ServerException) as failure:
        connect_clickhouse(
            clickhouse_server.host, clickhouse_server.port, "x", "default", SecretStr(secret)
        )
    assert failure.value.code == 516  # AUTHENTICATION_FAILED
    assert secret not in str(failure.value)
    assert secret not in repr(failure.value)
    assert secret not in caplog.text
