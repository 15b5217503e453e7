"""deploy/supervisord.conf: parsed by supervisor itself, then run for real with stand-in services.

The variables come from the launcher's own `supervisor_env`, so a variable the file needs and
the launcher stops setting fails here rather than in `make run`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from supervisor.datatypes import RestartUnconditionally
from supervisor.options import ServerOptions

from services.cli.run.launcher import Layout, supervisor_env
from shared.localservers.process import die_with_parent, stop_process
from tests.deploy.deploy_files import DEPLOY, ROOT

CONF = DEPLOY / "supervisord.conf"
SERVICES = ("sentinel", "producer", "gatekeeper", "consumer")  # start order


def launcher_env(tmp_path: Path, python: str = sys.executable) -> dict[str, str]:
    var = tmp_path / "var"
    where = Layout(
        root=ROOT,
        var=var,
        log=var / "log",
        run=var / "run",
        state=var / "state",
        spool=var / "spool",
    )
    plan: Any = SimpleNamespace(service_env={"REDIS_URL": "redis://127.0.0.1:1/0"})
    env = supervisor_env(plan, where)
    env["TRADEALGO_PYTHON"] = python
    for key in ("TRADEALGO_LOG_DIR", "TRADEALGO_RUN_DIR"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def test_the_file_uses_only_variables_the_launcher_sets(tmp_path: Path) -> None:
    used = set(re.findall(r"%\(ENV_([A-Z0-9_]+)\)s", CONF.read_text()))
    assert used and used <= set(launcher_env(tmp_path))


def parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServerOptions:
    for key, value in launcher_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    options = ServerOptions()
    options.realize(args=["-c", str(CONF)])
    return options


def test_supervisor_parses_it_into_the_four_services_in_start_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = sorted(parsed(tmp_path, monkeypatch).process_group_configs)
    assert [group.name for group in groups] == list(SERVICES)


@pytest.mark.parametrize("name", SERVICES)
def test_each_program_runs_its_module_restarts_and_logs_to_its_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    options = parsed(tmp_path, monkeypatch)
    (program,) = next(g for g in options.process_group_configs if g.name == name).process_configs
    assert program.command == f"{sys.executable} -m services.{name}"
    assert program.directory == str(ROOT)
    assert program.autorestart is RestartUnconditionally
    assert program.stdout_logfile == str(tmp_path / "var" / "log" / f"{name}.log")
    assert program.redirect_stderr and program.stopasgroup and program.killasgroup
    assert program.stopsignal == signal.SIGTERM
    assert program.stopwaitsecs >= 30


STAND_IN = """#!/bin/sh
# Stands in for python: prints how it was called, then waits like a service.
echo "started $* in $(pwd) with REDIS_URL=$REDIS_URL"
exec sleep 300
"""


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, str]]]:
    stand_in = tmp_path / "python"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    env = {**os.environ, **launcher_env(tmp_path, python=str(stand_in))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(CONF)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    try:
        yield proc, env
    finally:
        stop_process(proc, 30)


def wait_for(condition: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def log_lines(env: dict[str, str], name: str) -> list[str]:
    path = Path(env["TRADEALGO_LOG_DIR"]) / f"{name}.log"
    return path.read_text().splitlines() if path.exists() else []


def supervisorctl(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(CONF), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result.stdout


def test_supervisord_starts_every_service_restarts_a_dead_one_and_stops_them_all(
    running: tuple[subprocess.Popen[bytes], dict[str, str]],
) -> None:
    proc, env = running
    for name in SERVICES:
        wait_for(lambda name=name: log_lines(env, name))
        assert log_lines(env, name)[0] == (
            f"started -m services.{name} in {ROOT} with REDIS_URL=redis://127.0.0.1:1/0"
        )
    status = supervisorctl(env, "status")
    assert all(re.search(rf"^{name}\s", status, re.M) for name in SERVICES), status

    pid = int(supervisorctl(env, "pid", "gatekeeper").strip())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(log_lines(env, "gatekeeper")) == 2)  # autorestart
    assert int(supervisorctl(env, "pid", "gatekeeper").strip()) not in {0, pid}

    pids = [int(supervisorctl(env, "pid", name).strip()) for name in SERVICES]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
