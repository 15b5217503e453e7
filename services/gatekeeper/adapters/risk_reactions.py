"""What the Gatekeeper does when its risk state changes (an IO adapter of the shell): the kill
switch trips (persisted, audited, HALT to every service, alerted, working entries cancelled,
positions flattened when configured) or is synced with its persisted hash (a CLI release), the
circuit breaker opens or closes, a reconciliation difference is found. Each one is a RiskEvent
in ClickHouse and on the risk events stream, and a log line with its reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from services.gatekeeper.adapters.journal import Journal
from services.gatekeeper.adapters.metrics import GatekeeperMetrics
from services.gatekeeper.adapters.order_desk import OrderDesk
from services.gatekeeper.adapters.redis_state import RedisState
from services.gatekeeper.exits import ExitDecision, flatten_decisions
from services.gatekeeper.halting import GATEKEEPER_SOURCE, halt_reason
from services.gatekeeper.risk.circuit_breaker import BreakerTransition
from services.gatekeeper.risk.kill_switch import sync_with_persisted
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.state import RiskState
from shared import constants as c
from shared.alerts import Alert, Alerter, Severity
from shared.bus import StreamBus
from shared.messages import Control, RiskEvent

logger = logging.getLogger(__name__)

Exits = Callable[[tuple[ExitDecision, ...], datetime], Awaitable[None]]


class RiskReactions:
    def __init__(
        self,
        settings: GatekeeperSettings,
        state: RiskState,
        redis_state: RedisState,
        bus: StreamBus,
        journal: Journal,
        alerter: Alerter,
        metrics: GatekeeperMetrics,
        spawn: Callable[[Awaitable[None]], None],
        exits: Exits,
    ) -> None:
        self.s = settings
        self.state = state  # the Gatekeeper's (replaced by the one restored at start)
        self.redis_state = redis_state
        self.bus = bus
        self.journal = journal
        self.alerter = alerter
        self.metrics = metrics
        self._spawn = spawn
        self._exits = exits
        self.desk: OrderDesk | None = None  # set once the Gatekeeper has started

    async def tripped(self, reason: str, now: datetime, exits: tuple[ExitDecision, ...]) -> None:
        """The kill switch just tripped: persist, audit, HALT everyone, alert, cancel, flatten."""
        switch = self.state.kill_switch.state
        await self.redis_state.save_kill_switch(switch)
        self.metrics.kill_switch.set(1)
        await self.risk(
            RiskEvent(
                event_id=f"kill-switch:{switch.tripped_at.isoformat() if switch.tripped_at else now}",
                kind="KILL_SWITCH_TRIPPED", reason=reason, ts=now,
                details={"mtm": switch.mtm_at_trip, "capital": self.s.capital},
            )
        )  # fmt: skip
        await self.halt(f"kill switch tripped: {reason}", now)
        self._spawn(
            self.alerter.send(
                Alert(Severity.CRITICAL, "kill-switch", "Kill switch tripped", reason)
            )
        )
        assert self.desk is not None
        await self.desk.cancel_working_entries(f"kill switch tripped: {reason}")
        if self.s.flatten_on_kill:
            await self._exits(exits or tuple(flatten_decisions(self.state.book, reason)), now)

    async def sync_kill_switch(self) -> None:
        """Adopt a CLI release (or another trip) from the hash; re-persist a trip Redis lost."""
        persisted = await self.redis_state.kill_switch()
        sync = sync_with_persisted(self.state.kill_switch.state, persisted)
        if sync.action == "adopt":
            logger.warning("kill switch from Redis adopted: %s", sync.reason)
            self.state.kill_switch.state = persisted
        elif sync.action == "persist":
            logger.error("kill switch: %s; writing it again", sync.reason)
            await self.redis_state.save_kill_switch(self.state.kill_switch.state)
        self.metrics.kill_switch.set(1 if self.state.kill_switch.tripped else 0)

    async def halt(self, reason: str, now: datetime) -> None:
        """HALT every service (HALT_KEY, then Control on the control stream)."""
        halt = await self.redis_state.write_halt(reason, now)
        self.state.halt_reason = halt_reason(halt)
        self.metrics.set_halted(True)
        control = Control(command="HALT", reason=reason, source=GATEKEEPER_SOURCE, ts=now)
        await self.bus.publish(c.CONTROL, control)
        logger.warning("HALT published: %s", reason)

    async def breaker_changed(self, transition: BreakerTransition, now: datetime) -> None:
        opened = transition.kind == "BREAKER_OPEN"
        self.metrics.breaker.set(1 if opened else 0)
        await self.risk(
            RiskEvent(
                event_id=uuid.uuid4().hex, kind=transition.kind, reason=transition.reason, ts=now
            )
        )
        severity = Severity.WARNING if opened else Severity.INFO
        title = "Circuit breaker open" if opened else "Circuit breaker closed"
        self._spawn(self.alerter.send(Alert(severity, "breaker", title, transition.reason)))

    async def reconciliation(self, key: str, reason: str, now: datetime) -> None:
        logger.error("RECONCILIATION %s: %s", key, reason)
        await self.risk(
            RiskEvent(event_id=f"reconcile:{key}:{now.isoformat()}", kind="RECONCILIATION",
                      reason=reason, ts=now, details={"key": key})
        )  # fmt: skip
        self._spawn(
            self.alerter.send(Alert(Severity.WARNING, f"reconcile:{key}", "Reconciliation", reason))
        )

    async def risk(self, event: RiskEvent | None) -> None:
        """A RiskEvent into ClickHouse and onto the risk events stream."""
        if event is None:
            return
        self.journal.risk_event(event)
        await self.bus.publish(c.RISK_EVENTS, event)
