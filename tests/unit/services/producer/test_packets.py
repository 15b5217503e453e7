"""The Producer's frame parser equals the official KiteTicker._parse_binary, field by field."""

from __future__ import annotations

import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kiteconnect import KiteTicker

from services.producer.packets import BadPacket, TickParser, packet_count, unknown_symbol
from services.simulator.ticker_packets import (
    DepthEntry,
    FrameEncoder,
    TickMode,
    TickSnapshot,
)
from shared.clock import IST
from shared.messages import Tick

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "marketdata" / "kite_samples"
RECEIVED_NS = 1_725_000_000_123_456_789
OFFICIAL = KiteTicker("api_key", "access_token")


def frame_of(*packets: bytes) -> bytes:
    body = b"".join(struct.pack(">H", len(p)) + p for p in packets)
    return struct.pack(">H", len(packets)) + body


def naive_local_epoch(value: datetime) -> float:
    # The official client returns naive host-local datetimes; as local time they name an instant.
    return value.timestamp()


def assert_same(ours: Tick, theirs: dict[str, Any]) -> None:
    assert ours.instrument_token == theirs["instrument_token"]
    assert ours.last_price == theirs["last_price"]
    ohlc = theirs.get("ohlc")
    if ohlc:
        assert (ours.open, ours.high, ours.low, ours.close) == (
            ohlc["open"],
            ohlc["high"],
            ohlc["low"],
            ohlc["close"],
        )
    if "volume_traded" in theirs:
        assert ours.volume == theirs["volume_traded"]
        assert ours.last_quantity == theirs["last_traded_quantity"]
        assert ours.average_price == theirs["average_traded_price"]
        assert ours.buy_quantity == theirs["total_buy_quantity"]
        assert ours.sell_quantity == theirs["total_sell_quantity"]
    if theirs.get("exchange_timestamp") is not None:
        assert ours.exchange_ts.tzinfo is not None
        assert ours.exchange_ts.utcoffset() == IST.utcoffset(None)
        assert ours.exchange_ts.timestamp() == naive_local_epoch(theirs["exchange_timestamp"])
    if "last_trade_time" in theirs:
        assert ours.last_trade_ts is not None
        assert ours.last_trade_ts.timestamp() == naive_local_epoch(theirs["last_trade_time"])
    if "oi" in theirs:
        assert ours.oi == theirs["oi"]
    if "depth" in theirs:
        bids = [(lvl.price, lvl.quantity, lvl.orders) for lvl in ours.bids]
        asks = [(lvl.price, lvl.quantity, lvl.orders) for lvl in ours.asks]
        assert bids == [(e["price"], e["quantity"], e["orders"]) for e in theirs["depth"]["buy"]]
        assert asks == [(e["price"], e["quantity"], e["orders"]) for e in theirs["depth"]["sell"]]
    else:
        assert ours.bids == () and ours.asks == ()


@pytest.mark.parametrize("sample", ["ticker_full", "ticker_quote"])
def test_captured_packet_parses_exactly_like_the_official_client(sample: str) -> None:
    frame = frame_of((SAMPLES / f"{sample}.packet.bin").read_bytes())
    ticks, bad = TickParser({408065: "NSE:INFY"}).parse_frame(frame, RECEIVED_NS)
    official = OFFICIAL._parse_binary(frame)
    assert bad == [] and len(ticks) == len(official) == 1
    assert_same(ticks[0], official[0])
    assert ticks[0].symbol == "NSE:INFY"
    assert ticks[0].received_ns == RECEIVED_NS


def test_captured_full_packet_has_the_documented_ist_times_and_depth() -> None:
    frame = frame_of((SAMPLES / "ticker_full.packet.bin").read_bytes())
    (tick,), _ = TickParser({408065: "NSE:INFY"}).parse_frame(frame, RECEIVED_NS)
    assert tick.exchange_ts.isoformat() == "2021-07-05T10:41:27+05:30"
    assert tick.bids[0].price == 1573.4 and tick.asks[4].quantity == 724
    assert (tick.volume, tick.last_price) == (1192471, 1573.7)


