"""The stack process of `tradealgo run`: servers and supervisord start in order and stop in
order, nothing is left running, and an orphaned service is stopped too.

Supervisord runs two stand-in programs (a tiny /healthz server): the real services are exercised
by tests/e2e/test_make_run.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from services.cli.run.processes import children, running
from services.cli.run.stack import StackSpec
from shared.localservers.process import listening_inodes
from tests.support import eventually_sync, free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

FAKE_SERVICE = textwrap.dedent(
    """
    import http.server, sys
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path in ("/healthz", "/ready") else 404)
            self.end_headers()
            self.wfile.write(b"ok")
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
    """
)
CONF = textwrap.dedent(
    """
    [supervisord]
    nodaemon=true
    logfile=%(ENV_TRADEALGO_LOG_DIR)s/supervisord-main.log
    pidfile=%(ENV_TRADEALGO_RUN_DIR)s/supervisord.pid
    [program:alpha]
    command=%(ENV_TRADEALGO_PYTHON)s %(ENV_FAKE)s %(ENV_ALPHA_PORT)s
    autorestart=true
    stopwaitsecs=10
    redirect_stderr=true
    stdout_logfile=%(ENV_TRADEALGO_LOG_DIR)s/alpha.log
    [program:beta]
    command=%(ENV_TRADEALGO_PYTHON)s %(ENV_FAKE)s %(ENV_BETA_PORT)s
    autorestart=true
    stopwaitsecs=10
    redirect_stderr=true
    stdout_logfile=%(ENV_TRADEALGO_LOG_DIR)s/beta.log
    """
)


class RunningStack:
    def __init__(self, proc: subprocess.Popen[str], spec: StackSpec) -> None:
        self.proc = proc
        self.spec = spec
        self.events: list[dict[str, Any]] = []

    def wait_for(self, event: str, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.events.append(json.loads(line))
            if self.events[-1]["event"] == event:
                return self.events[-1]
        raise AssertionError(f"no {event!r} event; got {self.events}")

    def ports(self) -> list[int]:
        return [self.spec.redis_port, self.spec.clickhouse_port, *self.spec.health_ports.values()]


CRASHING = textwrap.dedent(
    """
    [program:gamma]
    command=%(ENV_TRADEALGO_PYTHON)s -c "import sys, time; time.sleep(1.2); sys.exit('ImportError: boom')"
    autorestart=true
    startsecs=1
    redirect_stderr=true
    stdout_logfile=%(ENV_TRADEALGO_LOG_DIR)s/gamma.log
    """
)


@pytest.fixture(params=["plain"])
def variant(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stack(tmp_path: Path, variant: str) -> Iterator[RunningStack]:
    with_simulator = variant == "simulator"
    fake = tmp_path / "fake_service.py"
    fake.write_text(FAKE_SERVICE)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(CONF + (CRASHING if variant == "crashing" else ""))
    var = tmp_path / "var"
    health = {"alpha": free_port(), "beta": free_port()}
    sim_port = free_port()
    spec = StackSpec(
        root=str(ROOT),
        python=sys.executable,
        var_dir=str(var),
        log_dir=str(var / "log"),
        state_dir=str(var / "state"),
        reset_state=True,
        redis_port=free_port(),
        clickhouse_port=free_port(),
        database="tradealgo",
        supervisord_conf=str(conf),
        service_env={
            "TRADEALGO_PYTHON": sys.executable,
            "TRADEALGO_LOG_DIR": str(var / "log"),
            "TRADEALGO_RUN_DIR": str(var / "run"),
            "FAKE": str(fake),
            "ALPHA_PORT": str(health["alpha"]),
            "BETA_PORT": str(health["beta"]),
        },
        health_ports=health,
        start_timeout_s=10.0 if with_simulator else 60.0,
        stop_timeout_s=15.0,
        max_restarts=2,
        restart_window_s=60.0,
    )
    if with_simulator:
        spec = replace(
            spec,
            simulator_env={"SIM_REST_PORT": str(sim_port), "SIM_WS_PORT": "0", "SIM_PAUSED": "true",
                           "SIM_SPEED": "60", "SIM_DAY": "2024-08-08", "SIM_START_TIME": "09:50"},
            sim_rest_port=sim_port,
            sim_paused=True,
        )  # fmt: skip
    (var / "run").mkdir(parents=True)
    spec_path = var / "run" / "stack.json"
    spec.dump(spec_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.run.stack", "--spec", str(spec_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    running_stack = RunningStack(proc, spec)
    yield running_stack
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


def program_pids(stack: RunningStack) -> list[int]:
    """The pids of the stand-in services (children of supervisord)."""
    supervisord = next(e["pid"] for e in stack.events if e["event"] == "supervisord")
    return children(supervisord)


def test_stack_starts_in_order_then_stops_everything_on_sigterm(stack: RunningStack) -> None:
    redis_event = stack.wait_for("redis")
    stack.wait_for("clickhouse")
    stack.wait_for("ready")
    assert [e["event"] for e in stack.events] == ["redis", "clickhouse", "supervisord", "ready"]
    client = redis.Redis.from_url(redis_event["url"])
    assert client.ping()
    client.close()
    programs = program_pids(stack)
    assert len(programs) == 2

    stack.proc.send_signal(signal.SIGTERM)
    stopped = stack.wait_for("stopped")
    assert stack.proc.wait(timeout=60) == 0
    assert stopped == {"event": "stopped", "clean": True, "problems": []}
    order = [e["what"] for e in stack.events if e["event"] == "stopping"]
    assert order == ["services", "clickhouse", "redis"]
    assert not any(running(pid) for pid in programs)
    assert all(not listening_inodes(port) for port in stack.ports())


def test_services_orphaned_by_a_killed_supervisord_are_stopped_too(stack: RunningStack) -> None:
    stack.wait_for("ready")
    programs = program_pids(stack)
    supervisord = next(e["pid"] for e in stack.events if e["event"] == "supervisord")
    os.kill(supervisord, signal.SIGKILL)  # its programs survive it, re-parented to the stack
    failed = stack.wait_for("failed")
    assert "supervisord" in failed["reason"] and "exited unexpectedly" in failed["reason"]
    stopped = stack.wait_for("stopped")
    assert stack.proc.wait(timeout=60) == 1
    assert any("orphaned" in problem for problem in stopped["problems"])
    eventually_sync(lambda: not any(running(pid) for pid in programs), timeout=10)
    assert all(not listening_inodes(port) for port in stack.ports())


@pytest.mark.parametrize("variant", ["simulator"], indirect=True)
def test_a_paused_simulator_is_started_once_the_services_are_ready_or_the_wait_is_over(
    stack: RunningStack,
) -> None:
    sim = stack.wait_for("simulator")
    assert sim["port"] == stack.spec.sim_rest_port
    stack.wait_for("ready")
    replay = stack.wait_for("replay", timeout=30)
    # nothing subscribed to the ticker (no Producer here): started anyway after the wait, saying so
    assert replay["not_ready"] == ["producer subscription"]
    assert replay["now"].startswith("2024-08-08T09:50")
    stack.proc.send_signal(signal.SIGTERM)
    stack.wait_for("stopped")
    assert stack.proc.wait(timeout=60) == 0
    order = [e["what"] for e in stack.events if e["event"] == "stopping"]
    assert order == ["services", "simulator", "clickhouse", "redis"]
    assert all(not listening_inodes(port) for port in [*stack.ports(), stack.spec.sim_rest_port])


@pytest.mark.parametrize("variant", ["crashing"], indirect=True)
def test_a_service_that_crashes_at_every_start_is_reported_then_stops_the_run(
    stack: RunningStack,
) -> None:
    exited = stack.wait_for("service_exited", timeout=60)
    assert exited["name"] == "gamma" and exited["detail"] == "exit status 1"
    assert "ImportError: boom" in exited["last"]
    failed = stack.wait_for("failed", timeout=60)
    assert failed["reason"] == "gamma exited unexpectedly 3 times within 60 s (it crashes at start)"
    stack.wait_for("stopped")
    assert stack.proc.wait(timeout=60) == 1
    assert all(not listening_inodes(port) for port in stack.ports())
