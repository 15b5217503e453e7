"""Instruments and option chains for the engine (an IO adapter over Redis, ticks and Kite quotes).

Instruments come from the Sentinel's INSTRUMENTS_KEY hash, loaded on demand (the symbols of
intents, held positions and working orders) and cached. An option chain is built when an options
intent arrives and its chain is older than `chain_refresh_s`: the underlying's contracts of the
nearest expiries around the spot (chain_window), priced from the latest full-mode ticks when they
are fresh (the Producer streams the chains), else from one Kite quote call when a broker is set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from services.gatekeeper.adapters.kite_broker import Broker, BrokerRejected, BrokerUnavailable
from services.gatekeeper.instrument_rows import (
    chain_window,
    instrument_info,
    option_quote_from_kite,
    option_quote_from_tick,
)
from services.gatekeeper.options import OptionQuote
from services.gatekeeper.state import InstrumentInfo, OptionChain
from shared import constants as c
from shared.messages import Tick

logger = logging.getLogger(__name__)

SCAN_COUNT = 5000
DERIVATIVE_EXCHANGE = {"NSE": "NFO", "BSE": "BFO", "NFO": "NFO", "BFO": "BFO"}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisInstruments:
    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self._options: dict[tuple[str, str], list[InstrumentInfo]] = {}

    async def by_symbols(self, symbols: Iterable[str]) -> dict[str, InstrumentInfo]:
        keys = list(dict.fromkeys(symbols))
        if not keys:
            return {}
        values = await self.redis.hmget(c.INSTRUMENTS_KEY, keys)
        out: dict[str, InstrumentInfo] = {}
        for key, value in zip(keys, values, strict=True):
            if value is None:
                continue
            try:
                out[key] = instrument_info(value)
            except ValueError as exc:
                logger.warning("unusable instruments entry %s: %s", key, exc)
        return out

    async def options_of(self, exchange: str, name: str) -> list[InstrumentInfo]:
        """Every CE/PE of `name` on `exchange` (cached for the process: the dump is daily)."""
        cache_key = (exchange, name.upper())
        if cache_key in self._options:
            return self._options[cache_key]
        out: list[InstrumentInfo] = []
        async for _, value in self.redis.hscan_iter(
            c.INSTRUMENTS_KEY, match=f"{exchange}:{name}*", count=SCAN_COUNT
        ):
            try:
                info = instrument_info(value)
            except ValueError as exc:
                logger.warning("unusable instruments entry under %s:%s: %s", exchange, name, exc)
                continue
            if info.option_type is not None and (info.underlying or "").upper() == name.upper():
                out.append(info)
        self._options[cache_key] = out
        return out


async def build_chain(
    instruments: RedisInstruments,
    broker: Broker | None,
    last_ticks: Mapping[str, Tick],
    *,
    underlying: str,
    spot_exchange: str,
    spot: float,
    now: datetime,
    expiries: int,
    strikes_each_side: int,
    max_quote_age_s: float,
) -> tuple[OptionChain | None, dict[str, InstrumentInfo], str]:
    """The chain (None when nothing can be priced), the contracts' instruments, and how it was
    priced (for the log line)."""
    exchange = DERIVATIVE_EXCHANGE.get(spot_exchange, "NFO")
    options = await instruments.options_of(exchange, underlying)
    window = chain_window(options, spot, now, expiries, strikes_each_side)
    infos = {o.symbol: o for o in window}
    quotes: list[OptionQuote] = []
    missing: list[InstrumentInfo] = []
    for info in window:
        tick = last_ticks.get(info.symbol)
        fresh = tick is not None and (now - tick.exchange_ts).total_seconds() <= max_quote_age_s
        quote = option_quote_from_tick(info, tick) if fresh and tick is not None else None
        if quote is None:
            missing.append(info)
        else:
            quotes.append(quote)
    from_kite = 0
    if missing and broker is not None:
        try:
            data = await broker.quote([m.symbol for m in missing])
        except (BrokerRejected, BrokerUnavailable) as exc:
            logger.warning("option quotes for %s failed: %s", underlying, exc)
            data = {}
        for info in missing:
            row = data.get(info.symbol)
            quote = option_quote_from_kite(info, row) if row else None
            if quote is not None:
                quotes.append(quote)
                from_kite += 1
    how = (
        f"{len(window)} contracts of {underlying} around {spot}: {len(quotes) - from_kite} from "
        f"ticks, {from_kite} from a Kite quote, {len(window) - len(quotes)} unpriced"
    )
    if not quotes:
        return None, infos, how
    return OptionChain(underlying, tuple(quotes), now), infos, how
