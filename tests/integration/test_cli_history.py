"""`tradealgo orders`, `signals`, `positions` (and status' positions) on the real schema."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_driver import Client

from services.cli.main import main
from shared.clock import IST, SystemClock
from shared.localservers import ClickHouseServer
from shared.store import apply_migrations
from tests.support import free_port

pytestmark = pytest.mark.integration

NOW = SystemClock().now().astimezone(IST).replace(microsecond=0)


@pytest.fixture
def tables(
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Client]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLI_CLICKHOUSE_PORT", str(clickhouse_server.port))
    monkeypatch.setenv("CLI_CLICKHOUSE_DATABASE", clickhouse_db)
    client = Client(
        host=clickhouse_server.host, port=clickhouse_server.port, database=clickhouse_db
    )
    apply_migrations(client)
    yield client
    client.disconnect()


def add_order(client: Client, order_id: str, status: str, version: int, at: datetime) -> None:
    client.execute(
        "INSERT INTO orders (order_id, intent_id, tag, mode, status, strategy, symbol, "
        "instrument_token, side, order_type, product, quantity, filled_quantity, price, "
        "average_price, reason, created_at, updated_at, version) VALUES",
        [(order_id, "i1", "t", "paper", status, "ema_crossover", "NFO:NIFTY24AUG24500CE", 1,
          "BUY", "LIMIT", "NRML", 25, 25 if status == "COMPLETE" else 0, 112.0,
          111.85 if status == "COMPLETE" else 0.0, "", at, at, version)],
    )  # fmt: skip


def add_signal(client: Client, signal_id: str, at: datetime) -> None:
    client.execute(
        "INSERT INTO trading_signals (signal_id, strategy, symbol, instrument_token, timeframe, "
        "action, price, confidence, candle_start, created_at, reason, last_tick_received_ns) "
        "VALUES",
        [(signal_id, "ema_crossover", "NSE:NIFTY 50", 256265, "15minute", "BUY", 24512.3, 0.7,
          at - timedelta(minutes=15), at, f"cross {signal_id}", 0)],
    )  # fmt: skip


def add_position(
    client: Client, position_id: str, symbol: str, quantity: int, version: int
) -> None:
    client.execute(
        "INSERT INTO positions (position_id, symbol, instrument_token, product, mode, strategy, "
        "quantity, average_price, last_price, realised_pnl, unrealised_pnl, opened_at, "
        "updated_at, status, version) VALUES",
        [(position_id, symbol, 1, "NRML", "paper", "s", quantity, 110.0, 104.0, 10.0, 150.0,
          NOW, NOW, "OPEN" if quantity else "CLOSED", version)],
    )  # fmt: skip


def test_orders_show_the_latest_version_of_each_order_newest_first(
    tables: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    add_order(tables, "o1", "SENT", 1, NOW - timedelta(minutes=5))
    add_order(tables, "o1", "COMPLETE", 2, NOW - timedelta(minutes=4))
    add_order(tables, "o2", "REJECTED", 1, NOW - timedelta(minutes=1))
    assert main(["orders"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["updated_at", "order_id", "mode", "status"]
    body = lines[2:]
    assert len(body) == 2
    assert "o2" in body[0] and "REJECTED" in body[0]
    assert "o1" in body[1] and "COMPLETE" in body[1] and "111.85" in body[1]


def test_signals_since_and_limit(tables: Client, capsys: pytest.CaptureFixture[str]) -> None:
    add_signal(tables, "old", NOW - timedelta(hours=3))
    for n in range(3):
        add_signal(tables, f"new{n}", NOW - timedelta(minutes=10 * n))
    assert main(["signals", "--since", "1h"]) == 0
    out = capsys.readouterr().out
    assert "cross new0" in out and "cross new2" in out and "cross old" not in out
    assert main(["signals", "--limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "cross new0" in out and "cross new1" in out and "cross new2" not in out
    assert "(newest 2 rows; --limit to see more)" in out


def test_positions_hide_closed_ones_unless_all(
    tables: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    add_position(tables, "p1", "NFO:NIFTY24AUG24500CE", -25, 1)
    add_position(tables, "p2", "NSE:RELIANCE", 10, 1)
    add_position(tables, "p2", "NSE:RELIANCE", 0, 2)  # closed since
    assert main(["positions"]) == 0
    out = capsys.readouterr().out
    assert "NFO:NIFTY24AUG24500CE" in out and "NSE:RELIANCE" not in out
    assert main(["positions", "--all"]) == 0
    assert "NSE:RELIANCE" in capsys.readouterr().out


def test_an_empty_table_says_none(tables: Client, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["orders"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "(none)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["orders", "--since", "yesterday"], "--since 'yesterday'"),
        (["signals", "--limit", "0"], "--limit must be at least 1"),
    ],
)
def test_bad_options_are_usage_errors(
    tables: Client, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_a_missing_table_and_an_unreachable_clickhouse(
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLI_CLICKHOUSE_PORT", str(clickhouse_server.port))
    monkeypatch.setenv("CLI_CLICKHOUSE_DATABASE", clickhouse_db)  # no schema applied
    assert main(["orders"]) == 1
    assert "table orders does not exist" in capsys.readouterr().err
    monkeypatch.setenv("CLI_CLICKHOUSE_PORT", str(free_port()))
    assert main(["orders"]) == 3
    assert "cannot query ClickHouse at 127.0.0.1:" in capsys.readouterr().err
