"""The async shell around BatchWriters: flush them when due, replay spools, flush all at stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from shared.store.batch_writer import BatchWriter

logger = logging.getLogger(__name__)


async def run_flusher(
    writers: Sequence[BatchWriter], stop: asyncio.Event, interval_s: float
) -> None:
    """Every `interval_s`, flush each writer that is due (in a worker thread, the inserts block)
    and replay spools; when `stop` is set, flush everything once more and return."""
    try:
        while not stop.is_set():
            for writer in writers:
                await asyncio.to_thread(writer.flush_if_due)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
    finally:
        for writer in writers:
            rows = await asyncio.to_thread(writer.flush)
            logger.info("final flush of %s: %s rows", writer.table, rows)