NSE_EQ, NFO_OPT, CDS_FUT, BCD_FUT, NCO_FUT, INDEX = 408065, 12345602, 999939, 777606, 55512, 256265
DEPTH = tuple(DepthEntry(10 * (i + 1), 100.0 + i * 0.05, i + 1) for i in range(5))


def snapshot(token: int, price: float) -> TickSnapshot:
    return TickSnapshot(
        instrument_token=token,
        last_price=price,
        last_quantity=25,
        average_price=price - 0.5,
        volume=1_234_567,
        buy_quantity=5000,
        sell_quantity=6000,
        open=price - 1,
        high=price + 2,
        low=price - 3,
        close=price - 0.25,
        last_trade_time=1_724_130_000,
        oi=98_765,
        oi_day_high=99_000,
        oi_day_low=90_000,
        exchange_timestamp=1_724_130_001,
        bids=DEPTH,
        asks=tuple(DepthEntry(e.quantity, e.price + 1, e.orders) for e in DEPTH),
    )


SIMULATOR_CASES: list[tuple[str, int, float, TickMode]] = [
    ("nse equity full", NSE_EQ, 1573.7, "full"),
    ("nfo option full", NFO_OPT, 215.35, "full"),
    ("cds full (1e7 divisor)", CDS_FUT, 83.1234, "full"),
    ("bcd full (1e4 divisor)", BCD_FUT, 83.12, "full"),
    ("nco full (1e4 divisor)", NCO_FUT, 5432.1, "full"),
    ("nse equity quote", NSE_EQ, 1573.7, "quote"),
    ("nse equity ltp", NSE_EQ, 1573.7, "ltp"),
    ("index full (32 bytes)", INDEX, 24_572.65, "full"),
    ("index quote (28 bytes)", INDEX, 24_572.65, "quote"),
    ("index ltp", INDEX, 24_572.65, "ltp"),
]


@pytest.mark.parametrize(
    ("token", "price", "mode"),
    [case[1:] for case in SIMULATOR_CASES],
    ids=[case[0] for case in SIMULATOR_CASES],
)
def test_simulator_frame_parses_exactly_like_the_official_client(
    token: int, price: float, mode: TickMode
) -> None:
    frame = FrameEncoder(4).encode([(snapshot(token, price), mode)])
    ticks, bad = TickParser({token: "X:Y"}).parse_frame(frame, RECEIVED_NS)
    official = OFFICIAL._parse_binary(frame)
    assert bad == [] and len(ticks) == len(official) == 1
    assert_same(ticks[0], official[0])


def test_a_frame_of_many_mixed_packets_matches_the_official_client_in_order() -> None:
    items: list[tuple[TickSnapshot, TickMode]] = [
        (snapshot(token, price + n), mode)
        for n in range(50)
        for _, token, price, mode in SIMULATOR_CASES
    ]
    frame = FrameEncoder(len(items)).encode(items)
    ticks, bad = TickParser({}).parse_frame(frame, RECEIVED_NS)
    official = OFFICIAL._parse_binary(frame)
    assert bad == [] and len(ticks) == len(official) == len(items) == packet_count(frame)
    for ours, theirs in zip(ticks, official, strict=True):
        assert_same(ours, theirs)


RECEIPT = datetime.fromtimestamp(RECEIVED_NS / 1e9, IST)


@pytest.mark.parametrize(
    ("mode", "token", "expected_ts"),
    [
        ("ltp", NSE_EQ, RECEIPT),
        ("quote", NSE_EQ, RECEIPT),
        ("quote", INDEX, RECEIPT),
        ("full", INDEX, datetime.fromtimestamp(1_724_130_001, IST)),
        ("full", NSE_EQ, datetime.fromtimestamp(1_724_130_001, IST)),
    ],
)
def test_packets_without_an_exchange_timestamp_are_stamped_with_the_receipt_time(
    mode: TickMode, token: int, expected_ts: datetime
) -> None:
    frame = FrameEncoder(1).encode([(snapshot(token, 100.0), mode)])
    (tick,), _ = TickParser({}).parse_frame(frame, RECEIVED_NS)
    assert tick.exchange_ts == expected_ts


