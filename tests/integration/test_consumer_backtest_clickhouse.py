"""`tradealgo backtest --symbol ... --from --to`: bars from ClickHouse history run the same
strategy classes as a CSV file, and give the same report for the same bars."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from services.consumer.backtest.bars import CsvBarSource, build_candles
from services.consumer.backtest.cli import main
from services.consumer.buckets import data_sessions
from services.consumer.history_rows import historical_data_row
from shared.calendar import load_calendar
from shared.clock import IST
from shared.messages import Candle
from shared.store import MESSAGE_TABLES, apply_migrations
from tests.integration.consumer_harness import NIFTY, NIFTY_FILE, NIFTY_TOKEN, clickhouse_client

pytestmark = pytest.mark.integration

FIRST, LAST = date(2024, 8, 19), date(2024, 8, 20)


def minute_candles() -> list[Candle]:
    source = CsvBarSource(NIFTY_FILE, NIFTY, NIFTY_TOKEN, start_date=FIRST, end_date=LAST)
    return build_candles(source, "minute", data_sessions(load_calendar())).candles


@pytest.fixture
def history_in_clickhouse(
    clickhouse_server: Any, clickhouse_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env in the way
    monkeypatch.setenv("CONSUMER_CLICKHOUSE_HOST", clickhouse_server.host)
    monkeypatch.setenv("CONSUMER_CLICKHOUSE_PORT", str(clickhouse_server.port))
    monkeypatch.setenv("CONSUMER_CLICKHOUSE_DATABASE", clickhouse_db)
    candles = minute_candles()
    live = [c for c in candles if c.start.astimezone(IST).date() == FIRST]  # built live
    cached = [c for c in candles if c.start.astimezone(IST).hour < 12 or c in live[:30]]
    client = clickhouse_client(clickhouse_server, clickhouse_db)
    try:
        apply_migrations(client)
        spec = MESSAGE_TABLES[Candle]
        client.execute(f"INSERT INTO candles ({', '.join(spec.columns)}) VALUES",
                       [tuple(spec.row(c)[k] for k in spec.columns) for c in live])  # fmt: skip
        rows = [historical_data_row(c, datetime(2024, 8, 21, tzinfo=IST)) for c in cached]
        client.execute(f"INSERT INTO historical_data ({', '.join(rows[0])}) VALUES",
                       [tuple(r.values()) for r in rows])  # fmt: skip
        # 2024-08-20 afternoon is in neither table: the report must say the data stop at noon.
    finally:
        client.disconnect()


def run(out: Path, *source: str) -> dict[str, Any]:
    args = ["--strategy", "ema_crossover", "--timeframe", "5minute", "--quiet", "--out", str(out)]
    assert main([*args, *source, "--from", FIRST.isoformat(), "--to", LAST.isoformat()]) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


@pytest.mark.usefixtures("history_in_clickhouse")
def test_a_backtest_from_clickhouse_equals_one_from_the_same_bars_in_a_file(
    tmp_path: Path,
) -> None:
    from_db = run(tmp_path / "db", "--symbol", NIFTY)
    noon = [c for c in minute_candles() if c.start.astimezone(IST).date() == FIRST
            or c.start.astimezone(IST).hour < 12]  # fmt: skip
    csv = tmp_path / "bars.csv"
    csv.write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{c.start.isoformat()},{c.open},{c.high},{c.low},{c.close},{c.volume}\n" for c in noon
    ))  # fmt: skip
    from_file = run(tmp_path / "file", "--data", str(csv), "--instrument", NIFTY)
    assert (tmp_path / "db/signals.csv").read_text() == (tmp_path / "file/signals.csv").read_text()
    assert (tmp_path / "db/trades.csv").read_text() == (tmp_path / "file/trades.csv").read_text()
    assert from_db == from_file
    assert from_db["signals"] > 0 and from_db["candles"] == 75 + 33


@pytest.mark.usefixtures("history_in_clickhouse")
@pytest.mark.parametrize(
    ("symbol", "dates", "message"),
    [
        ("NSE:INFY", ("2024-08-19", "2024-08-20"), "no such instrument"),
        (NIFTY, ("2024-06-03", "2024-06-04"), "no 1-minute candles"),
        (NIFTY, ("2024-08-20", "2024-08-19"), "before --from"),
    ],
)
def test_a_symbol_or_range_without_history_exits_2_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], symbol: str, dates: tuple[str, str],
    message: str,
) -> None:  # fmt: skip
    args = ["--strategy", "ema_crossover", "--symbol", symbol, "--from", dates[0], "--to",
            dates[1], "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert main(args) == 2
    assert message in capsys.readouterr().err
