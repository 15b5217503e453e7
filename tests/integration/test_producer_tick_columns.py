"""The Producer's columnar `ticks` path against a real ClickHouse: a TickColumns block stores exactly
the rows TickRows' tuples store; a block that reached ClickHouse without its acknowledgement is
not doubled when replayed from the spool as rows; the worker process writes every tick exactly
once through a kill -9 of ClickHouse."""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import NetworkError
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from services.producer.adapters.clickhouse_process import ClickHouseTickProcess
from services.producer.adapters.metrics import ProducerMetrics
from services.producer.adapters.tick_columns_inserter import TickColumnsInserter
from services.producer.frame_buffer import Frame
from services.producer.frame_columns import FrameColumnParser
from services.producer.packets import TickParser
from services.producer.settings import ProducerSettings
from services.producer.tick_rows import COLUMNS, TickRows
from services.simulator.ticker_packets import DepthEntry, FrameEncoder, TickMode, TickSnapshot
from shared.clock import SystemClock
from shared.localservers import ClickHouseServer
from shared.store import (
    BatchPolicy,
    BatchWriter,
    ClickHouseInserter,
    Spool,
    apply_migrations,
    connect_clickhouse,
)
from tests.support import eventually

pytestmark = pytest.mark.integration

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "marketdata" / "kite_samples"
NSE_EQ, NFO_OPT, CDS_FUT, INDEX = 408065, 12345602, 999939, 256265
SYMBOLS = {NSE_EQ: "NSE:INFY", NFO_OPT: "NFO:NIFTY24AUG24500CE", CDS_FUT: "CDS:USDINR24AUGFUT",
           INDEX: "NSE:NIFTY 50"}  # fmt: skip
DEPTH = tuple(DepthEntry(25 * (k + 1), 100.0 - 0.05 * k, k + 1) for k in range(5))
OPTIONS = [(10_000 + i) * 256 + 2 for i in range(50)]
# Every column as a comparable value: times as the stored microseconds, arrays as tuples.
STORED = (
    "SELECT instrument_token, symbol, last_price, toUnixTimestamp64Micro(exchange_ts), "
    "received_ns, volume, last_quantity, average_price, buy_quantity, sell_quantity, open, high, "
    "low, close, oi, toUnixTimestamp64Micro(last_trade_ts), bid_prices, bid_quantities, "
    "bid_orders, ask_prices, ask_quantities, ask_orders FROM ticks"
)


def snapshot(token: int, price: float, **changes: Any) -> TickSnapshot:
    snap = TickSnapshot(
        instrument_token=token, last_price=price, last_quantity=25, average_price=price - 0.5,
        volume=1_234_567, buy_quantity=5000, sell_quantity=6000, open=price - 1, high=price + 2,
        low=price - 3, close=price - 0.25, last_trade_time=1_724_130_000, oi=98_765,
        exchange_timestamp=1_724_130_001, bids=DEPTH, asks=DEPTH,
    )  # fmt: skip
    return snap._replace(**changes)


def encode(items: Sequence[tuple[TickSnapshot, TickMode]]) -> bytes:
    return FrameEncoder(len(items)).encode(list(items))


def captured_frame() -> bytes:
    packets = [(SAMPLES / f"ticker_{m}.packet.bin").read_bytes() for m in ("full", "quote")]
    body = b"".join(struct.pack(">H", len(p)) + p for p in packets)
    return struct.pack(">H", len(packets)) + body


FRAMES = [
    (captured_frame(), 1_725_000_000_123_456_789),
    (encode([(snapshot(t, 83.1234 + n), "full") for n in range(5) for t in SYMBOLS]), 2),
    (encode([(snapshot(t, 100.0 + n), m) for n in range(3) for t in SYMBOLS
             for m in ("full", "quote", "ltp")]), 1_725_000_000_123_456_500),
    (encode([(snapshot(NFO_OPT, 10.0, exchange_timestamp=0, last_trade_time=0), "full"),
             (snapshot(77_777, 20.0), "full")]), 1_725_000_000_999_999_999),
]  # fmt: skip


def row_tuples() -> list[tuple[Any, ...]]:
    parser, rows = TickParser(SYMBOLS), TickRows()
    return [rows.row(t) for payload, ns in FRAMES for t in parser.parse_frame(payload, ns)[0]]


