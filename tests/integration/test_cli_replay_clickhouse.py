"""`tradealgo replay --from-clickhouse`: recorded minute candles become simulator data files."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from clickhouse_driver import Client

from services.cli.main import main
from services.cli.replay_cmd import available_days
from services.cli.replay_source import export_recorded_minutes
from services.simulator.market_data import read_bars_by_day
from services.simulator.settings import BUNDLED_DATA_DIR
from shared.clock import IST
from shared.localservers import ClickHouseServer
from shared.store import apply_migrations

pytestmark = pytest.mark.integration

DAILY = BUNDLED_DATA_DIR / "nifty50_index_1d_2007-01-02_2022-11-07.csv.gz"


@pytest.fixture
def recorded(clickhouse_server: ClickHouseServer, clickhouse_db: str) -> Iterator[Client]:
    client = Client(
        host=clickhouse_server.host, port=clickhouse_server.port, database=clickhouse_db
    )
    apply_migrations(client)
    rows = []
    for symbol, token, base in (
        ("NSE:NIFTY 50", 256265, 24000.0),
        ("NSE:NIFTY BANK", 260105, 50000.0),
    ):
        for day in (date(2024, 8, 7), date(2024, 8, 8)):
            for minute in range(375):
                start = datetime.combine(day, datetime.min.time(), IST) + timedelta(
                    hours=9, minutes=15 + minute
                )
                price = base + minute * 0.5
                rows.append(
                    (
                        token,
                        symbol,
                        "minute",
                        start,
                        start + timedelta(minutes=1),
                        price,
                        price + 2,
                        price - 2,
                        price + 1,
                        0,
                        60,
                        0,
                        "live",
                        0,
                    )
                )
        # a late revision of the first candle of 2024-08-08 (FINAL keeps it) and a 5minute candle
        first = datetime(2024, 8, 8, 9, 15, tzinfo=IST)
        rows.append(
            (
                token,
                symbol,
                "minute",
                first,
                first + timedelta(minutes=1),
                base,
                base + 9,
                base - 9,
                base + 5,
                0,
                61,
                1,
                "live",
                0,
            )
        )
        rows.append(
            (
                token,
                symbol,
                "5minute",
                first,
                first + timedelta(minutes=5),
                1.0,
                1.0,
                1.0,
                1.0,
                0,
                1,
                0,
                "live",
                0,
            )
        )
    client.execute(
        "INSERT INTO candles (instrument_token, symbol, timeframe, start, end, open, high, low, "
        "close, volume, tick_count, revision, source, last_tick_received_ns) VALUES",
        rows,
    )
    yield client
    client.disconnect()


def test_export_writes_every_recorded_minute_up_to_the_day_with_the_latest_revision(
    recorded: Client, tmp_path: Path
) -> None:
    exported = export_recorded_minutes(recorded, date(2024, 8, 8), tmp_path, DAILY)
    assert exported.rows == {"NSE:NIFTY 50": 750, "NSE:NIFTY BANK": 750}
    assert (tmp_path / DAILY.name).is_file()
    nifty = read_bars_by_day(tmp_path / exported.files["nifty_minute_file"])
    assert sorted(nifty) == [date(2024, 8, 7), date(2024, 8, 8)]
    first = nifty[date(2024, 8, 8)][0]
    assert (first.start, first.high, first.close) == (
        datetime(2024, 8, 8, 9, 15, tzinfo=IST),
        24009.0,
        24005.0,
    )
    days, _ = available_days(tmp_path, exported.files["nifty_minute_file"])
    assert days == {date(2024, 8, 7), date(2024, 8, 8)}


def test_export_stops_at_the_replayed_day(recorded: Client, tmp_path: Path) -> None:
    exported = export_recorded_minutes(recorded, date(2024, 8, 7), tmp_path, DAILY)
    assert exported.rows == {"NSE:NIFTY 50": 375, "NSE:NIFTY BANK": 375}


def test_replay_of_a_day_that_was_not_recorded_is_refused(
    recorded: Client,
    clickhouse_server: ClickHouseServer,
    clickhouse_db: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLI_CLICKHOUSE_PORT", str(clickhouse_server.port))
    monkeypatch.setenv("CLI_CLICKHOUSE_DATABASE", clickhouse_db)
    assert main(["replay", "--date", "2024-08-09", "--from-clickhouse"]) == 2
    out, err = capsys.readouterr()
    assert "exported recorded 1-minute candles up to 2024-08-09" in out
    assert "2024-08-09 is outside" in err and "covers 2024-08-07 to 2024-08-08" in err
