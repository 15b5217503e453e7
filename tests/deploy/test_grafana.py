"""Grafana: provisioning files, the four dashboards as JSON, every PromQL name in the metrics list.

Grafana cannot run here; the dashboards are checked as the JSON Grafana provisions.
"""

from __future__ import annotations

import importlib.util
import json
from types import ModuleType
from typing import Any

import pytest

from tests.deploy.deploy_files import (
    DEPLOY,
    load_yaml,
    metrics_list,
    promql_names,
    recorded_names,
    unknown_names,
)

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = ("pipeline", "trading", "risk", "storage")
# What issue 7 asks each dashboard to show, as the series it must query.
REQUIRED_SERIES = {
    "pipeline": {
        "tradealgo_ticks_received_total",  # tick rate
        "tradealgo_tick_lag_seconds_bucket",
        "tradealgo_candle_close_delay_seconds_bucket",
        "tradealgo_stream_length",
        "tradealgo_stream_pending",
    },
    "trading": {
        "tradealgo_signals_total",
        "tradealgo_orders_total",  # orders and fills
        "tradealgo_pnl_rupees",
        "tradealgo_open_positions",
    },
    "risk": {"tradealgo_kill_switch_tripped", "tradealgo_limiter_tokens", "tradealgo_breaker_open"},
    "storage": {
        "tradealgo_clickhouse_rows_written_total",
        "tradealgo_clickhouse_insert_errors_total",
        "tradealgo_spool_rows",
    },
}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "grafana_dashboards", DEPLOY / "tools" / "grafana_dashboards.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboard(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((GRAFANA / "dashboards" / f"{name}.json").read_text())
    return document


def exprs(document: dict[str, Any]) -> list[str]:
    return [str(t["expr"]) for panel in document["panels"] for t in panel["targets"]]


def test_the_datasource_is_the_compose_prometheus_under_the_uid_the_dashboards_use() -> None:
    (source,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert source["type"] == "prometheus" and source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    for name in DASHBOARDS:
        for panel in dashboard(name)["panels"]:
            assert panel["datasource"] == {"type": "prometheus", "uid": source["uid"]}


def test_the_dashboard_provider_reads_the_directory_compose_mounts() -> None:
    (provider,) = load_yaml(GRAFANA / "provisioning" / "dashboards" / "tradealgo.yml")["providers"]
    grafana = load_yaml(DEPLOY / "docker-compose.yml")["services"]["grafana"]
    assert f"./grafana/dashboards:{provider['options']['path']}:ro" in grafana["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider['options']['path']}/pipeline.json"


def test_the_json_files_are_what_the_generator_writes() -> None:
    module = generator()
    for name in DASHBOARDS:
        committed = (GRAFANA / "dashboards" / f"{name}.json").read_text()
        assert committed == module.render(name), "run: python deploy/tools/grafana_dashboards.py"
    assert sorted(p.stem for p in (GRAFANA / "dashboards").glob("*.json")) == sorted(DASHBOARDS)


@pytest.mark.parametrize("name", DASHBOARDS)
def test_a_dashboard_is_well_formed_for_provisioning(name: str) -> None:
    document = dashboard(name)
    assert document["uid"] == f"tradealgo-{name}" and len(document["uid"]) <= 40
    assert document["title"] and document["panels"]
    ids = [panel["id"] for panel in document["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in document["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        covered = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(refs) == len(set(refs)) and all(t["expr"] for t in panel["targets"])


@pytest.mark.parametrize("name", DASHBOARDS)
def test_every_metric_a_dashboard_queries_is_in_the_metrics_list(name: str) -> None:
    known, recorded = metrics_list(), recorded_names()
    for expr in exprs(dashboard(name)):
        assert unknown_names(expr, known, recorded) == [], expr


@pytest.mark.parametrize("name", DASHBOARDS)
def test_each_dashboard_shows_what_it_is_for(name: str) -> None:
    used = set().union(*(promql_names(expr)[0] for expr in exprs(dashboard(name))))
    assert REQUIRED_SERIES[name] <= used


def test_the_metrics_list_names_only_tradealgo_series_with_known_types() -> None:
    known = metrics_list()
    assert len(known) >= 40
    for metric, kind in known.items():
        assert metric.startswith("tradealgo_"), metric
        assert kind in {"counter", "gauge", "histogram"}, metric
        assert metric.endswith("_total") == (kind == "counter"), metric
