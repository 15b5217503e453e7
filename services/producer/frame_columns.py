"""KiteTicker frames -> one TickColumns block, full-mode packets decoded together (pure, hot path).

Full packets have a fixed 184-byte layout (see packets.py), so the full packets of a whole batch
of frames are viewed as one numpy structured array (big-endian fields) and every column is
computed at once: ~0.3 ms per 1,000 ticks instead of ~13 ms for a Tick and a row per packet.
A frame made of full packets only (the usual frame of an option-chain connection) is viewed in
place; a frame that mixes lengths is walked packet by packet like TickParser walks it, its full
packets joined for numpy and its other packets (ltp, quote, index) parsed by TickParser and
converted by TickRows. Rows keep the frames' packet order. Packets TickParser would refuse
(unknown length, truncated frame) give no row, exactly as before (the main process, which parses
the same frames, dead-letters them).

Values equal TickParser + TickRows exactly (a test compares them on captured and simulator
packets): prices are the integer divided by the segment divisor in float64, a zero exchange
timestamp is replaced by the frame's receipt time (the same conversion TickParser does).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import numpy as np

from services.producer.packets import (
    DEPTH_LEVELS,
    DIVISORS,
    FULL,
    INDEX_FULL,
    INDEX_QUOTE,
    LTP,
    QUOTE,
    TickParser,
    unknown_symbol,
)
from services.producer.tick_columns import ObjectArray, Row, TickColumns
from services.producer.tick_rows import TickRows
from shared.clock import IST

_U32 = ">u4"
FULL_PACKET = np.dtype(
    [
        (name, _U32)
        for name in (
            "instrument_token", "last_price", "last_quantity", "average_price", "volume",
            "buy_quantity", "sell_quantity", "open", "high", "low", "close", "last_trade_time",
            "oi", "oi_day_high", "oi_day_low", "exchange_timestamp",
        )
    ]
    + [
        (
            "depth",
            [("quantity", _U32), ("price", _U32), ("orders", ">u2"), ("padding", "V2")],
            (2 * DEPTH_LEVELS,),
        )
    ]
)  # fmt: skip
FRAMED_FULL_PACKET = np.dtype([("length", ">u2"), ("packet", FULL_PACKET)])
if FULL_PACKET.itemsize != FULL or FRAMED_FULL_PACKET.itemsize != FULL + 2:
    raise ImportError(f"full packet dtype is {FULL_PACKET.itemsize} bytes, not {FULL}")

OTHER_LENGTHS = frozenset((LTP, INDEX_QUOTE, INDEX_FULL, QUOTE))
DIVISOR_TABLE = np.array(DIVISORS, dtype=np.float64)
MICROS = 1_000_000
_U16 = struct.Struct(">H")
_PRICES = ("last_price", "average_price", "open", "high", "low", "close")
_COUNTS = ("volume", "last_quantity", "buy_quantity", "sell_quantity", "oi")


class FrameColumnParser:
    """Parses batches of frames for a fixed token -> symbol map (unknown tokens are named
    `unknown_symbol(token)`, as TickParser names them). Not thread-safe."""

    def __init__(self, symbols: Mapping[int, str]) -> None:
        self.symbols = dict(symbols)
        self._parser = TickParser(self.symbols)
        self._rows = TickRows()

    def parse(self, frames: Iterable[tuple[bytes, int]]) -> TickColumns:
        """The rows of every packet of `frames` ((payload, received_ns) pairs), in order."""
        batch = _Batch()
        for payload, received_ns in frames:
            size = len(payload)
            if size < 2:  # heartbeat
                continue
            (count,) = _U16.unpack_from(payload, 0)
            receipt_us = self._rows.micros(datetime.fromtimestamp(received_ns / 1e9, IST))
            if size == 2 + count * (FULL + 2):
                framed = np.frombuffer(payload, FRAMED_FULL_PACKET, count, 2)
                if bool((framed["length"] == FULL).all()):
                    batch.add_full(framed["packet"], received_ns, receipt_us)
                    continue
            self._walk(payload, count, received_ns, receipt_us, batch)
        return self._columns(batch)

    def _walk(
        self, payload: bytes, count: int, received_ns: int, receipt_us: int, batch: _Batch
    ) -> None:
        """A frame of mixed packet lengths, framed exactly as TickParser.parse_frame reads it."""
        size = len(payload)
        full: list[bytes] = []
        others: list[bytes] = []
        offset = 2
        for _ in range(count):
            if offset + 2 > size:
                break
            (length,) = _U16.unpack_from(payload, offset)
            start = offset + 2
            offset = start + length
            if offset > size:
                break
            if length == FULL:
                batch.positions_full.append(batch.position)
                full.append(payload[start:offset])
            elif length in OTHER_LENGTHS:
                batch.positions_other.append(batch.position)
                others.append(payload[start - 2 : offset])
            else:
                continue  # no row: TickParser reports it as a bad packet
            batch.position += 1
        if full:
            packets = np.frombuffer(b"".join(full), FULL_PACKET)
            batch.add_full(packets, received_ns, receipt_us, positioned=True)
        if others:
            frame = _U16.pack(len(others)) + b"".join(others)
            ticks, bad = self._parser.parse_frame(frame, received_ns)
            if bad or len(ticks) != len(others):  # the walk keeps readable packets only
                raise RuntimeError(f"TickParser refused packets the walk kept: {bad}")
            row = self._rows.row
            batch.other_rows.extend(row(tick) for tick in ticks)

    def _columns(self, batch: _Batch) -> TickColumns:
        full = self._full_columns(batch)
        if not batch.other_rows:
            return full
        other = TickColumns.from_rows(batch.other_rows)
        if not len(full):
            return other
        positions = np.concatenate(
            [batch.full_positions(), np.array(batch.positions_other, dtype=np.int64)]
        )
        order = np.argsort(positions, kind="stable")
        return TickColumns.concat([full, other]).take(order)

    def _full_columns(self, batch: _Batch) -> TickColumns:
        if not batch.packets:
            return TickColumns.from_rows([])
        p = np.concatenate(batch.packets) if len(batch.packets) > 1 else batch.packets[0]
        counts = np.array(batch.counts, dtype=np.int64)
        token = p["instrument_token"].astype(np.int64)
        divisor = DIVISOR_TABLE[token & 0xFF]
        exchange = p["exchange_timestamp"].astype(np.int64)
        receipt = np.repeat(np.array(batch.receipt_us, dtype=np.int64), counts)
        depth = p["depth"]
        bids, asks = depth[:, :DEPTH_LEVELS], depth[:, DEPTH_LEVELS:]
        per_level = divisor[:, None]
        columns: dict[str, np.ndarray[Any, Any]] = {
            "instrument_token": token,
            "symbol": self._symbols(token),
            "exchange_ts": np.where(exchange != 0, exchange * MICROS, receipt),
            "received_ns": np.repeat(np.array(batch.received_ns, dtype=np.int64), counts),
            "last_trade_ts": p["last_trade_time"].astype(np.int64) * MICROS,
            "bid_prices": bids["price"] / per_level,
            "bid_quantities": bids["quantity"].astype(np.int64),
            "bid_orders": bids["orders"].astype(np.int64),
            "ask_prices": asks["price"] / per_level,
            "ask_quantities": asks["quantity"].astype(np.int64),
            "ask_orders": asks["orders"].astype(np.int64),
            "depth_levels": np.full(len(token), DEPTH_LEVELS, dtype=np.int64),
        }
        for name in _PRICES:
            columns[name] = p[name] / divisor
        for name in _COUNTS:
            columns[name] = p[name].astype(np.int64)
        return TickColumns(**columns)

    def _symbols(self, tokens: np.ndarray[Any, Any]) -> ObjectArray:
        unique, inverse = np.unique(tokens, return_inverse=True)
        get = self.symbols.get
        names = np.empty(len(unique), dtype=object)
        names[:] = [
            unknown_symbol(t) if (name := get(t)) is None else name for t in unique.tolist()
        ]
        result: ObjectArray = names[inverse]
        return result


class _Batch:
    """What one `parse` call collected: full packets (with their frames' receipt times and
    positions) and the rows of the other packets with theirs."""

    def __init__(self) -> None:
        self.packets: list[np.ndarray[Any, Any]] = []
        self.counts: list[int] = []
        self.received_ns: list[int] = []
        self.receipt_us: list[int] = []
        self.starts: list[int] = []  # position of each full run's first row, -1 when positioned
        self.positions_full: list[int] = []
        self.positions_other: list[int] = []
        self.other_rows: list[Row] = []
        self.position = 0

    def add_full(
        self,
        packets: np.ndarray[Any, Any],
        received_ns: int,
        receipt_us: int,
        positioned: bool = False,
    ) -> None:
        """A run of full packets; unless `positioned` (the walk recorded each), they take the
        next positions."""
        self.packets.append(packets)
        self.counts.append(len(packets))
        self.received_ns.append(received_ns)
        self.receipt_us.append(receipt_us)
        if positioned:
            self.starts.append(-1)
        else:
            self.starts.append(self.position)
            self.position += len(packets)

    def full_positions(self) -> np.ndarray[Any, Any]:
        walked = iter(self.positions_full)
        parts = [
            np.arange(start, start + count, dtype=np.int64)
            if start >= 0
            else np.array([next(walked) for _ in range(count)], dtype=np.int64)
            for start, count in zip(self.starts, self.counts, strict=True)
        ]
        return np.concatenate(parts)
