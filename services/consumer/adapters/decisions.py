"""What closed candles lead to: the strategies' signals and the intents to send.

- `decide`: the revision-0 candles (and backfilled ones, in time order) go to the strategy
  engine; a strategy that raises is logged and counted, its candle skipped, the partition goes on.
- `tradable`: signals decided on backfilled candles are recorded (the decision history equals an
  uninterrupted feed's) but not traded: their moment passed while the feed was down.
- `intents`: one intent per tradable signal, none while trading is halted (each withheld one
  logged with the halt reason and counted).
- `note`: candles no strategy runs on still pass the engine (its order guard stays current).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from services.consumer.adapters.metrics import ConsumerMetrics
from services.consumer.settings import ConsumerSettings
from services.consumer.signals import intent_from_signal
from services.consumer.strategy_engine import StrategyEngine
from shared.messages import Candle, OrderIntent, Signal

logger = logging.getLogger(__name__)


class Decider:
    """The strategy engine's decisions and their intents, with their metrics and logs."""

    def __init__(
        self,
        engine: StrategyEngine,
        metrics: ConsumerMetrics,
        settings: ConsumerSettings,
        halted: Callable[[], str | None],
    ) -> None:
        self.engine = engine
        self.metrics = metrics
        self.settings = settings
        self.halted = halted

    def decide(self, closed: list[Candle], backfilled: list[Candle]) -> list[Signal]:
        engine, metrics = self.engine, self.metrics
        feed = [x for x in closed if x.revision == 0]
        if backfilled:
            feed = sorted([*feed, *backfilled], key=lambda x: x.start)
        signals: list[Signal] = []
        for candle in feed:
            started = time.perf_counter()
            try:
                decided = engine.on_candle(candle)
            except Exception:  # a strategy's bug must not stall the partition
                metrics.strategy_errors.inc()
                logger.exception("strategies of %s %s failed on the %s candle; skipped",
                                 candle.symbol, candle.timeframe, candle.start)  # fmt: skip
                continue
            elapsed = time.perf_counter() - started
            names = engine.strategy_names(candle.symbol, candle.timeframe)
            for name in names:
                metrics.strategy_seconds.labels(name).observe(elapsed / len(names))
            signals.extend(decided)
        return signals

    def note(self, candles: list[Candle]) -> None:
        on_candle = self.engine.on_candle
        for candle in candles:
            if candle.revision == 0:
                on_candle(candle)

    def tradable(self, signals: list[Signal], backfilled: list[Candle]) -> list[Signal]:
        if not backfilled or not signals:
            return signals
        late = {(x.symbol, x.timeframe, x.start) for x in backfilled}
        tradable: list[Signal] = []
        for signal in signals:
            if (signal.symbol, signal.timeframe, signal.candle_start) in late:
                self.metrics.intents_not_published.labels("backfill").inc()
                logger.warning(
                    "signal %s %s %s %s on a backfilled candle %s: recorded, no intent (stale)",
                    signal.signal_id, signal.strategy, signal.action, signal.symbol,
                    signal.candle_start,
                )  # fmt: skip
            else:
                tradable.append(signal)
        return tradable

    def intents(self, signals: list[Signal]) -> list[OrderIntent]:
        if not signals:
            return []
        s = self.settings
        halt = self.halted()
        if halt is not None:
            for signal in signals:
                self.metrics.intents_not_published.labels("halted").inc()
                logger.warning(
                    "signal %s %s %s %s: intent withheld, trading is halted (%s)",
                    signal.signal_id, signal.strategy, signal.action, signal.symbol, halt,
                )  # fmt: skip
            return []
        return [
            intent_from_signal(
                signal,
                order_type=s.intent_order_type,
                product=s.option_intent_product if signal.underlying else s.intent_product,
            )
            for signal in signals
        ]
