"""Readers for the files under deploy/: YAML, the metrics list, PromQL metric names, promtool.

Used by tests/deploy; `metrics_list()` is also what a scrape test of the running services reads.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"

# Series Prometheus itself makes: scrape health and the alert state.
BUILTIN_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS", "ALERTS_FOR_STATE"}
)
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Every PromQL function and aggregation (Prometheus 2.x); a name followed by "(" must be one.
PROMQL_FUNCTIONS = frozenset(
    """
    abs absent absent_over_time ceil changes clamp clamp_max clamp_min day_of_month day_of_week
    day_of_year days_in_month delta deriv exp floor histogram_quantile holt_winters hour idelta
    increase irate label_join label_replace ln log2 log10 minute month predict_linear rate resets
    round scalar sgn sort sort_desc sqrt time timestamp vector year avg_over_time min_over_time
    max_over_time sum_over_time count_over_time quantile_over_time stddev_over_time
    stdvar_over_time last_over_time present_over_time acos acosh asin asinh atan atanh cos cosh
    sin sinh tan tanh deg rad pi
    sum min max avg group stddev stdvar count count_values bottomk topk quantile
    """.split()  # noqa: SIM905 (a word list reads better than 80 quoted strings)
)
PROMQL_KEYWORDS = frozenset(
    "by without on ignoring group_left group_right bool and or unless offset atan2 inf nan".split()  # noqa: SIM905
)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def metrics_list(path: Path = DEPLOY / "metrics.txt") -> dict[str, str]:
    """deploy/metrics.txt as {name: type}."""
    names: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, kind, *_ = line.split()
            names[name] = kind
    return names


def recorded_names() -> set[str]:
    """Series the rule files record (tradealgo:...)."""
    names = set()
    for path in sorted(PROMETHEUS.glob("*.yml")):
        document = load_yaml(path)
        if isinstance(document, dict) and "groups" in document:
            names |= {
                rule["record"]
                for g in document["groups"]
                for rule in g["rules"]
                if "record" in rule
            }
    return names


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(series names, function names) an expression refers to.

    A small scanner, not a parser: strips comments, strings, label matchers, ranges and the
    label lists of by/without/on/ignoring/group_*, then reads the identifiers left.
    """
    text = re.sub(r"#[^\n]*", " ", expr)
    text = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', " ", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " 1 ", text)  # Grafana variables ($__rate_interval, ...)
    series: set[str] = set()
    functions: set[str] = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        word = match.group()
        if word.lower() in PROMQL_KEYWORDS:
            continue
        if text[match.end() :].lstrip().startswith("("):
            functions.add(word)
        else:
            series.add(word)
    return series, functions


def unknown_names(expr: str, known: dict[str, str], recorded: set[str]) -> list[str]:
    """Names in `expr` that are neither in the metrics list, recorded, built in nor functions."""
    series, functions = promql_names(expr)
    problems = [f"{name}()" for name in sorted(functions - PROMQL_FUNCTIONS)]
    for name in sorted(series):
        base = next((name[: -len(s)] for s in HISTOGRAM_SUFFIXES if name.endswith(s)), None)
        if name in recorded or name in BUILTIN_SERIES:
            continue
        if name in known and known[name] != "histogram":
            continue
        if base is not None and known.get(base) == "histogram":
            continue
        problems.append(name)
    return problems


def tool(name: str) -> str:
    """promtool or amtool; skips (make test installs them) or fails saying what to do."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found:
        return found
    installer = "deploy/tools/ensure-prometheus-tools.sh"
    if "ensure-prometheus-tools.sh" in (ROOT / "Makefile").read_text():
        pytest.skip(f"{name} is not installed; `make test` installs it ({installer})")
    pytest.fail(f"{name} is not installed: run {installer}")


def run_tool(name: str, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool(name), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def run_promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return run_tool("promtool", *args, cwd=cwd)
