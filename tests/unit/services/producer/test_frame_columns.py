"""Columns parsed from whole frames equal, value for value and type for type, the rows TickParser +
TickRows build one packet at a time (the rows the ClickHouse worker wrote before)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import pytest

from services.producer.frame_columns import FrameColumnParser
from services.producer.packets import TickParser
from services.producer.tick_rows import TickRows
from services.simulator.ticker_packets import DepthEntry, FrameEncoder, TickMode, TickSnapshot

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "marketdata" / "kite_samples"
RECEIVED_NS = 1_725_000_000_123_456_789
HALF_MICRO_NS = 1_725_000_000_123_456_500  # the receipt time rounds half to even
NSE_EQ, NFO_OPT, CDS_FUT, BCD_FUT, NCO_FUT, INDEX = 408065, 12345602, 999939, 777606, 55512, 256265
SYMBOLS = {NSE_EQ: "NSE:INFY", NFO_OPT: "NFO:NIFTY24AUG24500CE", INDEX: "NSE:NIFTY 50",
           CDS_FUT: "CDS:USDINR24AUGFUT", BCD_FUT: "BCD:USDINR", NCO_FUT: "NCO:GOLD"}  # fmt: skip
DEPTH = tuple(DepthEntry(10 * (i + 1), 100.0 + i * 0.05, i + 1) for i in range(5))


def frame_of(*packets: bytes) -> bytes:
    body = b"".join(struct.pack(">H", len(p)) + p for p in packets)
    return struct.pack(">H", len(packets)) + body


def snapshot(token: int, price: float, **changes: Any) -> TickSnapshot:
    snap = TickSnapshot(
        instrument_token=token, last_price=price, last_quantity=25, average_price=price - 0.5,
        volume=1_234_567, buy_quantity=5000, sell_quantity=6000, open=price - 1, high=price + 2,
        low=price - 3, close=price - 0.25, last_trade_time=1_724_130_000, oi=98_765,
        oi_day_high=99_000, oi_day_low=90_000, exchange_timestamp=1_724_130_001, bids=DEPTH,
        asks=tuple(DepthEntry(e.quantity, e.price + 1, e.orders) for e in DEPTH),
    )  # fmt: skip
    return snap._replace(**changes)


def encode(*items: tuple[TickSnapshot, TickMode]) -> bytes:
    return FrameEncoder(len(items)).encode(list(items))


TOKENS = (NSE_EQ, NFO_OPT, CDS_FUT, BCD_FUT, NCO_FUT)
FULL_ONLY = encode(*((snapshot(t, 83.1234 + n * 0.05), "full") for n in range(40) for t in TOKENS))
MODES: list[tuple[int, TickMode]] = [
    (NSE_EQ, "full"), (NSE_EQ, "quote"), (NSE_EQ, "ltp"), (INDEX, "full"), (INDEX, "quote"),
    (INDEX, "ltp"), (NFO_OPT, "full"), (CDS_FUT, "full"), (CDS_FUT, "quote"),
]  # fmt: skip
MIXED = encode(*((snapshot(t, 100.0 + n), mode) for n in range(20) for t, mode in MODES))
FULL_PACKET = (SAMPLES / "ticker_full.packet.bin").read_bytes()
QUOTE_PACKET = (SAMPLES / "ticker_quote.packet.bin").read_bytes()
TRUNCATED = frame_of(FULL_PACKET, QUOTE_PACKET, FULL_PACKET)[:-10]
UNKNOWN_LENGTH = frame_of(FULL_PACKET, b"\x00" * 10, FULL_PACKET, QUOTE_PACKET)
# As long as two full packets, but an ltp packet and one of an unknown length.
FULL_SIZED = frame_of(encode((snapshot(NSE_EQ, 10.0), "ltp"))[4:], b"\x01" * 360)

ZERO_TIMES = encode(
    (snapshot(NFO_OPT, 10.0, exchange_timestamp=0, last_trade_time=0), "full"),
    (snapshot(NSE_EQ, 20.0, exchange_timestamp=0), "full"),
)
INDEX_QUOTE = encode((snapshot(INDEX, 30.0), "quote"))

CASES: dict[str, list[tuple[bytes, int]]] = {
    "captured full packet": [(frame_of(FULL_PACKET), RECEIVED_NS)],
    "captured quote packet": [(frame_of(QUOTE_PACKET), RECEIVED_NS)],
    "full packets of every price divisor": [(FULL_ONLY, RECEIVED_NS)],
    "every packet length mixed in one frame": [(MIXED, RECEIVED_NS)],
    "zero exchange and last trade times": [(ZERO_TIMES, HALF_MICRO_NS)],
    "a token missing from the symbols": [(encode((snapshot(777, 50.0), "full")), RECEIVED_NS)],
    "heartbeats and an empty frame": [(b"\x00", 1), (b"", 2), (b"\x00\x00", 3)],
    "a packet of unknown length amid full ones": [(UNKNOWN_LENGTH, RECEIVED_NS)],
    "a truncated frame": [(TRUNCATED, RECEIVED_NS)],
    "the size of full packets without their lengths": [(FULL_SIZED, RECEIVED_NS)],
    "full, mixed and full frames with their own receipt times": [
        (FULL_ONLY, RECEIVED_NS),
        (MIXED, HALF_MICRO_NS),
        (b"\x00", 7),
        (INDEX_QUOTE, RECEIVED_NS + 1),
        (FULL_ONLY, RECEIVED_NS + 2),
    ],
}


def expected_rows(frames: list[tuple[bytes, int]]) -> list[tuple[Any, ...]]:
    parser, rows = TickParser(SYMBOLS), TickRows()
    return [rows.row(tick) for payload, ns in frames for tick in parser.parse_frame(payload, ns)[0]]


def types(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return [
        tuple(type(v) for v in row) + tuple(type(x) for v in row[-6:] for x in v) for row in rows
    ]


@pytest.mark.parametrize("frames", CASES.values(), ids=CASES.keys())
def test_columns_of_a_batch_of_frames_equal_the_rows_built_per_packet(
    frames: list[tuple[bytes, int]],
) -> None:
    expected = expected_rows(frames)
    block = FrameColumnParser(SYMBOLS).parse(frames)
    rows = block.rows()
    assert rows == expected
    assert types(rows) == types(expected)
    assert len(block) == len(expected)


def test_a_frame_the_size_of_full_packets_is_still_read_by_its_lengths() -> None:
    assert len(FULL_SIZED) == 2 + 2 * (184 + 2)
    (row,) = FrameColumnParser(SYMBOLS).parse([(FULL_SIZED, RECEIVED_NS)])
    assert row[:3] == (NSE_EQ, "NSE:INFY", 10.0) and row[-6:] == ([],) * 6


def test_the_zero_times_became_the_receipt_time_and_no_last_trade() -> None:
    (first, second) = FrameColumnParser(SYMBOLS).parse(CASES["zero exchange and last trade times"])
    assert first[3] == second[3] == 1_725_000_000_123_456  # 500 ns rounds to the even micro
    assert first[15] is None and second[15] == 1_724_130_000_000_000
