"""The morning instruments dump: Kite -> Redis hashes and ClickHouse `instruments` (IO adapter).

Redis: both hashes are rebuilt under temporary names and RENAMEd over the live ones in one
transaction, so readers never see a half-written dump. ClickHouse: the rows go to `instruments`
(with the dump date) through the sink the composition root provides.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.sentinel.adapters.kite_session import KiteSessionClient
from services.sentinel.instruments import (
    InstrumentDump,
    missing_freeze_quantities,
    normalise_dump,
    redis_hashes,
)
from shared import constants as c

logger = logging.getLogger(__name__)

REDIS_CHUNK = 5000


class InstrumentSink(Protocol):
    async def write_instruments(self, rows: Sequence[dict[str, Any]]) -> None:
        """Store one dump's rows in ClickHouse `instruments` (raises on failure)."""


@dataclass(frozen=True, slots=True)
class LoadedDump:
    rows: int
    rejected: int
    loaded_at: datetime
    clickhouse_error: str  # "" when written


class InstrumentLoader:
    def __init__(
        self,
        session_client: KiteSessionClient,
        redis: Any,
        sink: InstrumentSink,
        exchanges: Sequence[str],
        freeze: Mapping[str, int],
    ) -> None:
        self.session_client = session_client
        self.redis = redis
        self.sink = sink
        self.exchanges = tuple(exchanges)
        self.freeze = dict(freeze)

    async def load(self, access_token: str, now: datetime) -> LoadedDump:
        """Dump, normalise, publish to Redis, store in ClickHouse. Kite/Redis errors raise; a
        ClickHouse failure is reported in the result (Redis, which trading needs, is done)."""
        raw = await self.session_client.instruments(access_token, self.exchanges)
        dump: InstrumentDump = await asyncio.to_thread(normalise_dump, raw, self.freeze)
        for reason in dump.rejected[:20]:
            logger.warning("instrument row rejected: %s", reason)
        if len(dump.rejected) > 20:
            logger.warning("... and %d more rejected instrument rows", len(dump.rejected) - 20)
        missing = missing_freeze_quantities(dump.instruments, self.freeze)
        if missing:
            logger.warning("freeze quantities configured for underlyings without derivatives in "
                           "the dump: %s", ", ".join(missing))  # fmt: skip
        if not dump.instruments:
            raise ValueError(f"the instruments dump of {','.join(self.exchanges)} is empty")
        await self._publish(dump)
        rows = [i.row(now) for i in dump.instruments]
        error = ""
        try:
            await self.sink.write_instruments(rows)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.error("instruments not written to ClickHouse: %s", error)
        logger.info(
            "instruments dump loaded: %d instruments of %s (%d rejected)",
            len(dump.instruments),
            ",".join(self.exchanges) or "all exchanges",
            len(dump.rejected),
        )
        return LoadedDump(len(dump.instruments), len(dump.rejected), now, error)

    async def _publish(self, dump: InstrumentDump) -> None:
        by_key, by_token = redis_hashes(dump.instruments)
        tmp_key, tmp_tokens = f"{c.INSTRUMENTS_KEY}:loading", f"{c.INSTRUMENT_TOKENS_KEY}:loading"
        await self.redis.delete(tmp_key, tmp_tokens)
        for name, mapping in ((tmp_key, by_key), (tmp_tokens, by_token)):
            items = list(mapping.items())
            for start in range(0, len(items), REDIS_CHUNK):
                await self.redis.hset(name, mapping=dict(items[start : start + REDIS_CHUNK]))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rename(tmp_key, c.INSTRUMENTS_KEY)
            pipe.rename(tmp_tokens, c.INSTRUMENT_TOKENS_KEY)
            await pipe.execute()
