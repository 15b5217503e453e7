"""The process that owns the local stack: Redis, ClickHouse, the simulator and supervisord.

`tradealgo run` starts it in its own session, so a Ctrl-C in the terminal reaches only the
foreground command, which then asks this process (SIGTERM) to stop everything in order:
supervisord stops the services (per its stopwaitsecs), then the simulator, ClickHouse and Redis
stop. It is a child subreaper: a process that outlives its parent (a service orphaned by a
crashed supervisord) is re-parented here and stopped too, so nothing is left running. It dies
with the foreground command (PDEATHSIG), stopping in the same order.

Progress goes to stdout as JSON lines (`{"event": ...}`), read by the foreground command; the
details go to <var>/log/run.log.

    python -m services.cli.run.stack --spec <var>/run/stack.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from pydantic import SecretStr

from services.cli.run.probes import LogFollower, answers, sim_clock, sim_state
from services.cli.run.processes import become_subreaper, running, stop_orphans
from services.cli.run.supervision import CrashWatch, SupervisorEvent
from shared.localservers import ClickHouseServer, RedisServer, ServerError
from shared.localservers.process import die_with_parent, stop_process, tail, wait_until_listening
from shared.store import apply_migrations, connect_clickhouse

logger = logging.getLogger("tradealgo.run.stack")


@dataclass(frozen=True)
class StackSpec:
    """Everything the stack process needs (written as JSON by `tradealgo run`)."""

    root: str  # the repository: cwd of every program
    python: str
    var_dir: str
    log_dir: str
    state_dir: str  # redis/ and clickhouse/ live here
    reset_state: bool
    redis_port: int
    clickhouse_port: int
    database: str
    supervisord_conf: str
    service_env: dict[str, str]
    simulator_env: dict[str, str] = field(default_factory=dict)
    sim_rest_port: int = 0
    sim_paused: bool = False  # the simulator starts paused; its clock starts once all is ready
    health_ports: dict[str, int] = field(default_factory=dict)
    start_timeout_s: float = 120.0
    stop_timeout_s: float = 60.0
    max_restarts: int = 5
    restart_window_s: float = 120.0

    def dump(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> StackSpec:
        return cls(**json.loads(path.read_text()))


def emit(event: str, **fields: Any) -> None:
    """One JSON line for the foreground command."""
    print(json.dumps({"event": event, **fields}), flush=True)


class Stack:
    def __init__(self, spec: StackSpec) -> None:
        self.spec = spec
        state = Path(spec.state_dir)
        self.redis = RedisServer(state / "redis", spec.redis_port, persist=True)
        self.clickhouse = ClickHouseServer(state / "clickhouse", spec.clickhouse_port)
        self.simulator: subprocess.Popen[bytes] | None = None
        self.supervisord: subprocess.Popen[bytes] | None = None
        self.stop_requested = threading.Event()
        self.supervisor_log = LogFollower(Path(spec.log_dir) / "supervisord.log")

    # Start.

    def start(self) -> None:
        spec = self.spec
        state = Path(spec.state_dir)
        if spec.reset_state and state.exists():
            shutil.rmtree(state)
            emit("reset", path=str(state))
        for path in (spec.log_dir, spec.state_dir):
            Path(path).mkdir(parents=True, exist_ok=True)
        self.redis.start(timeout=spec.start_timeout_s)
        emit("redis", url=self.redis.url, pid=self.redis.pid, log=str(self.redis.log_path))
        self._check_stop()
        self.clickhouse.start(timeout=spec.start_timeout_s)
        applied = prepare_database(self.clickhouse.port, spec.database)
        emit("clickhouse", port=self.clickhouse.port, pid=self.clickhouse.pid, migrations=applied)
        self._check_stop()
        if spec.simulator_env:
            self.simulator = self._spawn(
                [spec.python, "-m", "services.simulator"], spec.simulator_env, "simulator"
            )
            log = Path(spec.log_dir) / "simulator.log"
            wait_until_listening(
                self.simulator, spec.sim_rest_port, spec.start_timeout_s, lambda: tail(log)
            )
            emit("simulator", port=spec.sim_rest_port, pid=self.simulator.pid, log=str(log))
        self._check_stop()
        self.supervisor_log.skip_to_end()  # only this run's lines (the log file is appended to)
        self.supervisord = self._spawn(
            [spec.python, "-m", "supervisor.supervisord", "-n", "-c", spec.supervisord_conf],
            spec.service_env,
            "supervisord",
        )
        emit("supervisord", pid=self.supervisord.pid, conf=spec.supervisord_conf)

    def _spawn(self, argv: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
        log_path = Path(self.spec.log_dir) / f"{name}.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                argv,
                cwd=self.spec.root,
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        logger.info("started %s (pid %s): %s", name, proc.pid, " ".join(argv))
        return proc

    def _check_stop(self) -> None:
        if self.stop_requested.is_set():
            raise InterruptedError("stop requested while starting")

    # Run.

    def wait(self) -> str | None:
        """Until a stop request (None) or a process of the stack died (its description).

        Meanwhile: report when every service answers /healthz; then, when the simulator was
        started paused, start its clock once every service is /ready and the Producer has
        subscribed (so the replay does not run ahead of a warming-up pipeline), or when
        `start_timeout_s` has passed, saying who was not ready."""
        spec = self.spec
        started = time.monotonic()
        phase = "services"
        slow_reported = False
        crashes = CrashWatch(spec.max_restarts, spec.restart_window_s)
        while not self.stop_requested.wait(0.5):
            for name, pid, alive in self._members():
                if not alive:
                    return f"{name} (pid {pid}) exited unexpectedly"
            for event in self.supervisor_log.new_events():
                failure = self._on_supervisor_event(event, crashes)
                if failure:
                    return failure
            overdue = time.monotonic() - started > spec.start_timeout_s
            if phase == "services":
                up = {n: answers(p, "/healthz") for n, p in spec.health_ports.items()}
                if all(up.values()):
                    emit("ready", services=sorted(up))
                    phase = "replay" if spec.simulator_env and spec.sim_paused else "running"
                elif overdue and not slow_reported:
                    emit("slow", waiting_for=sorted(n for n, ok in up.items() if not ok))
                    slow_reported = True
            elif phase == "replay":
                not_ready = [n for n, p in spec.health_ports.items() if not answers(p, "/ready")]
                state = sim_state(spec.sim_rest_port)
                subscribed = bool(state) and int(state.get("connections", 0)) > 0
                if not subscribed:
                    not_ready.append("producer subscription")
                if not not_ready or overdue:
                    state = sim_clock(spec.sim_rest_port, "resume")
                    emit("replay", now=state.get("now", ""), not_ready=sorted(not_ready))
                    phase = "running"
        return None

    def _on_supervisor_event(self, event: SupervisorEvent, crashes: CrashWatch) -> str | None:
        log = Path(self.spec.log_dir) / f"{event.name}.log"
        if event.kind == "exited":
            emit("service_exited", name=event.name, detail=event.detail, last=tail(log))
            return crashes.exited(event.name, time.monotonic())
        if event.kind == "fatal":
            return f"{event.name} gave up ({event.detail}): {tail(log)}"
        return None

    def _members(self) -> list[tuple[str, int | None, bool]]:
        out: list[tuple[str, int | None, bool]] = []
        for name, proc in (("supervisord", self.supervisord), ("simulator", self.simulator)):
            if proc is not None:
                out.append((name, proc.pid, proc.poll() is None))
        for name, server in (("redis", self.redis), ("clickhouse", self.clickhouse)):
            pid = server.pid
            if pid is not None:
                out.append((name, pid, running(pid)))
        return out

    def _server_pids(self) -> set[int]:
        pids = {self.redis.pid, self.clickhouse.pid}
        if self.simulator is not None:
            pids.add(self.simulator.pid)
        return {pid for pid in pids if pid is not None}

    # Stop, in order: services, simulator, ClickHouse, Redis; then any orphan.

    def stop(self) -> int:
        """Stop everything in order; 0 when every part stopped cleanly."""
        problems = []
        timeout = self.spec.stop_timeout_s
        if self.supervisord is not None:
            emit("stopping", what="services")
            code = stop_process(self.supervisord, timeout)
            if code != 0:
                problems.append(f"supervisord exited {code}")
            self.supervisord = None
        stray = stop_orphans(timeout, keep=self._server_pids())
        if stray:
            problems.append(f"stopped {len(stray)} orphaned process(es) {stray}")
        if self.simulator is not None:
            emit("stopping", what="simulator")
            code = stop_process(self.simulator, timeout)
            if code not in (0, -signal.SIGTERM):
                problems.append(f"simulator exited {code}")
            self.simulator = None
        emit("stopping", what="clickhouse")
        code = self.clickhouse.stop(timeout)
        if code != 0:
            problems.append(f"clickhouse exited {code}")
        emit("stopping", what="redis")
        code = self.redis.stop(timeout)
        if code != 0:
            problems.append(f"redis exited {code}")
        stray = stop_orphans(timeout, keep=set())
        if stray:
            problems.append(f"stopped {len(stray)} leftover process(es) {stray}")
        for problem in problems:
            logger.warning("stop: %s", problem)
        emit("stopped", clean=not problems, problems=problems)
        return 1 if problems else 0


def prepare_database(port: int, database: str) -> list[str]:
    """Create the database and apply the schema migrations (shared/schema, idempotent) before any
    service starts; returns the names of the migrations applied now."""
    client = connect_clickhouse("127.0.0.1", port, database, "default", SecretStr(""))
    try:
        return [f"{m.version:03d}_{m.name}" for m in apply_migrations(client)]
    finally:
        client.disconnect()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", required=True, type=Path)
    args = parser.parse_args(argv)
    spec = StackSpec.load(args.spec)
    Path(spec.log_dir).mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        filename=str(Path(spec.log_dir) / "run.log"),
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    become_subreaper()
    stack = Stack(spec)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logger.info("signal %s: stopping", signum)
        stack.stop_requested.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    failure: str | None = None
    try:
        stack.start()
        failure = stack.wait()
    except (ServerError, OSError, InterruptedError) as exc:
        failure = None if isinstance(exc, InterruptedError) else str(exc)
    except Exception as exc:  # anything else while starting: still stop what runs
        logger.exception("stack failed")
        failure = f"{type(exc).__name__}: {exc}"
    if failure:
        logger.error("stopping: %s", failure)
        emit("failed", reason=failure)
    code = stack.stop()
    return 1 if failure or code else 0


if __name__ == "__main__":
    sys.exit(main())
