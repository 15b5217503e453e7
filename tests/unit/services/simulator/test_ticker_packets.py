"""The KiteTicker encoder against captured Kite packets and the official client's decoder."""

from __future__ import annotations

import json
import struct
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from kiteconnect import KiteTicker

from services.simulator.ticker_packets import (
    DepthEntry,
    FrameEncoder,
    TickMode,
    TickSnapshot,
    encode_packet,
    packet_length,
    price_divisor,
    wire_values,
)

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "marketdata" / "kite_samples"
DECODER = KiteTicker("key", "token")  # only its pure _parse_binary is used; nothing connects


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def _depth(rows: list[dict[str, Any]]) -> tuple[DepthEntry, ...]:
    return tuple(DepthEntry(r["quantity"], r["price"], r["orders"]) for r in rows)


def snapshot_from_kite_json(sample: dict[str, Any]) -> TickSnapshot:
    """The decoded JSON of a captured packet as the encoder's input."""
    ohlc = sample.get("ohlc", {})
    depth = sample.get("depth", {"buy": [], "sell": []})
    extra: dict[str, Any] = {}
    if "last_trade_time" in sample:
        extra = {
            "last_trade_time": _epoch(sample["last_trade_time"]),
            "oi": sample["oi"],
            "oi_day_high": sample["oi_day_high"],
            "oi_day_low": sample["oi_day_low"],
            "exchange_timestamp": _epoch(sample["timestamp"]),
            "bids": _depth(depth["buy"]),
            "asks": _depth(depth["sell"]),
        }
    return TickSnapshot(
        sample["instrument_token"],
        sample["last_price"],
        last_quantity=sample.get("last_quantity", 0),
        average_price=sample.get("average_price", 0.0),
        volume=sample.get("volume", 0),
        buy_quantity=sample.get("buy_quantity", 0),
        sell_quantity=sample.get("sell_quantity", 0),
        open=ohlc.get("open", 0.0),
        high=ohlc.get("high", 0.0),
        low=ohlc.get("low", 0.0),
        close=ohlc.get("close", 0.0),
        **extra,
    )


def frame(packets: list[bytes]) -> bytes:
    body = b"".join(struct.pack(">H", len(p)) + p for p in packets)
    return struct.pack(">H", len(packets)) + body


@pytest.mark.parametrize(
    ("sample", "packet", "mode"),
    [
        ("ticker_full.json", "ticker_full.packet.bin", "full"),
        ("ticker_quote.json", "ticker_quote.packet.bin", "quote"),
    ],
)
def test_encoding_the_decoded_sample_gives_the_captured_bytes(
    sample: str, packet: str, mode: TickMode
) -> None:
    decoded = json.loads((SAMPLES / sample).read_text())
    expected = (SAMPLES / packet).read_bytes()
    assert encode_packet(snapshot_from_kite_json(decoded), mode) == expected


@pytest.mark.parametrize(
    ("sample", "mode"),
    [("ticker_full.json", "full"), ("ticker_quote.json", "quote"), ("ticker_ltp.json", "ltp")],
)
def test_the_official_decoder_reads_our_packets_as_the_sample(sample: str, mode: TickMode) -> None:
    decoded = json.loads((SAMPLES / sample).read_text())
    ours = encode_packet(snapshot_from_kite_json(decoded), mode)
    (tick,) = DECODER._parse_binary(frame([ours]))
    assert tick["mode"] == mode
    assert tick["last_price"] == decoded["last_price"]
    if mode == "ltp":
        return
    assert tick["ohlc"] == pytest.approx(decoded["ohlc"])
    assert tick["volume_traded"] == decoded["volume"]
    assert tick["average_traded_price"] == decoded["average_price"]
    assert tick["total_buy_quantity"] == decoded["buy_quantity"]
    if mode == "full":
        assert tick["depth"] == decoded["depth"]
        assert tick["oi"] == decoded["oi"]
        assert tick["exchange_timestamp"] == datetime.fromtimestamp(_epoch(decoded["timestamp"]))


@pytest.mark.parametrize(
    ("token", "mode", "length"),
    [
        (256265, "ltp", 8),
        (256265, "quote", 28),
        (256265, "full", 32),
        (8960258, "ltp", 8),
        (8960258, "quote", 44),
        (8960258, "full", 184),
        (408065, "full", 184),
    ],
)
def test_packet_lengths_follow_segment_and_mode(token: int, mode: TickMode, length: int) -> None:
    assert packet_length(token, mode) == length
    assert len(encode_packet(TickSnapshot(token, 100.0), mode)) == length


