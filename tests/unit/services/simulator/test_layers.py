"""The simulator's pure core imports no IO: only the shell (web/, service.py, runner.py,
__main__.py) touches asyncio, aiohttp or sockets."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[4] / "services" / "simulator"
SHELL = {"service.py", "runner.py", "__main__.py"}
FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "socket",
    "redis",
    "clickhouse_driver",
    "kiteconnect",
    "requests",
    "time",
}

CORE = sorted(p for p in PACKAGE.glob("*.py") if p.name not in SHELL)


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_core_is_not_empty() -> None:
    assert len(CORE) >= 15


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_a_core_module_imports_no_io_and_no_wall_clock(path: Path) -> None:
    assert imported_roots(path) & FORBIDDEN == set()


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_every_module_stays_small(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 400
