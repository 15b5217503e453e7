"""Every message table's row mapping matches the real schema, and rows read back as written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client
from pydantic import SecretStr

from shared.bus import DeadLetter, DeadLetterKind, dead_letter_row
from shared.clock import IST, ManualClock
from shared.localservers import ClickHouseServer
from shared.messages import (
    Candle,
    DepthLevel,
    Message,
    OrderEvent,
    OrderIntent,
    RiskEvent,
    Signal,
    Tick,
)
from shared.store import (
    DEAD_LETTER_COLUMNS,
    MESSAGE_TABLES,
    BatchWriter,
    ClickHouseInserter,
    Spool,
    apply_migrations,
    connect_clickhouse,
)

pytestmark = pytest.mark.integration

TS = datetime(2024, 8, 1, 9, 15, 0, 123456, tzinfo=IST)

SAMPLES: list[Message] = [
    Tick(
        instrument_token=12_345_678,
        symbol="NFO:NIFTY24AUG24500CE",
        last_price=145.35,
        exchange_ts=TS,
        received_ns=1_722_483_900_123_999_000,
        volume=1_234_500,
        last_quantity=25,
        average_price=144.9,
        buy_quantity=10_000,
        sell_quantity=9_000,
        open=140.0,
        high=150.0,
        low=139.5,
        close=138.0,
        oi=2_500_000,
        last_trade_ts=TS - timedelta(seconds=1),
        bids=(DepthLevel(145.3, 50, 2), DepthLevel(145.25, 75, 3)),
        asks=(DepthLevel(145.4, 25, 1),),
    ),
    Candle(
        instrument_token=256265,
        symbol="NSE:NIFTY 50",
        timeframe="5minute",
        start=TS,
        end=TS + timedelta(minutes=5),
        open=24_500.0,
        high=24_510.5,
        low=24_490.25,
        close=24_505.0,
        volume=0,
        tick_count=300,
        revision=1,
        source="backfill",
    ),
    Signal(
        signal_id="sig-1",
        strategy="ema_cross",
        symbol="NSE:NIFTY 50",
        instrument_token=256265,
        timeframe="5minute",
        action="BUY",
        price=24_505.0,
        confidence=0.7,
        candle_start=TS,
        created_at=TS + timedelta(minutes=5),
        reason="ema 9 crossed above ema 21",
        stop_loss=24_400.0,
        underlying="NIFTY",
        option_type="CE",
    ),
    OrderIntent(
        intent_id="sig-1",
        signal_id="sig-1",
        strategy="ema_cross",
        symbol="NFO:NIFTY24AUG24500CE",
        instrument_token=12_345_678,
        side="BUY",
        order_type="LIMIT",
        reference_price=145.35,
        confidence=0.7,
        timeframe="5minute",
        candle_start=TS,
        created_at=TS + timedelta(minutes=5),
        reason="ema cross",
        limit_price=146.0,
        is_exit=True,
    ),
    OrderEvent(
        event_id="ev-1",
        order_id="sig-1-0",
        intent_id="sig-1",
        mode="paper",
        status="COMPLETE",
        symbol="NFO:NIFTY24AUG24500CE",
        side="BUY",
        quantity=75,
        order_type="LIMIT",
        price=146.0,
        ts=TS,
        broker_order_id="240801000000001",
        filled_quantity=75,
        average_price=145.95,
        tag="sig-1",
    ),
    RiskEvent(
        event_id="risk-1",
        kind="DENIED",
        reason="daily loss limit reached",
        ts=TS,
        intent_id="sig-2",
        details={"mtm": -10_500.5, "limit": "10000"},
    ),
]


@pytest.fixture
def client(clickhouse_server: ClickHouseServer, clickhouse_db: str) -> Iterator[Client]:
    client = connect_clickhouse(
        clickhouse_server.host, clickhouse_server.port, clickhouse_db, "default", SecretStr("")
    )
    apply_migrations(client)
    yield client
    client.disconnect()


def insertable_columns(client: Client, table: str) -> tuple[str, ...]:
    rows = client.execute(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = %(t)s"
        " AND default_kind = '' ORDER BY position",
        {"t": table},
    )
    return tuple(r[0] for r in rows)


def write(
    client: Client, table: str, columns: tuple[str, ...], row: dict[str, Any], tmp: Path
) -> None:
    writer = BatchWriter(
        table,
        columns,
        inserter=ClickHouseInserter(client),
        spool=Spool(tmp / table),
        clock=ManualClock(TS),
    )
    writer.add(row)
    assert writer.flush() == 1
    assert Spool(tmp / table).files() == []  # it reached ClickHouse, not the spool


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_a_message_row_fits_its_table_and_reads_back_equal(
    client: Client, message: Message, tmp_path: Path
) -> None:
    spec = MESSAGE_TABLES[type(message)]
    assert set(spec.columns) == set(insertable_columns(client, spec.table))
    row = spec.row(message)
    write(client, spec.table, spec.columns, row, tmp_path)
    names = ", ".join(f"`{c}`" for c in spec.columns)
    [back] = client.execute(f"SELECT {names} FROM {spec.table}")
    assert dict(zip(spec.columns, back, strict=True)) == row


def test_a_dead_letter_row_fits_the_dead_letters_table(client: Client, tmp_path: Path) -> None:
    assert insertable_columns(client, "dead_letters") == DEAD_LETTER_COLUMNS
    letter = DeadLetter(
        kind=DeadLetterKind.MALFORMED,
        reason="MessageError: malformed Tick",
        service="consumer",
        stream="ta:ticks:2",
        entry_id="1722483900123-0",
        deliveries=1,
        fields={b"m": b"Tick", b"d": b"\xc1\x00"},
    )
    row = dead_letter_row(letter, TS)
    write(client, "dead_letters", DEAD_LETTER_COLUMNS, row, tmp_path)
    [back] = client.execute(f"SELECT {', '.join(DEAD_LETTER_COLUMNS)} FROM dead_letters")
    assert dict(zip(DEAD_LETTER_COLUMNS, back, strict=True)) == row


def test_the_service_owned_tables_take_their_documented_columns(client: Client) -> None:
    expected = {
        "instruments": "instrument_token exchange_token tradingsymbol name last_price expiry strike"
        " tick_size lot_size instrument_type segment exchange freeze_quantity refreshed_at",
        "options_data": "ts underlying underlying_price expiry strike option_type"
        " instrument_token tradingsymbol ltp iv delta gamma theta vega oi volume bid ask",
        "orders": "order_id intent_id tag broker_order_id mode status strategy symbol"
        " instrument_token side order_type product quantity filled_quantity price trigger_price"
        " average_price reason created_at updated_at version",
        "positions": "position_id symbol instrument_token product mode strategy quantity"
        " average_price last_price realised_pnl unrealised_pnl stop_loss target opened_at"
        " updated_at closed_at status version",
        "sessions": "login_time user_id outcome method token_fingerprint reason expires_at",
        "performance_metrics": "ts service name value labels",
        "historical_data": "instrument_token timeframe start open high low close volume oi"
        " fetched_at",
    }
    for table, columns in expected.items():
        assert insertable_columns(client, table) == tuple(columns.split()), table
    client.execute(
        "INSERT INTO instruments (instrument_token, exchange_token, tradingsymbol, name,"
        " last_price, expiry, strike, tick_size, lot_size, instrument_type, segment, exchange,"
        " freeze_quantity, refreshed_at) VALUES",
        [
            (
                1,
                2,
                "NIFTY24AUG24500CE",
                "NIFTY",
                0.0,
                date(2024, 8, 29),
                24500.0,
                0.05,
                25,
                "CE",
                "NFO-OPT",
                "NFO",
                1800,
                TS,
            ),
            (
                1,
                2,
                "NIFTY24AUG24500CE",
                "NIFTY",
                0.0,
                date(2024, 8, 29),
                24500.0,
                0.05,
                25,
                "CE",
                "NFO-OPT",
                "NFO",
                1800,
                TS + timedelta(days=1),
            ),
        ],
    )
    assert client.execute("SELECT count(), max(refreshed_at) FROM instruments FINAL") == [
        (1, TS + timedelta(days=1))
    ]
