"""The pure core stays pure: no IO library, no asyncio and no wall clock outside the IO shells.

STYLE.md: a service is `__main__.py` (composition root) + `service.py` (async shell) + small IO
adapters, and everything else is pure logic whose tests are plain tables. This test reads the
sources (it imports nothing) and fails on an IO import or a wall-clock read in a pure module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IO_MODULES = {
    "asyncio",
    "redis",
    "clickhouse_driver",
    "kiteconnect",
    "prometheus_client",
    "aiohttp",
}
IO_MODULES |= {"twisted", "autobahn", "requests", "socket", "subprocess", "threading", "chdb"}
WALL_CLOCK = {("datetime", "now"), ("datetime", "today"), ("date", "today"), ("time", "time")}
WALL_CLOCK |= {("time", "time_ns"), ("time", "monotonic"), ("datetime", "utcnow")}

# Modules allowed to do IO: composition roots, async shells and named adapters.
SHELL_NAMES = {"__main__.py", "service.py"}
IO_ALLOWED = {
    "shared/bus",
    "shared/store",
    "shared/localservers",
    "shared/metrics.py",
    "shared/health.py",
    "shared/alerts.py",
    "shared/logs.py",
    "shared/runtime.py",  # the composition roots' settings, logging and stop signals
    "shared/twisted_reactor.py",
    "shared/clock.py",  # SystemClock is the one place that reads the wall clock
    "services/cli",
    "services/simulator/server",
    "services/simulator/web",
    "services/simulator/app.py",
    "services/simulator/ws.py",
    "services/simulator/rest.py",
    "services/simulator/runner.py",
    "services/sentinel/kite_login.py",
    "services/sentinel/adapters",
    "services/producer/ticker.py",
    "services/producer/adapters",
    "services/consumer/adapters",
    "services/consumer/backtest/cli.py",
    "services/gatekeeper/broker.py",
    "services/gatekeeper/adapters",
}


def _is_io_allowed(path: Path) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return path.name in SHELL_NAMES or any(
        rel == allowed or rel.startswith(allowed + "/") for allowed in IO_ALLOWED
    )


def pure_modules() -> list[Path]:
    files = sorted((ROOT / "services").rglob("*.py")) + sorted((ROOT / "shared").rglob("*.py"))
    return [p for p in files if not _is_io_allowed(p)]


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in IO_MODULES:
                    found.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in IO_MODULES:
                found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.AsyncFunctionDef):
            found.append(f"line {node.lineno}: async def {node.name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if (name, node.func.attr) in WALL_CLOCK:
                found.append(f"line {node.lineno}: {name}.{node.func.attr}() reads the wall clock")
    return found


def test_there_are_pure_modules_to_check() -> None:
    assert len(pure_modules()) >= 10


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pure_module_has_no_io_and_no_wall_clock(path: Path) -> None:
    assert violations(path) == []


def test_the_checker_catches_an_io_import_and_a_wall_clock_read(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import redis\nfrom datetime import datetime\nasync def f():\n    return datetime.now()\n"
    )
    assert len(violations(bad)) == 3