def test_a_zero_exchange_timestamp_becomes_the_receipt_time_not_1970() -> None:
    frame = FrameEncoder(1).encode(
        [(snapshot(NSE_EQ, 100.0)._replace(exchange_timestamp=0), "full")]
    )
    (tick,), _ = TickParser({}).parse_frame(frame, RECEIVED_NS)
    assert tick.exchange_ts == RECEIPT


def test_an_unknown_token_is_still_published_under_a_placeholder_symbol_and_counted() -> None:
    parser = TickParser({NSE_EQ: "NSE:INFY"})
    frame = FrameEncoder(2).encode(
        [(snapshot(NSE_EQ, 10.0), "full"), (snapshot(NFO_OPT, 20.0), "full")]
    )
    ticks, _ = parser.parse_frame(frame, RECEIVED_NS)
    assert [t.symbol for t in ticks] == ["NSE:INFY", unknown_symbol(NFO_OPT)]
    assert parser.unknown_tokens == 1


GOOD = (SAMPLES / "ticker_quote.packet.bin").read_bytes()


@pytest.mark.parametrize(
    ("frame", "ticks", "reason"),
    [
        (b"\x00", 0, None),  # heartbeat
        (b"", 0, None),
        (frame_of(b"\x01" * 12), 0, "unknown packet length 12"),
        (frame_of(b"\x01" * 12, GOOD), 1, "unknown packet length 12"),
        (frame_of(GOOD)[:-5], 0, "runs past the frame end"),
        (struct.pack(">H", 2) + frame_of(GOOD)[2:], 1, "frame truncated"),
    ],
    ids=["heartbeat", "empty", "odd length", "odd then good", "cut packet", "missing packet"],
)
def test_malformed_frames_yield_bad_packets_with_a_reason_and_keep_the_good_ones(
    frame: bytes, ticks: int, reason: str | None
) -> None:
    parsed, bad = TickParser({}).parse_frame(frame, RECEIVED_NS)
    assert len(parsed) == ticks
    if reason is None:
        assert bad == []
    else:
        assert len(bad) == 1 and isinstance(bad[0], BadPacket) and reason in bad[0].reason


@pytest.mark.parametrize(("frame", "count"), [(b"", 0), (b"\x00", 0), (frame_of(GOOD, GOOD), 2)])
def test_packet_count_reads_the_frame_header(frame: bytes, count: int) -> None:
    assert packet_count(frame) == count


def test_a_frame_splits_into_the_first_instruments_and_the_others_each_in_frame_order() -> None:
    items: list[tuple[TickSnapshot, TickMode]] = [
        (snapshot(NFO_OPT, 101.0), "full"), (snapshot(INDEX, 102.0), "full"),
        (snapshot(NSE_EQ, 103.0), "quote"), (snapshot(NFO_OPT, 104.0), "ltp"),
        (snapshot(INDEX, 105.0), "quote"),
    ]  # fmt: skip
    frame = FrameEncoder(len(items)).encode(items)
    parser = TickParser({})
    starts, bad = parser.packet_starts(frame)
    ahead, behind = parser.split_starts(frame, starts, {INDEX, NSE_EQ})
    first, _ = parser.parse_packets(frame, ahead, RECEIVED_NS)
    rest, _ = parser.parse_packets(frame, behind, RECEIVED_NS)
    assert bad == []
    assert [t.last_price for t in first] == [102.0, 103.0, 105.0]
    assert [t.last_price for t in rest] == [101.0, 104.0]
    whole, _ = parser.parse_frame(frame, RECEIVED_NS)
    assert sorted(first + rest, key=lambda t: t.last_price) == whole


def test_a_packet_too_short_for_a_token_goes_with_the_others_and_is_reported() -> None:
    frame = frame_of(b"\x01\x02", GOOD)
    parser = TickParser({})
    starts, _ = parser.packet_starts(frame)
    (good_token,) = struct.unpack_from(">I", GOOD)
    ahead, behind = parser.split_starts(frame, starts, {good_token})
    assert len(ahead) == 1 and len(behind) == 1
    _, bad = parser.parse_packets(frame, behind, RECEIVED_NS)
    assert "unknown packet length 2" in bad[0].reason
