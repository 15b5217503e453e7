"""1-minute bars from ClickHouse for the backtester (`tradealgo backtest --symbol ... --from --to`).

The bars of a symbol over a date range are the 1-minute candles the Consumer built (`candles`,
timeframe `minute`) together with the 1-minute Kite candles cached by warm-ups and backfills
(`historical_data`), one per minute: where both exist, Kite's wins (the exchange's own record, like
the warm-up's merge). As with a CSV file, bars outside 09:15-15:29 are left out and counted. The
instrument token comes from the Sentinel's `instruments` table, else from the stored candles.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from clickhouse_driver.errors import Error as ClickHouseError

from services.consumer.adapters.clickhouse_history import ClickHouseHistory
from services.consumer.backtest.bars import FIRST_BAR, LAST_BAR, Bar
from services.consumer.buckets import SessionsOf
from shared.clock import IST

logger = logging.getLogger(__name__)

_TOKEN_OF_INSTRUMENT = """
SELECT instrument_token FROM instruments FINAL
WHERE exchange = %(exchange)s AND tradingsymbol = %(tradingsymbol)s
ORDER BY refreshed_at DESC LIMIT 1
"""


class NoBarsError(ValueError):
    """The symbol has no 1-minute history in ClickHouse for the range."""


@dataclass
class ClickHouseBarSource:
    """Bars of one symbol over [start_date, end_date] (IST dates), read once."""

    symbol: str
    instrument_token: int
    rows: list[Bar]
    left_out: int = 0
    rows_read: int = field(default=0)

    def bars(self) -> Iterator[Bar]:
        self.rows_read = 0
        for bar in self.rows:
            self.rows_read += 1
            yield bar


def token_of(client: Any, symbol: str) -> int | None:
    """The instrument token of "EXCHANGE:TRADINGSYMBOL" (instruments table, else candles)."""
    exchange, _, tradingsymbol = symbol.partition(":")
    try:
        rows = client.execute(
            _TOKEN_OF_INSTRUMENT, {"exchange": exchange, "tradingsymbol": tradingsymbol}
        )
    except ClickHouseError as exc:  # no instruments table (the Sentinel never ran here)
        logger.info("instruments table not readable (%s); looking in candles", exc)
        rows = []
    if rows:
        return int(rows[0][0])
    return ClickHouseHistory(client).token_of(symbol)


def clickhouse_bars(
    client: Any, symbol: str, start_date: date, end_date: date, sessions_of: SessionsOf
) -> ClickHouseBarSource:
    """Load the bars of `symbol` for the dates [start_date, end_date] (ValueError with the
    reason when ClickHouse cannot answer or has no bars)."""
    if end_date < start_date:
        raise ValueError(f"--to {end_date} is before --from {start_date}")
    try:
        return _load(client, symbol, start_date, end_date, sessions_of)
    except ClickHouseError as exc:
        raise NoBarsError(f"ClickHouse could not read the history of {symbol}: {exc}") from None


def _load(
    client: Any, symbol: str, start_date: date, end_date: date, sessions_of: SessionsOf
) -> ClickHouseBarSource:
    token = token_of(client, symbol)
    if token is None:
        raise NoBarsError(f"{symbol}: no such instrument in ClickHouse (instruments, candles)")
    history = ClickHouseHistory(client)
    start = datetime.combine(start_date, time(), IST)
    end = datetime.combine(end_date + timedelta(days=1), time(), IST)
    by_start = {c.start: c for c in history.candles(token, "minute", start, end)}
    own = len(by_start)
    for candle in history.cached(token, symbol, "minute", start, end, sessions_of):
        by_start[candle.start] = candle
    bars: list[Bar] = []
    left_out = 0
    for when in sorted(by_start):
        c = by_start[when]
        if not FIRST_BAR <= when.astimezone(IST).time() <= LAST_BAR:
            left_out += 1
            continue
        bars.append(Bar(when.astimezone(IST), c.open, c.high, c.low, c.close, c.volume))
    if not bars:
        raise NoBarsError(
            f"{symbol} (token {token}): no 1-minute candles in ClickHouse from {start_date} to "
            f"{end_date} (candles, historical_data)"
        )
    logger.info("%s: %s bars from ClickHouse (%s built live, %s from Kite's history)",
                symbol, len(bars), own, len(by_start) - own)  # fmt: skip
    return ClickHouseBarSource(symbol, token, bars, left_out)
