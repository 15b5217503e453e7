"""What to subscribe, resolved against the day's instruments (an IO adapter around the pure
`subscriptions` module): the explicit symbols and the spots from the Sentinel's Redis hash, the
options of each underlying, and the spot prices from a Kite quote, or, before the open when Kite
has none, from the Producer's own ticks of the spot.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from services.producer.adapters.instrument_source import RedisInstruments
from services.producer.adapters.kite_rest import KiteQuotes
from services.producer.settings import ProducerSettings
from services.producer.subscriptions import Subscription, resolve_subscription
from shared.clock import Clock, to_ist
from shared.messages import Tick

logger = logging.getLogger(__name__)


class SubscriptionResolver:
    def __init__(
        self,
        settings: ProducerSettings,
        instruments: RedisInstruments,
        quotes: KiteQuotes,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.instruments = instruments
        self.quotes = quotes
        self.clock = clock
        self._logged: tuple[str, ...] = ()

    async def resolve(self, token: str, last_tick: Mapping[int, Tick]) -> Subscription:
        """The subscription now; problems are logged once each time they change. Raises
        kite_rest.TokenRejected when Kite refuses the token."""
        s = self.settings
        spots = sorted(set(s.option_underlyings.values()))
        refs = await self.instruments.by_symbols([*s.instruments, *spots])
        options = {
            name: await self.instruments.options_of(s.option_exchange, name)
            for name in s.option_underlyings
        }
        quotes = await self.quotes.spots(token, spots) if spots else {}
        prices = {symbol: q.last_price for symbol, q in quotes.items() if q.last_price > 0}
        market_dates = [q.market_date for q in quotes.values() if q.market_date is not None]
        # Before the open Kite (or a replay) may have no quote yet: our own ticks of the spot
        # (streamed as an explicit instrument) centre the chain once they arrive.
        for symbol in spots:
            ref = refs.get(symbol)
            tick = last_tick.get(ref.instrument_token) if ref else None
            if symbol not in prices and tick is not None and tick.last_price > 0:
                prices[symbol] = tick.last_price
                market_dates.append(to_ist(tick.exchange_ts).date())
        # The exchange's date (a replayed day in the simulator), else ours.
        today = min(market_dates) if market_dates else to_ist(self.clock.now()).date()
        subscription = resolve_subscription(
            s.instruments, s.option_underlyings, refs, options, prices, today,
            s.option_strikes_each_side,
        )  # fmt: skip
        if subscription.problems != self._logged:
            for problem in subscription.problems:
                logger.error("subscription problem: %s", problem)
            self._logged = subscription.problems
        return subscription