@pytest.mark.parametrize(
    ("token", "divisor"),
    [
        (256265, 100),
        (408065, 100),
        (8960258, 100),
        (3 + 256 * 7, 10_000_000),
        (6 + 256 * 7, 10_000),
        (12 + 256 * 7, 10_000),
    ],
)
def test_price_divisor_per_segment_matches_the_client(token: int, divisor: int) -> None:
    assert price_divisor(token) == divisor
    price = 81.2345 if divisor > 100 else 81.25
    (tick,) = DECODER._parse_binary(frame([encode_packet(TickSnapshot(token, price), "ltp")]))
    assert tick["last_price"] == pytest.approx(price, abs=1 / divisor)


@pytest.mark.parametrize(("ltp", "close"), [(24650.4, 24579.0), (24500.0, 24579.0)])
def test_index_packets_decode_with_ohlc_in_kites_order_and_a_timestamp(
    ltp: float, close: float
) -> None:
    snap = TickSnapshot(
        256265,
        ltp,
        open=24600.05,
        high=24700.1,
        low=24400.95,
        close=close,
        exchange_timestamp=1724125500,
    )
    (tick,) = DECODER._parse_binary(frame([encode_packet(snap, "full")]))
    assert tick["tradable"] is False
    assert (tick["last_price"], tick["ohlc"]) == (
        ltp,
        {"open": 24600.05, "high": 24700.1, "low": 24400.95, "close": close},
    )
    assert tick["exchange_timestamp"] == datetime.fromtimestamp(1724125500)


def test_a_frame_carries_many_packets_of_mixed_modes_in_order() -> None:
    encoder = FrameEncoder(capacity_packets=10)
    items: list[tuple[TickSnapshot, TickMode]] = [
        (TickSnapshot(256265, 24650.4), "ltp"),
        (TickSnapshot(8960258, 24694.2, volume=25), "quote"),
        (TickSnapshot(8960514, 101.05, exchange_timestamp=1724125500), "full"),
        (TickSnapshot(260105, 50441.15, close=50418.85), "full"),
    ]
    ticks = DECODER._parse_binary(encoder.encode(items))
    assert [(t["instrument_token"], t["mode"], t["last_price"]) for t in ticks] == [
        (256265, "ltp", 24650.4),
        (8960258, "quote", 24694.2),
        (8960514, "full", 101.05),
        (260105, "full", 50441.15),
    ]


def test_a_frame_over_capacity_is_refused() -> None:
    with pytest.raises(ValueError):
        FrameEncoder(capacity_packets=2).encode([(TickSnapshot(256265, 1.0), "ltp")] * 3)
    with pytest.raises(ValueError):
        FrameEncoder(capacity_packets=2).encode_wire(
            [(wire_values(TickSnapshot(256265, 1.0)), "ltp")] * 3
        )


FULL_OPTION = TickSnapshot(
    8960514, 101.05, 50, 100.4, 1250, 800, 900, 99.0, 102.5, 98.65, 97.3, 1724125500,
    2000, 2100, 1900, 1724125501,
    tuple(DepthEntry(25 * (n + 1), round(101.0 - 0.05 * n, 2), n + 1) for n in range(5)),
    tuple(DepthEntry(50 * (n + 1), round(101.1 + 0.05 * n, 2), n + 2) for n in range(5)),
)  # fmt: skip


@pytest.mark.parametrize("mode", ["ltp", "quote", "full"])
@pytest.mark.parametrize(
    "snapshot",
    [
        pytest.param(FULL_OPTION, id="option"),
        pytest.param(TickSnapshot(256265, 24650.4, close=24579.0, high=24700.1), id="index"),
    ],
)
def test_a_frame_of_wire_ticks_is_the_frame_of_their_snapshots(
    snapshot: TickSnapshot, mode: TickMode
) -> None:
    items: list[tuple[TickSnapshot, TickMode]] = [(snapshot, mode), (FULL_OPTION, "full")]
    wired = FrameEncoder(4).encode_wire([(wire_values(tick), m) for tick, m in items])
    assert wired == FrameEncoder(4).encode(items)
    assert len(wire_values(snapshot)) == (8 if snapshot.instrument_token == 256265 else 46)


@pytest.mark.parametrize("mode", ["ltp", "quote"])
def test_ltp_and_quote_packets_never_read_the_depth(mode: TickMode) -> None:
    no_depth = FULL_OPTION._replace(bids=(), asks=())
    assert encode_packet(no_depth, mode) == encode_packet(FULL_OPTION, mode)
