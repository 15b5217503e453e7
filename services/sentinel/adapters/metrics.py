"""The Sentinel's Prometheus metrics (contract names), on an injected registry."""

from __future__ import annotations

from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.sentinel.checks import CHECK_NAMES
from services.sentinel.login_policy import LoginOutcome
from shared.metrics import PREFIX, BaseMetrics


class SentinelMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry, service: str = "sentinel") -> None:
        super().__init__(registry, service)
        self.token_valid = Gauge(
            f"{PREFIX}token_valid", "1 while the Kite access token validates", registry=registry
        )
        self.token_expiry_seconds = Gauge(
            f"{PREFIX}token_expiry_seconds",
            "Seconds until the access token expires (0: none or expired)",
            registry=registry,
        )
        self.logins = Counter(
            f"{PREFIX}logins", "Login attempts by outcome", ["outcome"], registry=registry
        )
        self.premarket_check = Gauge(
            f"{PREFIX}premarket_check", "1 pass / 0 fail per pre-market check", ["check"],
            registry=registry,
        )  # fmt: skip
        self.token_rejections = Counter(
            f"{PREFIX}token_rejections",
            "Token rejections reported by services (SessionEvent EXPIRED)",
            registry=registry,
        )
        self.instruments_loaded = Gauge(
            f"{PREFIX}instruments_loaded", "Instruments in the last dump", registry=registry
        )
        for name in CHECK_NAMES:
            self.premarket_check.labels(name).set(0)
        for outcome in get_args(LoginOutcome):  # every outcome scraped from the start (rate())
            self.logins.labels(outcome)
        self.token_valid.set(0)
