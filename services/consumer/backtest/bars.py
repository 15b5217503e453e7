"""1-minute bars in, candles out, through the live CandleBuilder.

A bar source yields 1-minute bars of one instrument in time order. `CsvBarSource` reads the
format of shared/marketdata (`timestamp,open,high,low,close,volume`, the timestamp with its
+05:30 offset and labelling the bar's START; `.csv` or `.csv.gz`) and leaves out bars outside
09:15-15:29 (e.g. the flat prints of 2024-01-20 after the close), counting them. A ClickHouse
source (`--symbol` and a date range) plugs in behind the same `BarSource` protocol.

Candles are built by the SAME `CandleBuilder` the live Consumer uses: each bar becomes four
synthetic ticks inside its minute (open at :00, high at :15, low at :30, close at :45, the
cumulative day volume rising by the bar's volume on the close tick), so the backtest's candles
are the live path's candles by construction, late-tick and gap rules included.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import NamedTuple, Protocol, TextIO

from services.consumer.buckets import SessionsOf
from services.consumer.candles import CandleBuilder, CandleGap, RejectedTick
from shared.clock import IST
from shared.messages import Candle, Tick, Timeframe

logger = logging.getLogger(__name__)

FIRST_BAR = time(9, 15)
LAST_BAR = time(15, 29)
IST_OFFSET = timedelta(hours=5, minutes=30)
_TICK_OFFSETS = (timedelta(0), timedelta(seconds=15), timedelta(seconds=30), timedelta(seconds=45))


class Bar(NamedTuple):
    """A 1-minute bar, labelled by its start (IST-aware)."""

    start: datetime
    open: float
    high: float
    low: float
    close: float
    volume: int


class BarSource(Protocol):
    """1-minute bars of one instrument, oldest first."""

    symbol: str
    instrument_token: int

    def bars(self) -> Iterator[Bar]: ...


class BarFileError(ValueError):
    """A bar file that cannot be read; the message names the file and line."""


@dataclass
class CsvBarSource:
    """Bars from a shared/marketdata style CSV (optionally gzipped)."""

    path: Path
    symbol: str
    instrument_token: int
    first_bar: time = FIRST_BAR
    last_bar: time = LAST_BAR
    start_date: date | None = None
    end_date: date | None = None
    left_out: int = field(default=0, init=False)
    rows_read: int = field(default=0, init=False)

    def bars(self) -> Iterator[Bar]:
        self.left_out = 0
        self.rows_read = 0
        with _open_text(self.path) as f:
            header = f.readline().strip().split(",")
            if header[:6] != ["timestamp", "open", "high", "low", "close", "volume"]:
                raise BarFileError(f"{self.path}: expected timestamp,open,high,low,close,volume")
            previous: datetime | None = None
            for lineno, line in enumerate(f, start=2):
                self.rows_read += 1
                bar = self._parse(line, lineno)
                if bar is None:
                    continue
                if previous is not None and bar.start <= previous:
                    raise BarFileError(
                        f"{self.path}:{lineno}: bar {bar.start} is not after {previous}"
                    )
                previous = bar.start
                yield bar

    def _parse(self, line: str, lineno: int) -> Bar | None:
        fields = line.rstrip("\n").split(",")
        try:
            start = datetime.fromisoformat(fields[0])
            if start.tzinfo is None:
                raise ValueError("timestamp without an offset")
            # One shared tzinfo object for every timestamp: comparisons between datetimes of
            # distinct tzinfo objects are ~10x slower, and the builder compares a lot.
            start = (
                start.replace(tzinfo=IST)
                if start.utcoffset() == IST_OFFSET
                else start.astimezone(IST)
            )
            wall = start.time()
            day = start.date()
            if not self.first_bar <= wall <= self.last_bar:
                self.left_out += 1
                return None
            if (self.start_date and day < self.start_date) or (
                self.end_date and day > self.end_date
            ):
                return None
            return Bar(
                start,
                float(fields[1]),
                float(fields[2]),
                float(fields[3]),
                float(fields[4]),
                int(float(fields[5])),
            )
        except (ValueError, IndexError) as exc:
            raise BarFileError(f"{self.path}:{lineno}: {exc}") from None


def _open_text(path: Path) -> TextIO:
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return path.open(encoding="utf-8")


@dataclass(frozen=True)
class CandleSeries:
    """The candles of one instrument and timeframe, with what the builder reported."""

    candles: list[Candle]
    gaps: list[CandleGap]
    rejected: list[RejectedTick]
    bars: int


def ticks_of_bar(bar: Bar, symbol: str, token: int, volume_before: int) -> tuple[Tick, ...]:
    """Four ticks inside the bar's minute reproducing its OHLC and volume."""
    start = bar.start
    prices = (bar.open, bar.high, bar.low, bar.close)
    volumes = (volume_before, volume_before, volume_before, volume_before + bar.volume)
    return tuple(
        Tick(
            instrument_token=token,
            symbol=symbol,
            last_price=price,
            exchange_ts=start + offset,
            received_ns=0,
            volume=volume,
        )
        for price, offset, volume in zip(prices, _TICK_OFFSETS, volumes, strict=True)
    )


def build_candles(
    source: BarSource,
    timeframe: Timeframe,
    sessions_of: SessionsOf,
    *,
    progress: Callable[[int], None] | None = None,
) -> CandleSeries:
    """Feed every bar of a source through a CandleBuilder; the last open bucket is closed too."""
    builder = CandleBuilder(
        source.instrument_token, source.symbol, timeframe, sessions_of=sessions_of
    )
    candles: list[Candle] = []
    update = builder.update
    symbol, token = source.symbol, source.instrument_token
    cumulative = 0
    day: date | None = None
    count = 0
    last_start: datetime | None = None
    for bar in source.bars():
        last_start = bar.start
        bar_day = bar.start.date()
        if bar_day != day:
            day, cumulative = bar_day, 0  # the exchange's counter restarts every day
        for tick in ticks_of_bar(bar, symbol, token, cumulative):
            closed = update(tick)
            if closed:
                candles.extend(closed)
        cumulative += bar.volume
        count += 1
        if progress is not None and count % 1000 == 0:
            progress(count)
    if last_start is not None:  # the end of the data closes the last bucket
        candles.extend(builder.on_time(last_start + timedelta(days=1)))
    if progress is not None:
        progress(count)
    revisions = sum(1 for c in candles if c.revision)
    if revisions:
        logger.warning("%s: %s revised candles while building from bars", symbol, revisions)
    return CandleSeries(candles, builder.take_gaps(), builder.take_rejects(), count)
