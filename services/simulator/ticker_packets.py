"""KiteTicker binary packets: the exact bytes Kite sends, big-endian, told apart by length only.

Frame: uint16 packet count, then for each packet a uint16 length and the packet. Packets:
- 8 bytes (ltp): token, last_price.
- 28 / 32 bytes (index quote / full, segment 9): token, ltp, high, low, open, close, change,
  [exchange_timestamp].
- 44 bytes (quote): token, ltp, last_qty, avg_price, volume, total_buy_qty, total_sell_qty, open,
  high, low, close.
- 184 bytes (full): the quote, then last_trade_time, oi, oi_day_high, oi_day_low,
  exchange_timestamp and 10 depth entries of 12 bytes (qty u32, price u32, orders u16, 2 pad
  bytes): 5 bids then 5 asks.
Prices are integers: price x divisor (100, or 10^7 for CDS, 10^4 for BCD/NCO). Encoding writes
into a preallocated buffer with precompiled structs. The simulator's hot path hands the encoder
`WireTick`s (the packet's integers, shared by every subscriber of a token) rather than snapshots.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Literal, NamedTuple

TickMode = Literal["ltp", "quote", "full"]

SEGMENT_NSE, SEGMENT_NFO, SEGMENT_CDS, SEGMENT_BSE, SEGMENT_BFO = 1, 2, 3, 4, 5
SEGMENT_BCD, SEGMENT_MCX, SEGMENT_MCXSX, SEGMENT_INDICES, SEGMENT_NCO = 6, 7, 8, 9, 12

LTP_LENGTH, INDEX_QUOTE_LENGTH, INDEX_FULL_LENGTH, QUOTE_LENGTH, FULL_LENGTH = 8, 28, 32, 44, 184
HEARTBEAT = b"\x00"
DEPTH_LEVELS = 5

_LTP = struct.Struct(">II")
_INDEX_QUOTE = struct.Struct(">IIIIIIi")  # change may be negative: the client ignores it
_INDEX_FULL = struct.Struct(">IIIIIIiI")
_QUOTE = struct.Struct(">11I")
_FULL = struct.Struct(">16I" + "IIHxx" * (2 * DEPTH_LEVELS))
_U16 = struct.Struct(">H")
assert (_LTP.size, _INDEX_QUOTE.size, _INDEX_FULL.size, _QUOTE.size, _FULL.size) == (
    LTP_LENGTH,
    INDEX_QUOTE_LENGTH,
    INDEX_FULL_LENGTH,
    QUOTE_LENGTH,
    FULL_LENGTH,
)


class DepthEntry(NamedTuple):
    quantity: int
    price: float
    orders: int


EMPTY_DEPTH: tuple[DepthEntry, ...] = (DepthEntry(0, 0.0, 0),) * DEPTH_LEVELS


class TickSnapshot(NamedTuple):
    """Everything a full packet carries; times are epoch seconds."""

    instrument_token: int
    last_price: float
    last_quantity: int = 0
    average_price: float = 0.0
    volume: int = 0
    buy_quantity: int = 0
    sell_quantity: int = 0
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    close: float = 0.0
    last_trade_time: int = 0
    oi: int = 0
    oi_day_high: int = 0
    oi_day_low: int = 0
    exchange_timestamp: int = 0
    bids: tuple[DepthEntry, ...] = EMPTY_DEPTH
    asks: tuple[DepthEntry, ...] = EMPTY_DEPTH


def price_divisor(token: int) -> int:
    """Kite's price divisor for the instrument's segment (token & 0xff)."""
    segment = token & 0xFF
    if segment == SEGMENT_CDS:
        return 10_000_000
    if segment in (SEGMENT_BCD, SEGMENT_NCO):
        return 10_000
    return 100


def is_index(token: int) -> bool:
    return token & 0xFF == SEGMENT_INDICES


def packet_length(token: int, mode: TickMode) -> int:
    """The packet size Kite uses for this instrument and mode."""
    if mode == "ltp":
        return LTP_LENGTH
    if is_index(token):
        return INDEX_QUOTE_LENGTH if mode == "quote" else INDEX_FULL_LENGTH
    return QUOTE_LENGTH if mode == "quote" else FULL_LENGTH


WireTick = list[int]
"""The integers of an instrument's full packet in wire order, prices already x divisor: 8 for an
index (token, ltp, high, low, open, close, change, exchange_timestamp), 46 for anything else (the
16 of the quote and its times, then quantity, price, orders of 5 bids and 5 asks). Every mode's
packet is a prefix of it (ltp: the first 2), so one list serves every subscriber of a token."""

INDEX_WIRE_VALUES, WIRE_VALUES = 8, 16 + 3 * 2 * DEPTH_LEVELS

# (values in the wire tick, mode) -> (the packet's struct, how many of the values it packs)
_PACKETS: dict[tuple[int, TickMode], tuple[struct.Struct, int]] = {
    (INDEX_WIRE_VALUES, "ltp"): (_LTP, 2),
    (INDEX_WIRE_VALUES, "quote"): (_INDEX_QUOTE, 7),
    (INDEX_WIRE_VALUES, "full"): (_INDEX_FULL, INDEX_WIRE_VALUES),
    (WIRE_VALUES, "ltp"): (_LTP, 2),
    (WIRE_VALUES, "quote"): (_QUOTE, 11),
    (WIRE_VALUES, "full"): (_FULL, WIRE_VALUES),
}
# The same with the frame's uint16 packet length in front: one struct call per packet.
_FRAMED = {
    key: (struct.Struct(">H" + packer.format[1:]), count)
    for key, (packer, count) in _PACKETS.items()
}


def wire_depth(bids: Sequence[DepthEntry], asks: Sequence[DepthEntry], divisor: int) -> list[int]:
    """Quantity, price x divisor, orders of each bid, then of each ask."""
    depth: list[int] = []
    for entry in (*bids, *asks):
        depth += (entry.quantity, round(entry.price * divisor), entry.orders)
    return depth


def wire_values(tick: TickSnapshot) -> WireTick:
    """The snapshot as the integers of its full packet (see `WireTick`)."""
    head = _wire_head(tick)
    if len(head) == INDEX_WIRE_VALUES:
        return head
    return head + wire_depth(tick.bids, tick.asks, price_divisor(tick.instrument_token))


def _wire_head(tick: TickSnapshot) -> WireTick:
    """`wire_values` without the depth (all an index's packet holds)."""
    token = tick.instrument_token
    div = price_divisor(token)
    ltp = round(tick.last_price * div)
    high, low = round(tick.high * div), round(tick.low * div)
    open_, close = round(tick.open * div), round(tick.close * div)
    if is_index(token):
        return [token, ltp, high, low, open_, close, ltp - close, tick.exchange_timestamp]
    return [
        token,
        ltp,
        tick.last_quantity,
        round(tick.average_price * div),
        tick.volume,
        tick.buy_quantity,
        tick.sell_quantity,
        open_,
        high,
        low,
        close,
        tick.last_trade_time,
        tick.oi,
        tick.oi_day_high,
        tick.oi_day_low,
        tick.exchange_timestamp,
    ]


def pack_packet(buffer: bytearray, offset: int, tick: TickSnapshot, mode: TickMode) -> int:
    """Write one packet at `offset`; returns its length. Only a full packet reads the depth."""
    values = wire_values(tick) if mode == "full" else _wire_head(tick)
    kind = INDEX_WIRE_VALUES if is_index(tick.instrument_token) else WIRE_VALUES
    packer, count = _PACKETS[kind, mode]
    packer.pack_into(buffer, offset, *values[:count])
    return packer.size


def encode_packet(tick: TickSnapshot, mode: TickMode) -> bytes:
    """One packet without the frame header (the form of the captured samples)."""
    buffer = bytearray(packet_length(tick.instrument_token, mode))
    pack_packet(buffer, 0, tick, mode)
    return bytes(buffer)


class FrameEncoder:
    """Builds frames into one reusable buffer: count, then (length, packet) per tick."""

    def __init__(self, capacity_packets: int = 2000) -> None:
        if not 1 <= capacity_packets <= 0xFFFF:
            raise ValueError(f"a frame holds 1..65535 packets (got {capacity_packets})")
        self.capacity_packets = capacity_packets
        self._buffer = bytearray(2 + capacity_packets * (2 + FULL_LENGTH))

    def encode(self, ticks: Sequence[tuple[TickSnapshot, TickMode]]) -> bytes:
        """A frame holding every (tick, mode) in order; at most `capacity_packets` of them."""
        if len(ticks) > self.capacity_packets:
            raise ValueError(f"{len(ticks)} packets exceed the frame capacity")
        buffer = self._buffer
        _U16.pack_into(buffer, 0, len(ticks))
        offset = 2
        for tick, mode in ticks:
            length = pack_packet(buffer, offset + 2, tick, mode)
            _U16.pack_into(buffer, offset, length)
            offset += 2 + length
        return bytes(memoryview(buffer)[:offset])

    def encode_wire(self, ticks: Sequence[tuple[WireTick, TickMode]]) -> bytes:
        """The frame of (wire tick, mode) pairs: the replay's hot path (no snapshots built)."""
        if len(ticks) > self.capacity_packets:
            raise ValueError(f"{len(ticks)} packets exceed the frame capacity")
        buffer = self._buffer
        _U16.pack_into(buffer, 0, len(ticks))
        offset = 2
        framed = _FRAMED
        for values, mode in ticks:
            packer, count = framed[len(values), mode]
            if count == len(values):
                packer.pack_into(buffer, offset, packer.size - 2, *values)
            else:
                packer.pack_into(buffer, offset, packer.size - 2, *values[:count])
            offset += packer.size
        return bytes(memoryview(buffer)[:offset])
