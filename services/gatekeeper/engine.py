"""The risk engine: `evaluate(intent, state, now) -> Decision`, synchronous and pure of IO.

NautilusTrader's RiskEngine shape: the async shell feeds intents, ticks and broker outcomes into a
`RiskState` and publishes what comes out; backtest, paper and live share this code.

evaluate: a duplicate is denied (flagged `duplicate`, the original decision stands); the kill
switch is checked against the book's MTM; the planner (planner.py) applies the rules and builds
the child orders; then the order rate: when the limiter has room for all slices the intent is
Approved, else it is Queued (exits ahead of entries, never expiring) or Denied when the queue is
full. `drain` later decides queued intents (fully re-planned at that moment: fresh prices, the
kill switch) or expires them with a reason. An intent id is decided exactly once.

The position monitor: `on_tick` marks to market, checks the kill switch and the ticked position's
exits; `check_positions` runs every few seconds for time-based exits. Exit decisions become exit
intents (`exit_intents`) that go through `evaluate` like any other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from services.gatekeeper.decisions import Approved, Decision, Denied, MonitorOutcome, Queued
from services.gatekeeper.exits import ExitDecision, exit_decision, exit_intent, flatten_decisions
from services.gatekeeper.planner import OrderPlan, OrderPlanner
from services.gatekeeper.positions import Position
from services.gatekeeper.risk import rules
from services.gatekeeper.risk.intent_queue import QueuedIntent
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.state import Quote, RiskState
from shared.messages import OrderIntent, Tick

logger = logging.getLogger(__name__)

_NOTHING = MonitorOutcome(None, ())


class RiskEngine:
    def __init__(
        self, settings: GatekeeperSettings, market_open: Callable[[datetime], bool]
    ) -> None:
        self.settings = settings
        self.planner = OrderPlanner(settings, market_open)

    # -- intents ---------------------------------------------------------------------------

    def evaluate(self, intent: OrderIntent, state: RiskState, now: datetime) -> Decision:
        """Decide one intent (see the module docstring)."""
        if intent.intent_id in state.queue:
            return Denied(intent, (f"intent {intent.intent_id} is already queued",), True)
        duplicate = rules.already_decided(intent.intent_id, state.decided)
        if duplicate is not None:
            return Denied(intent, (duplicate,), duplicate=True)
        tripped = self.check_kill_switch(state, now)
        decision = self._decide(intent, state, now, None)
        assert decision is not None, "a fresh intent is always decided or queued"
        self._log(decision)
        if tripped is None:
            return decision
        return replace(decision, tripped=tripped)

    def drain(self, state: RiskState, now: datetime) -> list[Decision]:
        """Decide queued intents the rate now allows; expire entries that waited too long."""
        decisions: list[Decision] = []
        for expired in state.queue.expire(now.timestamp()):
            state.decided.add(expired.intent.intent_id)
            decisions.append(Denied(expired.intent, (expired.reason,)))
        self.check_kill_switch(state, now)
        while state.queue.peek() is not None:
            item = state.queue.pop()
            decision = self._decide(item.intent, state, now, item)
            if decision is None:
                break
            decisions.append(decision)
        for decision in decisions:
            self._log(decision)
        return decisions

    def retry_in_s(self, state: RiskState, now: datetime) -> float | None:
        """Seconds until `drain` can make progress; None when nothing is queued."""
        head = state.queue.peek()
        if head is None:
            return None
        now_s = now.timestamp()
        wait = state.limiter.next_available(now_s) - now_s
        if not head.is_exit:
            wait = min(wait, head.queued_at + state.queue.max_wait_s - now_s)
        return max(wait, 0.0)

    def _decide(
        self, intent: OrderIntent, state: RiskState, now: datetime, queued: QueuedIntent | None
    ) -> Decision | None:
        plan = self.planner.plan(intent, state, now)
        symbol = plan.orders[0].symbol if isinstance(plan, OrderPlan) else intent.symbol
        if isinstance(plan, Denied):
            state.decided.add(intent.intent_id)
            self._exit_not_sent(state, intent, queued)
            return plan
        now_s = now.timestamp()
        n = len(plan.orders)
        ahead = state.queue.peek()
        blocked = queued is None and ahead is not None and (ahead.is_exit or not plan.is_exit)
        if not blocked and state.limiter.try_acquire(now_s, n):
            state.decided.add(intent.intent_id)
            if plan.is_exit and queued is None:
                state.book.exit_sent(symbol, intent.intent_id)
            if not plan.is_exit:
                state.breaker.order_sent(now_s)
            return Approved(
                intent, plan.orders, plan.terms, plan.reasons, plan.is_exit, plan.remainder
            )
        if queued is not None:
            state.queue.requeue(queued)
            return None
        retry_at = state.limiter.next_available(now_s, n)
        if retry_at == float("inf"):
            state.decided.add(intent.intent_id)
            self._exit_not_sent(state, intent, None)
            return Denied(intent, (f"{n} orders at once can never fit the broker's rate caps",))
        refusal = state.queue.push(intent, now_s, plan.is_exit)
        if refusal is not None:
            state.decided.add(intent.intent_id)
            return Denied(intent, (refusal,))
        if plan.is_exit:
            state.book.exit_sent(symbol, intent.intent_id)
        why = "behind earlier queued intents" if blocked else "over the order rate"
        return Queued(intent, f"{n} orders {why}; retry in {max(retry_at - now_s, 0):.2f} s")

    def _exit_not_sent(
        self, state: RiskState, intent: OrderIntent, queued: QueuedIntent | None
    ) -> None:
        position = state.book.get(intent.symbol)
        if position is None or not position.is_open:
            return
        if queued is not None and position.exit_pending == intent.intent_id:
            state.book.exit_finished(intent.symbol)
        elif intent.is_exit and position.exit_pending is None:
            state.book.exit_denied(intent.symbol)

    # -- prices and the position monitor ---------------------------------------------------

    def check_kill_switch(self, state: RiskState, now: datetime) -> str | None:
        """Check the switch against the book's MTM; the reason only at the moment it trips."""
        was = state.kill_switch.tripped
        reason = state.kill_switch.check(state.book.mtm(), self.settings.capital, now)
        return reason if reason is not None and not was else None

    def on_tick(self, state: RiskState, tick: Tick, now: datetime) -> MonitorOutcome:
        """Mark to market, check the kill switch, and decide the ticked position's exit."""
        previous = state.quotes.get(tick.symbol)
        reference = previous.reference_price if previous is not None else None
        state.quotes[tick.symbol] = Quote(tick.last_price, tick.exchange_ts, reference)
        position = state.book.mark(tick.symbol, tick.last_price)
        if position is None:
            # Not held: this price cannot move the MTM, which was checked when it last moved
            # (a held instrument's tick, a fill, the periodic check): nothing to decide.
            return _NOTHING
        tripped = self.check_kill_switch(state, now)
        if tripped is not None and self.settings.flatten_on_kill:
            return MonitorOutcome(tripped, tuple(flatten_decisions(state.book, tripped)))
        decision = self._exit(position, now)
        return MonitorOutcome(tripped, (decision,) if decision is not None else ())

    def check_positions(self, state: RiskState, now: datetime) -> MonitorOutcome:
        """The periodic check (every position_check_interval_s): time-based exits and the switch."""
        tripped = self.check_kill_switch(state, now)
        if tripped is not None and self.settings.flatten_on_kill:
            return MonitorOutcome(tripped, tuple(flatten_decisions(state.book, tripped)))
        exits = (self._exit(p, now) for p in state.book.open_positions())
        return MonitorOutcome(tripped, tuple(d for d in exits if d is not None))

    def _exit(self, position: Position, now: datetime) -> ExitDecision | None:
        s = self.settings
        return exit_decision(
            position, now, s.square_off_time, s.exit_before_expiry_s, s.trailing_stop_pct
        )

    def exit_intents(
        self, state: RiskState, exits: tuple[ExitDecision, ...], now: datetime
    ) -> list[OrderIntent]:
        """The OrderIntents that carry out exit decisions (then `evaluate` each)."""
        intents = []
        for decision in exits:
            position = state.book.get(decision.symbol)
            if position is not None and position.is_open:
                intents.append(exit_intent(position, decision, now))
        return intents

    def _log(self, decision: Decision) -> None:
        intent = decision.intent
        if isinstance(decision, Approved):
            logger.info(
                "intent %s APPROVED: %s orders %s; %s",
                intent.intent_id,
                len(decision.orders),
                ", ".join(f"{o.side} {o.quantity} {o.symbol} @ {o.price}" for o in decision.orders),
                "; ".join(decision.reasons),
            )
        elif isinstance(decision, Denied):
            logger.info("intent %s DENIED: %s", intent.intent_id, decision.reason)
        else:
            logger.info("intent %s QUEUED: %s", intent.intent_id, decision.reason)
