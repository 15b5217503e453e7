"""The order plan of one intent: rules, strike choice, price, size, slices (no rate, no state change).

An intent is an EXIT when it says so (`is_exit`) or when it is on the other side of an open
position without asking for more than that position (a SELL signal while long closes the long).
Exits skip the entry-only rules (kill switch, HALT, breaker, signal age, allow-lists, confidence, loss
limits, position count and size) but not market hours or pricing. Entries pass every rule, and
every failing reason is reported, not only the first.

Pricing: a MARKET intent becomes a LIMIT at LTP +- slippage (pricing.py) inside the price band
(the instrument's own band, else the F&O band around the reference price, else none for an
equity without circuit data); `allow_market_orders` sends MARKET with `market_protection` instead.
Sizing: sizing.py; options: the strike from the chain (options.py), stop and target from the
premium. An exit whose instrument is unknown is denied (the shell must load every held instrument).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from services.gatekeeper.decisions import Denied
from services.gatekeeper.options import (
    StrikeRules,
    StrikeWeights,
    expiry_at,
    option_exit_levels,
    select_strike,
)
from services.gatekeeper.orders import PlannedOrder, order_id_for, order_tag
from services.gatekeeper.positions import Position, PositionTerms
from services.gatekeeper.pricing import (
    LimitPrice,
    PriceBand,
    checked_limit_price,
    fno_price_band,
    market_protection_for,
    slippage_limit_price,
)
from services.gatekeeper.risk import rules
from services.gatekeeper.risk.sizing import max_slice_quantity, size_entry, slice_quantity
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.state import InstrumentInfo, Quote, RiskState
from shared.messages import OrderIntent, OrderType, Side


@dataclass(frozen=True)
class OrderPlan:
    """The child orders of one intent, with every reason that shaped them."""

    orders: tuple[PlannedOrder, ...]
    terms: PositionTerms | None
    reasons: tuple[str, ...]
    is_exit: bool
    remainder: int


class OrderPlanner:
    def __init__(
        self, settings: GatekeeperSettings, market_open: Callable[[datetime], bool]
    ) -> None:
        self.settings = settings
        self.market_open = market_open
        s = settings
        self.strike_rules = StrikeRules(
            min_volume=s.option_min_volume,
            min_oi=s.option_min_oi,
            strikes_around_atm=s.option_strikes_around_atm,
            target_delta=s.option_target_delta,
            rate=s.option_rate,
            expiry_time=s.option_expiry_time,
            min_time_to_expiry_s=s.exit_before_expiry_s,
        )
        self.weights = StrikeWeights(
            distance=s.option_weight_distance,
            delta=s.option_weight_delta,
            iv=s.option_weight_iv,
            liquidity=s.option_weight_liquidity,
            spread=s.option_weight_spread,
        )

    def _closing(self, intent: OrderIntent, state: RiskState) -> Position | None:
        position = state.book.get(intent.symbol)
        if position is None or not position.is_open:
            return None
        opposite = (position.quantity > 0) == (intent.side == "SELL")
        if opposite and (intent.quantity is None or intent.quantity <= abs(position.quantity)):
            return position
        return None

    def plan(self, intent: OrderIntent, state: RiskState, now: datetime) -> OrderPlan | Denied:
        """The plan, or the denial with every reason that applies."""
        s = self.settings
        closing = self._closing(intent, state)
        is_exit = intent.is_exit or closing is not None
        reasons: list[str | None] = [rules.market_closed(now, self.market_open)]
        if intent.order_type in ("SL", "SL-M"):
            reasons.append(f"order type {intent.order_type} is not supported by the Gatekeeper")
        if intent.quantity is not None and intent.quantity <= 0:
            reasons.append(f"quantity {intent.quantity} is not positive")
        if is_exit:
            if closing is None:
                reasons.append(f"no open position in {intent.symbol} for this exit to close")
            elif closing.exit_pending not in (None, intent.intent_id):
                reasons.append(f"exit {closing.exit_pending} is already in flight")
        else:
            position = state.book.get(intent.symbol)
            if (
                position is not None
                and position.is_open
                and (position.quantity > 0) == (intent.side == "SELL")
            ):
                reasons.append(f"would reverse the position of {position.quantity}: exit it first")
            reasons += [
                rules.kill_switch_tripped(state.kill_switch.state),
                rules.trading_halted(state.halt_reason),
                state.breaker.denial(now.timestamp()),
                rules.signal_too_old(
                    intent.created_at,
                    now,
                    s.signal_max_age_s(intent.timeframe),
                    s.max_clock_skew_s,
                ),
                rules.not_allowed(
                    intent.symbol,
                    self._underlying(intent, state),
                    s.allowed_symbols,
                    s.allowed_underlyings,
                ),
                rules.confidence_too_low(intent.confidence, s.min_confidence),
                rules.daily_loss_limit_reached(state.book.mtm(), s.capital, s.daily_loss_limit_pct),
            ]
        found = [r for r in reasons if r is not None]
        if found:
            return Denied(intent, tuple(found))
        if is_exit:
            assert closing is not None
            return self._plan_exit(intent, closing, state, now)
        return self._plan_entry(intent, state, now)

    @staticmethod
    def _underlying(intent: OrderIntent, state: RiskState) -> str | None:
        """The intent's underlying, else the instrument's (a future or option names its index)."""
        if intent.underlying is not None:
            return intent.underlying
        instrument = state.instruments.get(intent.symbol)
        return instrument.underlying if instrument is not None else None

    def _plan_exit(
        self, intent: OrderIntent, position: Position, state: RiskState, now: datetime
    ) -> OrderPlan | Denied:
        instrument = state.instruments.get(intent.symbol)
        if instrument is None:
            return Denied(intent, (f"unknown instrument {intent.symbol}",))
        held = abs(position.quantity)
        wanted = held if intent.quantity is None else min(intent.quantity, held)
        quantity = wanted - wanted % instrument.lot_size
        if quantity <= 0:
            return Denied(intent, (f"exit of {wanted} is less than one lot",))
        quote = state.quotes.get(intent.symbol)
        notes: list[str] = []
        if quote is None or rules.stale_quote(quote.ts, now, self.settings.max_quote_age_s):
            last = position.last_price or intent.reference_price
            notes.append(f"exit priced off the last known price {last} (no fresh quote)")
            quote = Quote(last, now)
        price = self._price(intent.side, intent.order_type, intent.limit_price, instrument, quote)
        if price.price is None and price.reason:
            return Denied(intent, (price.reason,))
        return self._slices(intent, instrument, quantity, price, None, [*notes, price.reason], True)

    def _plan_entry(
        self, intent: OrderIntent, state: RiskState, now: datetime
    ) -> OrderPlan | Denied:
        s = self.settings
        notes: list[str] = []
        symbol = intent.symbol
        underlying_price = intent.reference_price
        chain_quote = Quote(0.0, now)
        if intent.option_type is not None:
            chosen = self._choose_option(intent, state, now)
            if isinstance(chosen, Denied):
                return chosen
            symbol, underlying_price, chain_quote, why = chosen
            notes.append(why)
        instrument = state.instruments.get(symbol)
        if instrument is None:
            return Denied(intent, (f"unknown instrument {symbol}",))
        quote = state.quotes.get(symbol)
        if intent.option_type is not None and (quote is None or quote.ts < chain_quote.ts):
            quote = chain_quote
        position = state.book.get(symbol)
        held = abs(position.quantity) if position is not None else 0
        found = [
            r
            for r in (
                None if instrument.tradable else f"{symbol} is an index, not tradable",
                None
                if held
                else rules.too_many_positions(state.book.open_count(), s.max_concurrent_positions),
                rules.short_not_allowed(intent.product, intent.side == "SELL"),
                rules.stale_quote(quote.ts if quote else None, now, s.max_quote_age_s),
            )
            if r is not None
        ]
        if found or quote is None:
            return Denied(intent, tuple(found))
        price = self._price(intent.side, intent.order_type, intent.limit_price, instrument, quote)
        if price.price is None and price.reason:
            return Denied(intent, (price.reason,))
        entry = price.value if price.price is not None else quote.last_price
        stop: float | None
        target: float | None
        if instrument.option_type is not None:
            levels = option_exit_levels(
                intent.side,
                entry,
                s.option_stop_pct,
                s.option_target_multiple,
                instrument.tick_size,
            )
            stop, target = levels.stop_loss, levels.target
            notes.append(levels.reason)
        else:
            stop, target = intent.stop_loss, intent.target
        if stop is not None and (stop >= entry if intent.side == "BUY" else stop <= entry):
            return Denied(intent, (f"stop-loss {stop} is on the wrong side of entry {entry}",))
        per_unit = self._capital_per_unit(instrument, intent.side, entry, underlying_price)
        slice_cap = max_slice_quantity(instrument.lot_size, instrument.freeze_qty)
        sizing = size_entry(
            capital=s.capital,
            price=entry,
            lot_size=instrument.lot_size,
            risk_pct=s.risk_per_trade_pct,
            max_capital_pct=s.max_capital_per_trade_pct,
            stop_loss=stop,
            capital_per_unit=per_unit,
            requested=intent.quantity,
            max_quantity=None if slice_cap is None else slice_cap * s.max_slices,
        )
        if sizing.quantity == 0:
            return Denied(intent, (sizing.reason,))
        notes.append(sizing.reason)
        employed = (held + sizing.quantity) * per_unit
        found = [
            r
            for r in (
                rules.position_too_large(employed, s.capital, s.max_position_pct),
                rules.insufficient_margin(
                    sizing.quantity * per_unit,
                    state.available_margin,
                    s.mode == "live" and s.require_margin_check,
                ),
            )
            if r is not None
        ]
        if found:
            return Denied(intent, tuple(found))
        terms = PositionTerms(
            stop_loss=stop,
            target=target,
            trailing_stop_pct=s.trailing_stop_pct,
            expires_at=(
                expiry_at(instrument.expiry, s.option_expiry_time) if instrument.expiry else None
            ),
            product=intent.product,
            entry_intent_id=intent.intent_id,
        )
        return self._slices(
            intent, instrument, sizing.quantity, price, terms, [*notes, price.reason], False
        )

    def _choose_option(
        self, intent: OrderIntent, state: RiskState, now: datetime
    ) -> tuple[str, float, Quote, str] | Denied:
        assert intent.option_type is not None
        name = intent.underlying or intent.symbol.split(":", 1)[-1]
        chain = state.chains.get(name)
        if chain is None:
            return Denied(intent, (f"no option chain for {name}",))
        stale = rules.stale_quote(chain.ts, now, self.settings.max_quote_age_s)
        if stale is not None:
            return Denied(intent, (f"option chain of {name}: {stale}",))
        quote = state.quotes.get(intent.symbol)
        fresh = quote is not None and not rules.stale_quote(
            quote.ts, now, self.settings.max_quote_age_s
        )
        underlying = quote.last_price if fresh and quote is not None else intent.reference_price
        choice = select_strike(
            chain.quotes,
            underlying,
            intent.option_type,
            intent.side,
            now,
            self.strike_rules,
            self.weights,
        )
        if choice.chosen is None:
            return Denied(intent, (choice.reason,))
        chosen = choice.chosen.quote
        return chosen.symbol, underlying, Quote(chosen.ltp, chain.ts), choice.reason

    def _capital_per_unit(
        self, instrument: InstrumentInfo, side: str, price: float, underlying: float
    ) -> float:
        """Capital a unit ties up: the price paid, or the margin of a short option / future."""
        if not instrument.is_derivative or (instrument.option_type is not None and side == "BUY"):
            return price
        if instrument.margin_per_lot:
            return instrument.margin_per_lot / instrument.lot_size
        base = underlying if instrument.option_type is not None else price
        return base * self.settings.short_option_margin_pct / 100

    def _band(self, instrument: InstrumentInfo, quote: Quote) -> PriceBand | None:
        if instrument.price_band is not None:
            return instrument.price_band
        if instrument.is_derivative:
            s = self.settings
            reference = quote.reference_price or quote.last_price
            return fno_price_band(
                reference, s.fno_band_premium_threshold, s.fno_band_pct, s.fno_band_abs
            )
        return None

    def _price(
        self,
        side: Side,
        order_type: OrderType,
        limit: float | None,
        instrument: InstrumentInfo,
        quote: Quote,
    ) -> LimitPrice:
        """LIMIT price, or (None, "") for a MARKET order still sent as MARKET."""
        band = self._band(instrument, quote)
        if order_type == "LIMIT" and limit is not None:
            return checked_limit_price(side, limit, instrument.tick_size, band)
        if self.settings.allow_market_orders:
            return LimitPrice(None, "")
        return slippage_limit_price(
            side, quote.last_price, self.settings.slippage_pct, instrument.tick_size, band
        )

    def _slices(
        self,
        intent: OrderIntent,
        instrument: InstrumentInfo,
        quantity: int,
        price: LimitPrice,
        terms: PositionTerms | None,
        notes: list[str],
        is_exit: bool,
    ) -> OrderPlan | Denied:
        slicing = slice_quantity(
            quantity, instrument.lot_size, instrument.freeze_qty, self.settings.max_slices
        )
        if not slicing.slices or (slicing.remainder and not is_exit):
            return Denied(intent, (slicing.reason,))
        order_type: OrderType = "LIMIT" if price.price is not None else "MARKET"
        protection = market_protection_for(order_type, self.settings.market_protection)
        side = intent.side
        n = len(slicing.slices)
        orders = tuple(
            PlannedOrder(
                order_id=order_id_for(intent.intent_id, i),
                intent_id=intent.intent_id,
                slice_no=i,
                slices=n,
                tag=order_tag(intent.intent_id, i),
                symbol=instrument.symbol,
                instrument_token=instrument.instrument_token,
                side=side,
                quantity=q,
                order_type=order_type,
                price=price.value if price.price is not None else None,
                product=intent.product,
                is_exit=is_exit,
                market_protection=protection,
            )
            for i, q in enumerate(slicing.slices, start=1)
        )
        reasons = tuple(n for n in (*notes, slicing.reason) if n)
        return OrderPlan(orders, terms, reasons, is_exit, slicing.remainder)
