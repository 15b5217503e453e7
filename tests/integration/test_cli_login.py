"""`tradealgo login` through the Sentinel's login flow against the Kite simulator and a real Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from clickhouse_driver import Client

from services.cli.main import main
from shared import constants as c
from shared.bus import decode_entry
from shared.localservers import ClickHouseServer
from shared.messages import SessionEvent
from shared.session import token_fingerprint
from tests.sim_fixtures import KiteSim

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinel_env(
    kite_sim: KiteSim,
    redis_url: str,
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Any:
    monkeypatch.chdir(tmp_path)
    values = {
        "SENTINEL_API_KEY": kite_sim.api_key,
        "SENTINEL_API_SECRET": kite_sim.api_secret,
        "SENTINEL_USER_ID": kite_sim.user_id,
        "SENTINEL_PASSWORD": kite_sim.password,
        "SENTINEL_TOTP_SECRET": kite_sim.totp_secret,
        "SENTINEL_API_ROOT": kite_sim.rest_root,
        "SENTINEL_LOGIN_ROOT": kite_sim.rest_root,
        "SENTINEL_REDIS_URL": redis_url,
        "SENTINEL_CLICKHOUSE_PORT": str(clickhouse_server.port),
        "SENTINEL_CLICKHOUSE_DATABASE": clickhouse_db,
        "SENTINEL_LOGIN_NETWORK_ATTEMPTS": "1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def login_events(client: Any) -> list[SessionEvent]:
    found = [decode_entry(c.SESSION_EVENTS, f) for _, f in client.xrange(c.SESSION_EVENTS)]
    return [e for e in found if isinstance(e, SessionEvent) and e.kind == "LOGIN"]


def test_automated_login_distributes_the_token_audits_it_and_never_prints_it(
    sentinel_env: Any,
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["login"]) == 0
    out, err = capsys.readouterr()
    token = sentinel_env.get(c.ACCESS_TOKEN_KEY).decode()
    assert token and token not in out + err
    assert f"logged in as SIM001: token {token_fingerprint(token)}" in out
    ch = Client(host=clickhouse_server.host, port=clickhouse_server.port, database=clickhouse_db)
    rows = ch.execute("SELECT user_id, outcome, method, token_fingerprint FROM sessions")
    ch.disconnect()
    assert rows == [("SIM001", "success", "cli", token_fingerprint(token))]
    assert sentinel_env.ttl(c.ACCESS_TOKEN_KEY) > 0
    assert sentinel_env.hget(c.SESSION_INFO_KEY, "method") == b"cli"
    [event] = login_events(sentinel_env)
    assert event.token_fingerprint == token_fingerprint(token)


def test_manual_login_with_a_pasted_request_token(
    sentinel_env: Any, kite_sim: KiteSim, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--request-token", kite_sim.request_token()]) == 0
    assert "logged in as SIM001" in capsys.readouterr().out
    assert sentinel_env.exists(c.ACCESS_TOKEN_KEY)


@pytest.mark.parametrize(
    ("variable", "value", "args", "outcome"),
    [
        ("SENTINEL_PASSWORD", "wrong-password", ["login"], "bad_credentials"),
        ("SENTINEL_API_KEY", "sim_api_key", ["login", "--request-token", "made-up"], "bad_request_token"),
    ],
)  # fmt: skip
def test_a_failed_login_exits_1_with_the_outcome_and_stores_nothing(
    sentinel_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    args: list[str],
    outcome: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main(args) == 1
    assert f"login failed ({outcome})" in capsys.readouterr().err
    assert not sentinel_env.exists(c.ACCESS_TOKEN_KEY)
    assert login_events(sentinel_env) == []


def test_url_prints_the_login_page_for_the_manual_way(
    sentinel_env: Any, kite_sim: KiteSim, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--url"]) == 0
    out = capsys.readouterr().out
    assert f"{kite_sim.rest_root}/connect/login?v=3&api_key={kite_sim.api_key}" in out
