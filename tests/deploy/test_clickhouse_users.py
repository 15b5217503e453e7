"""deploy/clickhouse/users.xml on a real ClickHouse 26.x (the chdb server the tests use).

The file is loaded as the server's users_config through a config.d override next to the
launcher's config.xml, with the passwords in the server's environment as docker compose sets them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException

from shared.localservers import ClickHouseServer
from tests.deploy.deploy_files import DEPLOY

pytestmark = pytest.mark.integration

SERVICES = ("sentinel", "producer", "consumer", "gatekeeper")
PASSWORDS = {user: f"{user}-Pw-7d1c" for user in (*SERVICES, "ops")}
ACCESS_DENIED = 497  # ClickHouse's ACCESS_DENIED error code
AUTHENTICATION_FAILED = 516


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    data = tmp_path_factory.mktemp("clickhouse-users")
    override = data / "run" / "config.d" / "users.xml"
    override.parent.mkdir(parents=True)
    users = (DEPLOY / "clickhouse" / "users.xml").resolve()
    override.write_text(f"<clickhouse><users_config>{users}</users_config></clickhouse>")
    with pytest.MonkeyPatch.context() as env:
        for user, password in PASSWORDS.items():
            env.setenv(f"CLICKHOUSE_PASSWORD_{user.upper()}", password)
        ch = ClickHouseServer(data).start()
    try:
        admin = Client(host=ch.host, port=ch.port)
        admin.execute("CREATE DATABASE IF NOT EXISTS tradealgo")  # the image's CLICKHOUSE_DB
        admin.execute("CREATE DATABASE IF NOT EXISTS elsewhere")
        admin.execute("CREATE TABLE elsewhere.t (x UInt8) ENGINE = MergeTree ORDER BY x")
        admin.disconnect()
        yield ch
    finally:
        ch.stop()


def as_user(server: ClickHouseServer, user: str, password: str | None = None) -> Client:
    return Client(
        host=server.host, port=server.port, user=user, password=password or PASSWORDS[user]
    )


def error_code(client: Client, query: str) -> int:
    with pytest.raises(ServerException) as info:
        client.execute(query)
    return int(info.value.code)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_creates_writes_reads_and_alters_its_own_tables(
    server: ClickHouseServer, service: str
) -> None:
    client = as_user(server, service)
    client.execute("CREATE DATABASE IF NOT EXISTS tradealgo")
    client.execute(
        f"CREATE TABLE IF NOT EXISTS tradealgo.{service}_t (x UInt32) ENGINE = MergeTree ORDER BY x"
    )
    client.execute(f"INSERT INTO tradealgo.{service}_t VALUES", [(1,), (2,)])
    client.execute(f"ALTER TABLE tradealgo.{service}_t ADD COLUMN IF NOT EXISTS y String")
    assert client.execute(f"SELECT count() FROM tradealgo.{service}_t") == [(2,)]
    client.disconnect()


@pytest.mark.parametrize(
    "query",
    [
        "DROP TABLE tradealgo.ops_owned",
        "TRUNCATE TABLE tradealgo.ops_owned",
        "DROP DATABASE tradealgo",
        "SELECT * FROM elsewhere.t",
        "CREATE DATABASE other",
        "CREATE USER intruder IDENTIFIED BY 'x'",
    ],
)
def test_a_service_cannot_drop_truncate_or_reach_other_databases(
    server: ClickHouseServer, query: str
) -> None:
    ops = as_user(server, "ops")
    ops.execute(
        "CREATE TABLE IF NOT EXISTS tradealgo.ops_owned (x UInt8) ENGINE = MergeTree ORDER BY x"
    )
    ops.disconnect()
    client = as_user(server, "gatekeeper")
    assert error_code(client, query) == ACCESS_DENIED
    client.disconnect()


def test_the_ops_user_owns_the_database_and_reads_system_tables(server: ClickHouseServer) -> None:
    ops = as_user(server, "ops")
    ops.execute("CREATE TABLE tradealgo.scratch (x UInt8) ENGINE = MergeTree ORDER BY x")
    ops.execute("DROP TABLE tradealgo.scratch")
    assert ops.execute("SELECT count() >= 0 FROM system.parts") == [(True,)]
    assert error_code(ops, "SELECT * FROM elsewhere.t") == ACCESS_DENIED
    ops.disconnect()


@pytest.mark.parametrize("user", [*SERVICES, "ops"])
def test_a_wrong_password_is_refused(server: ClickHouseServer, user: str) -> None:
    client = as_user(server, user, password="not-the-password")
    assert error_code(client, "SELECT 1") == AUTHENTICATION_FAILED
    client.disconnect()


def test_the_file_holds_no_password_literal() -> None:
    text = (DEPLOY / "clickhouse" / "users.xml").read_text()
    users = [f"<{user}>" for user in (*SERVICES, "ops")]
    assert all(tag in text for tag in users)
    assert text.count('from_env="CLICKHOUSE_PASSWORD_') == len(users)
    assert text.count("<password>") == 1 and "<password></password>" in text  # only default's


def test_the_server_override_is_well_formed_xml() -> None:
    import xml.etree.ElementTree as ET

    root = ET.parse(DEPLOY / "clickhouse" / "config.d" / "tradealgo.xml").getroot()
    assert root.tag == "clickhouse"
    assert root.find("backups/allowed_disk") is not None


def test_users_xml_is_the_one_the_compose_file_mounts() -> None:
    compose = (DEPLOY / "docker-compose.yml").read_text()
    assert "./clickhouse/users.xml:/etc/clickhouse-server/users.xml:ro" in compose
    assert (
        "./clickhouse/config.d/tradealgo.xml:/etc/clickhouse-server/config.d/tradealgo.xml:ro"
        in compose
    )
    assert Path(DEPLOY / "clickhouse" / "users.xml").is_file()
