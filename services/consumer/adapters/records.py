"""What a partition's work leaves behind besides its streams: ClickHouse rows, metrics, logs.

Rows of a commit are added to the store right after it (the flusher's `_stored:` marks never
get ahead of the rows they vouch for); intents are counted and logged when their send returns,
and their rows travel with the next commit; closed candles are counted by what closed them,
with the bucket end -> close delay in the partition's market time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime

from prometheus_client import Counter

from services.consumer.adapters.commit import Published, Uncommitted
from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.adapters.store import ConsumerStore
from services.consumer.candles import RejectedTick
from shared.messages import Candle, OrderIntent

logger = logging.getLogger(__name__)


class PartitionRecords:
    """Rows, metrics and logs of one partition."""

    def __init__(
        self,
        partition: int,
        store: ConsumerStore,
        metrics: ConsumerMetrics,
        market_now: Callable[[], datetime | None],
    ) -> None:
        self.partition = partition
        self.store = store
        self.metrics = metrics
        self.market_now = market_now
        self._closed: dict[tuple[str, str], Counter] = {}

    def committed(self, work: Uncommitted, rejects: list[RejectedTick]) -> None:
        store, metrics = self.store, self.metrics
        store.add_candles(work.candles)
        store.add_signals(work.signals)
        store.add_intents(work.intents)
        store.add_gaps(work.gaps)
        store.add_dead_letters(work.dead_letters)
        for gap in work.gaps:
            metrics.candle_gaps.labels(gap.timeframe).inc(gap.buckets)
            logger.info("gap: %s %s had no tick in %s buckets %s..%s", gap.symbol, gap.timeframe,
                        gap.buckets, gap.start, gap.end)  # fmt: skip
        for reject in rejects:
            metrics.ticks_ignored.labels(reject_kind(reject.reason)).inc()
        if rejects:
            logger.info("partition %s: %s ticks made no candle (first: %s %s: %s)",
                        self.partition, len(rejects), rejects[0].tick.symbol,
                        rejects[0].timeframe, rejects[0].reason)  # fmt: skip
        for signal in work.signals:
            metrics.signals.labels(signal.strategy, signal.action).inc()

    def published(self, intents: list[OrderIntent], published: Published) -> None:
        metrics = self.metrics
        for intent, went_out in zip(intents, published.flags, strict=True):
            if went_out:
                metrics.intents_published.labels(intent.strategy).inc()
                logger.info("intent %s published: %s %s %s at %.2f (%s)", intent.intent_id,
                            intent.strategy, intent.side, intent.symbol,
                            intent.reference_price, intent.reason)  # fmt: skip
            else:
                metrics.intents_not_published.labels("duplicate").inc()
                logger.warning("intent %s not published: signal id already published before",
                               intent.intent_id)  # fmt: skip

    def closed(self, candles: Iterable[Candle], closed_by: str) -> None:
        metrics = self.metrics
        now = self.market_now()
        for candle in candles:
            if candle.revision:
                metrics.candle_revisions.labels(candle.timeframe).inc()
                logger.info("revised candle %s %s %s (revision %s, late tick)", candle.symbol,
                            candle.timeframe, candle.start, candle.revision)  # fmt: skip
                continue
            if candle.source != "live":
                continue
            key = (candle.timeframe, closed_by)
            counter = self._closed.get(key)
            if counter is None:
                counter = self._closed[key] = metrics.candles_closed.labels(*key)
            counter.inc()
            if now is not None:
                metrics.close_delay.observe(max(0.0, (now - candle.end).total_seconds()))


def reject_kind(reason: str) -> str:
    """The metric label of a rejected tick's reason."""
    for needle, kind in (("outside", "outside_session"), ("too late", "too_late"),
                         ("naive", "naive_timestamp"), ("not this builder", "wrong_instrument")):  # fmt: skip
        if needle in reason:
            return kind
    return "other"
