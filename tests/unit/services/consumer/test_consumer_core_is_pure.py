"""The Consumer's core stays pure: no IO clients, no asyncio, no wall clock (STYLE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CONSUMER = Path(__file__).parents[4] / "services" / "consumer"
SHELL = {"service.py", "__main__.py"}  # the async shell and the composition root may do IO
FORBIDDEN_MODULES = (
    "redis",
    "clickhouse_driver",
    "kiteconnect",
    "prometheus_client",
    "asyncio",
    "aiohttp",
)
WALL_CLOCK = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
}

ADAPTERS = CONSUMER / "adapters"  # IO adapters (Redis, ClickHouse, Kite, Prometheus)

CORE = sorted(
    p for p in CONSUMER.rglob("*.py") if p.name not in SHELL and ADAPTERS not in p.parents
)


@pytest.mark.parametrize("path", CORE, ids=lambda p: str(p.relative_to(CONSUMER)))
def test_a_core_module_has_no_io_client_no_asyncio_and_no_wall_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
        assert not isinstance(node, ast.AsyncFunctionDef), f"{path.name}: async def {node.name}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name):
                assert (owner.id, node.func.attr) not in WALL_CLOCK, (
                    f"{path.name} reads the wall clock"
                )


def test_the_core_is_found() -> None:
    assert {p.name for p in CORE} >= {
        "candles.py",
        "indicators.py",
        "signals.py",
        "warmup.py",
        "engine.py",
    }
