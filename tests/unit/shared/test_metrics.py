"""BaseMetrics registers the shared tradealgo_ metrics against the registry it is given."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry, Counter

from shared.metrics import BaseMetrics


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.mark.parametrize(
    ("act", "name", "labels", "value"),
    [
        (lambda m: m.consumed("ta:ticks:0", 3), "tradealgo_messages_consumed_total",
         {"stream": "ta:ticks:0"}, 3.0),
        (lambda m: m.published("ta:candles"), "tradealgo_messages_published_total",
         {"stream": "ta:candles"}, 1.0),
        (lambda m: m.dead_lettered("ta:intents", "malformed"), "tradealgo_dead_letters_total",
         {"stream": "ta:intents", "reason_kind": "malformed"}, 1.0),
        (lambda m: m.set_halted(True), "tradealgo_halted", {}, 1.0),
        (lambda m: m.rows_written("ticks", 500), "tradealgo_clickhouse_rows_written_total",
         {"table": "ticks"}, 500.0),
        (lambda m: m.insert_failed("orders"), "tradealgo_clickhouse_insert_errors_total",
         {"table": "orders"}, 1.0),
        (lambda m: m.set_spool_rows(42), "tradealgo_spool_rows", {}, 42.0),
        (lambda m: m.alert_outcome("telegram", "sent"), "tradealgo_alerts_total",
         {"channel": "telegram", "outcome": "sent"}, 1.0),
        (lambda m: m.stopped(), "tradealgo_service_up", {}, 0.0),
    ],
)  # fmt: skip
def test_each_helper_moves_its_metric_with_the_service_label(
    act: Callable[[BaseMetrics], None], name: str, labels: dict[str, str], value: float
) -> None:
    registry = CollectorRegistry()
    metrics = BaseMetrics(registry, "consumer")
    act(metrics)
    assert sample(registry, name, service="consumer", **labels) == value


def test_a_new_service_starts_up_not_halted_with_an_empty_spool_and_build_info() -> None:
    registry = CollectorRegistry()
    BaseMetrics(registry, "sentinel", version="1.2.3")
    assert sample(registry, "tradealgo_service_up", service="sentinel") == 1.0
    assert sample(registry, "tradealgo_halted", service="sentinel") == 0.0
    assert sample(registry, "tradealgo_spool_rows", service="sentinel") == 0.0
    build = [s for m in registry.collect() if m.name == "tradealgo_build" for s in m.samples]
    assert build[0].labels["version"] == "1.2.3"
    assert build[0].labels["service"] == "sentinel"


def test_every_shared_metric_is_prefixed_tradealgo() -> None:
    registry = CollectorRegistry()
    BaseMetrics(registry, "producer")
    names = {m.name for m in registry.collect()}
    assert names
    assert all(n.startswith("tradealgo_") for n in names)


def test_registries_are_independent_so_each_test_gets_fresh_counters() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    BaseMetrics(first, "consumer").consumed("ta:ticks:0")
    BaseMetrics(second, "consumer")
    assert sample(first, "tradealgo_messages_consumed_total", service="consumer",
                  stream="ta:ticks:0") == 1.0  # fmt: skip
    assert sample(second, "tradealgo_messages_consumed_total", service="consumer",
                  stream="ta:ticks:0") is None  # fmt: skip


class GatekeeperLikeMetrics(BaseMetrics):
    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__(registry, "gatekeeper")
        self.denials = Counter(
            "tradealgo_risk_denials", "Intents denied", ["service", "rule"], registry=registry
        )


def test_a_service_subclass_adds_its_own_metrics_to_the_same_registry() -> None:
    registry = CollectorRegistry()
    metrics = GatekeeperLikeMetrics(registry)
    metrics.denials.labels(metrics.service, "max_loss").inc()
    metrics.consumed("ta:intents")
    assert sample(registry, "tradealgo_risk_denials_total", service="gatekeeper",
                  rule="max_loss") == 1.0  # fmt: skip
    assert sample(registry, "tradealgo_messages_consumed_total", service="gatekeeper",
                  stream="ta:intents") == 1.0  # fmt: skip


def test_two_metrics_objects_on_one_registry_is_an_error() -> None:
    registry = CollectorRegistry()
    BaseMetrics(registry, "consumer")
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        BaseMetrics(registry, "consumer")
