"""The trading-table queries and --since parsing (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.cli.history import (
    ORDERS,
    POSITIONS,
    SIGNALS,
    TableMissing,
    TableView,
    build_query,
    position_lines,
)
from services.cli.history_cmd import parse_since
from services.cli.replay_cmd import day_problem
from services.cli.replay_source import bars_csv
from services.cli.status_cmd import heartbeat_age
from services.cli.status_view import PositionLine
from shared.clock import IST

NOW = datetime(2024, 8, 20, 11, 0, tzinfo=IST)


@pytest.mark.parametrize(
    ("view", "present", "limit", "since", "sql"),
    [
        (
            ORDERS,
            ["order_id", "updated_at", "status", "symbol", "unrelated"],
            20,
            None,
            "SELECT updated_at, order_id, status, symbol FROM orders FINAL "
            "ORDER BY updated_at DESC LIMIT 20",
        ),
        (
            SIGNALS,
            ["signal_id", "created_at", "action", "symbol"],
            5,
            NOW,
            "SELECT created_at, action, symbol, signal_id FROM trading_signals FINAL "
            "WHERE created_at >= fromUnixTimestamp64Micro(%(since_us)s) "
            "ORDER BY created_at DESC LIMIT 5",
        ),
        (
            POSITIONS,
            ["symbol", "quantity", "opened_at", "average_price"],
            100,
            None,
            "SELECT symbol, quantity, average_price FROM positions FINAL "
            "ORDER BY opened_at DESC LIMIT 100",
        ),
        (
            TableView("t", ("a",), ("ts",)),
            ["a"],
            3,
            None,
            "SELECT a FROM t LIMIT 3",
        ),
        (
            TableView("p", ("sym", "qty"), ("ts",), latest_by=("sym",)),
            ["sym", "qty", "ts"],
            7,
            None,
            "SELECT sym, qty FROM p ORDER BY ts DESC LIMIT 1 BY sym LIMIT 7",
        ),
    ],
)
def test_build_query_selects_the_columns_the_table_has(
    view: TableView, present: list[str], limit: int, since: datetime | None, sql: str
) -> None:
    query = build_query(view, present, limit, since)
    assert query.sql == sql
    expected = {} if since is None else {"since_us": round(since.timestamp() * 1_000_000)}
    assert query.params == expected


@pytest.mark.parametrize(
    ("view", "present", "since"),
    [(ORDERS, ["nothing", "useful"], None), (TableView("t", ("a",), ("ts",)), ["a"], NOW)],
)
def test_build_query_refuses_a_table_it_cannot_show(
    view: TableView, present: list[str], since: datetime | None
) -> None:
    with pytest.raises(TableMissing):
        build_query(view, present, 10, since)


def test_position_lines_keep_open_positions_and_add_up_pnl_parts() -> None:
    columns = (
        "symbol",
        "quantity",
        "average_price",
        "last_price",
        "realised_pnl",
        "unrealised_pnl",
    )
    rows = [
        ("NFO:A", -25, 110.0, 104.0, 10.0, 150.0),
        ("NSE:B", 0, 50.0, 51.0, 20.0, 0.0),
        ("NSE:C", 10, 100.0, None, None, None),
    ]
    assert position_lines(columns, rows) == [
        PositionLine("NFO:A", -25, 110.0, 104.0, 160.0),
        PositionLine("NSE:C", 10, 100.0, None, None),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", NOW - timedelta(minutes=30)),
        ("2h", NOW - timedelta(hours=2)),
        ("1d", NOW - timedelta(days=1)),
        ("45s", NOW - timedelta(seconds=45)),
        ("today", datetime(2024, 8, 20, tzinfo=IST)),
        ("2024-08-19", datetime(2024, 8, 19, tzinfo=IST)),
        ("2024-08-19T10:15", datetime(2024, 8, 19, 10, 15, tzinfo=IST)),
        ("2024-08-19T04:45:00+00:00", datetime(2024, 8, 19, 10, 15, tzinfo=IST)),
    ],
)
def test_parse_since(text: str, expected: datetime) -> None:
    assert parse_since(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "5 weeks", "10x"])
def test_parse_since_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(text, NOW)


DAYS = {date(2024, 1, 1), date(2024, 1, 2), date(2024, 8, 23)}


@pytest.mark.parametrize(
    ("day", "problem"),
    [
        (date(2024, 1, 2), None),
        (date(2024, 3, 5), "2024-03-05 is not in data.csv.gz: not a trading day, or missing"),
        (
            date(2023, 12, 29),
            "2023-12-29 is outside data.csv.gz, which covers 2024-01-01 to 2024-08-23",
        ),
    ],
)
def test_replay_day_problem(day: date, problem: str | None) -> None:
    found = day_problem(day, DAYS, "data.csv.gz")
    assert found == problem if problem is None else (found or "").startswith(problem)


@pytest.mark.parametrize(
    ("raw", "age"),
    [
        (None, None),
        (b"2024-08-20T10:59:50+05:30", 10.0),
        (str(NOW.timestamp() - 4).encode(), 4.0),
        (b'{"ts": "2024-08-20T10:59:30+05:30", "mode": "paper"}', 30.0),
        (b"garbage", None),
        (b"2024-08-20T11:00:05+05:30", 0.0),  # a little ahead: clocks differ slightly
        (b"2024-08-20T11:05:00+05:30", None),  # far ahead: another clock
        (b"2024-08-08T11:00:00+05:30", None),  # a replay's market time, days behind
    ],
)
def test_heartbeat_age(raw: bytes | None, age: float | None) -> None:
    assert heartbeat_age(raw, NOW) == age


@pytest.mark.parametrize(
    ("rows", "csv"),
    [
        ([], "timestamp,open,high,low,close,volume\n"),
        (
            [(datetime(2024, 8, 8, 3, 45, tzinfo=UTC), 24000.5, 24001.0, 23999.95, 24000.0, 0)],
            "timestamp,open,high,low,close,volume\n"
            "2024-08-08T09:15:00+05:30,24000.5,24001.0,23999.95,24000.0,0\n",
        ),
    ],
)
def test_recorded_candles_become_the_simulators_csv_in_ist(
    rows: list[tuple[object, ...]], csv: str
) -> None:
    assert bars_csv(rows) == csv
