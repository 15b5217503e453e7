"""Running the pre-market checks and applying their verdict (an IO adapter of the Sentinel).

The Sentinel hands in what it knows (the token and instruments results, pure); this adds the IO
probes (Redis, ClickHouse, public IP), publishes every check's state (metrics, CHECKS_KEY, log
lines on change) and applies the HALT decision through the HaltStore, alerting on HALT/RESUME.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from services.sentinel.adapters.halt_store import HaltStore
from services.sentinel.adapters.metrics import SentinelMetrics
from services.sentinel.adapters.probes import public_ip_result, reachable
from services.sentinel.checks import (
    CHECK_NAMES,
    SENTINEL_SOURCE,
    CheckResult,
    HaltState,
    checks_hash,
    halt_reasons,
)
from services.sentinel.settings import SentinelSettings
from shared.alerts import Alert, Alerter, Severity

logger = logging.getLogger(__name__)


class PremarketGate:
    def __init__(
        self,
        settings: SentinelSettings,
        redis: Any,
        clickhouse_ping: Callable[[], Awaitable[Any]],
        halts: HaltStore,
        metrics: SentinelMetrics,
        alerter: Alerter,
    ) -> None:
        self.settings = settings
        self.redis = redis
        self.clickhouse_ping = clickhouse_ping
        self.halts = halts
        self.metrics = metrics
        self.alerter = alerter
        self.results: dict[str, CheckResult] = {}

    async def probe(self) -> dict[str, CheckResult]:
        """The IO checks: Redis, ClickHouse, the public IP (concurrently)."""
        s = self.settings
        redis_result, clickhouse_result, ip_result = await asyncio.gather(
            reachable("redis", self.redis.ping, s.http_timeout_s),
            reachable("clickhouse", self.clickhouse_ping, s.http_timeout_s),
            public_ip_result(s.public_ip_url, s.static_ip, s.http_timeout_s),
        )
        return {"static_ip": ip_result, "redis": redis_result, "clickhouse": clickhouse_result}

    async def apply(self, results: dict[str, CheckResult], now: datetime) -> HaltState:
        """Publish the results and HALT / RESUME accordingly; returns the HALT state now."""
        for name in CHECK_NAMES:
            result = results[name]
            if self.results.get(name) != result:
                log = logger.info if result.ok else logger.warning
                log("pre-market check %s: %s", name, result.detail)
            self.metrics.premarket_check.labels(name).set(1 if result.ok else 0)
        self.results = results
        reasons = tuple(halt_reasons(results))
        try:
            await self.halts.write_checks(checks_hash(results))
            decision = await self.halts.apply(reasons, now)
            halt = await self.halts.read()
        except Exception as exc:  # Redis down: the HALT cannot be distributed; say so everywhere
            logger.error("cannot write the HALT state to Redis: %s: %s", type(exc).__name__, exc)
            self.metrics.set_halted(True)
            return HaltState(True, SENTINEL_SOURCE, reasons or ("redis: unreachable",))
        self.metrics.set_halted(halt.halted)
        if decision.action == "HALT":
            logger.warning("HALT: %s", "; ".join(decision.reasons))
            text = "\n".join(decision.reasons)
            await self.alerter.send(
                Alert(Severity.WARNING, "sentinel-halt", "Trading HALTED", text)
            )
        elif decision.action == "UPDATE":
            logger.warning("still HALTED, reasons now: %s", "; ".join(decision.reasons))
        elif decision.action == "RESUME":
            logger.info("RESUME: %s", decision.why)
            await self.alerter.send(
                Alert(Severity.INFO, "sentinel-resume", "Trading resumed", decision.why)
            )
        elif reasons and halt.halted and halt.source != SENTINEL_SOURCE:
            logger.info("checks failing, halt already held by %s", halt.source)
        return halt