def comparable(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(tuple(v) if isinstance(v, list) else v for v in row)


def stored(client: Client) -> Counter[tuple[Any, ...]]:
    return Counter(comparable(row) for row in client.execute(STORED))


def connect(server: ClickHouseServer, database: str) -> Client:
    return connect_clickhouse(server.host, server.port, database, "default", SecretStr(""))


@pytest.fixture
def client(clickhouse_server: ClickHouseServer, clickhouse_db: str) -> Iterator[Client]:
    client = connect(clickhouse_server, clickhouse_db)
    apply_migrations(client)
    yield client
    client.disconnect()


def test_a_block_stores_exactly_the_rows_the_row_tuples_store(client: Client) -> None:
    rows = row_tuples()
    expected = Counter(comparable(row) for row in rows)
    ClickHouseInserter(client).insert("ticks", COLUMNS, rows, "a" * 32)
    assert stored(client) == expected
    everything = "SELECT * FROM ticks ORDER BY ALL"
    by_rows = client.execute(everything)
    client.execute("TRUNCATE TABLE ticks")
    block = FrameColumnParser(SYMBOLS).parse(FRAMES)
    TickColumnsInserter(client).insert("ticks", COLUMNS, block, "b" * 32)
    assert stored(client) == expected
    assert client.execute(everything) == by_rows  # typed values (datetimes in IST) too
    assert len(by_rows) == len(rows) == 2 + 20 + 36 + 2


class AckLosingInserter:
    """Inserts for real, then reports a network error: the reply was lost on the way back."""

    def __init__(self, inner: TickColumnsInserter) -> None:
        self.inner = inner
        self.lost = False

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Any], token: str) -> None:
        self.inner.insert(table, columns, rows, token)
        if not self.lost:
            self.lost = True
            raise NetworkError("Connection reset by peer (after the insert)")


def test_a_block_written_but_not_acknowledged_is_not_doubled_when_replayed_as_rows(
    client: Client, tmp_path: Path
) -> None:
    spool = Spool(tmp_path)
    writer = BatchWriter(
        "ticks", COLUMNS, inserter=AckLosingInserter(TickColumnsInserter(client)), spool=spool,
        clock=SystemClock(), policy=BatchPolicy(insert_attempts=1),
    )  # fmt: skip
    block = FrameColumnParser(SYMBOLS).parse(FRAMES)
    writer.write_batch(block)
    assert len(spool.files()) == 1  # the block went to the spool, as rows
    assert writer.replay() == len(block)  # replayed as row tuples with the block's token
    assert spool.files() == []
    assert stored(client) == Counter(comparable(row) for row in row_tuples())


def option_frame(n: int) -> Frame:
    """50 full packets; the receipt time `n` tells the frames apart."""
    items = [
        (snapshot(t, 100.0 + n, exchange_timestamp=1_724_125_500 + n), "full") for t in OPTIONS
    ]
    return Frame("c0", encode(items), n)  # type: ignore[arg-type]


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer(tmp_path / "clickhouse").start()
    yield server
    server.stop()


async def test_the_worker_writes_every_tick_once_through_a_kill_9_of_clickhouse(
    own_server: ClickHouseServer, tmp_path: Path
) -> None:
    settings = ProducerSettings(
        clickhouse_host=own_server.host, clickhouse_port=own_server.port,
        clickhouse_database="tradealgo", spool_dir=str(tmp_path / "spool"),
        clickhouse_flush_s=0.2, clickhouse_batch_rows=200,
    )  # fmt: skip
    sink = ClickHouseTickProcess(settings, ProducerMetrics(CollectorRegistry()))
    await sink.start()
    try:
        sink.set_symbols({t: f"NFO:S{i}" for i, t in enumerate(OPTIONS)})
        for n in range(10):
            sink.add_frames([option_frame(n)])
        await eventually(lambda: sink.stats.rows_written == 500, timeout=20)
        own_server.kill()
        for n in range(10, 20):
            sink.add_frames([option_frame(n)])
        await eventually(lambda: sink.stats.rows_spooled == 500, timeout=30)
        own_server.start()
        for n in range(20, 30):
            sink.add_frames([option_frame(n)])
        await eventually(lambda: sink.stats.rows_written == 1500, timeout=30)
        assert sink.stats.spool_rows == 0
    finally:
        await sink.close()
    check = connect(own_server, "tradealgo")
    [(rows, distinct)] = check.execute(
        "SELECT count(), uniqExact(instrument_token, received_ns) FROM ticks"
    )
    check.disconnect()
    assert (rows, distinct) == (1500, 1500)
    assert sink.dropped == 0
