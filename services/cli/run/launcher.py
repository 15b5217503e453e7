"""`tradealgo run` in the foreground: plan the stack, start it, show progress, stop it on Ctrl-C.

The stack itself (servers, simulator, supervisord) runs in a child process in its own session
(services.cli.run.stack), so the terminal's Ctrl-C reaches only this process, which then stops
the stack in order and waits for it. A second Ctrl-C while stopping kills the stack outright.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

from services.cli.errors import PROBLEM, USAGE, CliError
from services.cli.run.plan import RunPlan, strategies_summary
from services.cli.run.processes import kill_tree
from services.cli.run.progress import Progress, status_line
from services.cli.run.setup import Layout, endpoints_text, plan_run, supervisor_env
from services.cli.run.stack import StackSpec
from services.cli.run.terminal import Terminal
from services.cli.run.watch import StackWatcher
from services.cli.settings import RunSettings
from shared.localservers.process import die_with_parent

# Layout and supervisor_env are imported from here by tests/deploy (they live in setup.py).
__all__ = ["Launcher", "Layout", "hold_run_lock", "supervisor_env"]


class Launcher:
    def __init__(
        self,
        run: RunSettings,
        out: IO[str] = sys.stdout,
        simulator_overrides: dict[str, object] | None = None,
    ) -> None:
        self.run = run
        self.simulator_overrides = simulator_overrides
        self.term = Terminal(out, run.progress_log_interval_s)
        self.stop_requested = False
        self.stop_requested_at = 0.0
        self.force = False
        self.stack: subprocess.Popen[bytes] | None = None
        self.watcher: StackWatcher | None = None
        self.progress = Progress()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # A signal sent to the whole process group (make, timeout, a terminal) can reach us more
        # than once at the same moment: only a repeat a second later means "force".
        now = time.monotonic()
        if self.stop_requested and now - self.stop_requested_at >= 1.0:
            self.force = True
        if not self.stop_requested:
            self.stop_requested_at = now
        self.stop_requested = True

    def start(self) -> int:
        plan, where = plan_run(self.run, self.simulator_overrides)
        conf = (where.root / self.run.supervisord_conf).resolve()
        if not conf.is_file():
            raise CliError(f"supervisord configuration not found: {conf}", USAGE)
        endpoints = self.run.endpoints_file().resolve()
        for path in (where.log, where.run, where.spool):
            path.mkdir(parents=True, exist_ok=True)
        lock = hold_run_lock(where.run / "run.lock")
        try:
            return self._start(plan, where, conf, endpoints)
        finally:
            lock.close()

    def _start(self, plan: RunPlan, where: Layout, conf: Path, endpoints: Path) -> int:
        spec = StackSpec(
            root=str(where.root),
            python=sys.executable,
            var_dir=str(where.var),
            log_dir=str(where.log),
            state_dir=str(where.state),
            reset_state=plan.broker == "simulator" and self.run.reset_simulation,
            redis_port=plan.ports.redis,
            clickhouse_port=plan.ports.clickhouse,
            database=self.run.clickhouse_database,
            supervisord_conf=str(conf),
            service_env=supervisor_env(plan, where),
            simulator_env=plan.simulator_env,
            sim_rest_port=plan.ports.sim_rest,
            sim_paused=bool(plan.simulator_env),
            health_ports=plan.ports.metrics(),
            start_timeout_s=self.run.start_timeout_s,
            stop_timeout_s=self.run.stop_timeout_s,
            max_restarts=self.run.max_restarts,
            restart_window_s=self.run.restart_window_s,
        )
        spec_path = where.run / "stack.json"
        spec_path.write_text("")
        os.chmod(spec_path, 0o600)  # it may carry the simulator's (fake) account
        spec.dump(spec_path)
        self._banner(plan, where)
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            self.stack = subprocess.Popen(
                [sys.executable, "-m", "services.cli.run.stack", "--spec", str(spec_path)],
                cwd=str(where.root),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                start_new_session=True,  # the terminal's Ctrl-C must not reach the servers
                preexec_fn=die_with_parent,
            )
            return self._supervise(plan, where, endpoints)
        finally:
            endpoints.unlink(missing_ok=True)
            if self.watcher is not None:
                self.watcher.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _banner(self, plan: RunPlan, where: Layout) -> None:
        say = self.term.say
        say(f"TradeAlgo local run: broker {plan.broker.upper()} ({plan.why})")
        if plan.broker == "simulator":
            day = plan.day.isoformat() if plan.day else "the simulator's day"
            start = plan.start_time.strftime("%H:%M") if plan.start_time else ""
            speed = "as fast as possible" if not plan.speed else f"{plan.speed:g}x"
            say(f"  replaying {day} {start} IST at {speed}; Gatekeeper mode PAPER (no real orders)")
            capital = plan.service_env.get("GATEKEEPER_CAPITAL")
            if capital:
                say(
                    f"  capital: {float(capital):,.0f} rupees (the simulated account's opening cash)"
                )
            strategies = plan.service_env.get("CONSUMER_STRATEGIES")
            if strategies:
                say(f"  strategies: {strategies_summary(strategies)} (RUN_SIM_STRATEGIES)")
        else:
            say(f"  Gatekeeper mode {plan.mode.upper()} (from .env)")
            if plan.mode == "live":
                say("  LIVE: real orders with real money (GATEKEEPER_LIVE_CONFIRM is set)")
        say(f"  logs:    {where.log}/ (one file per service; run.log for the stack)")
        say(f"  state:   {where.state}/")
        for name, url in plan.metrics_urls().items():
            say(f"  metrics: {name:<10} {url}/metrics")
        say("  another terminal: tradealgo status | orders | positions | signals")
        say("  Ctrl-C stops everything.")

    def _supervise(self, plan: RunPlan, where: Layout, endpoints: Path) -> int:
        assert self.stack is not None and self.stack.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.stack.stdout, selectors.EVENT_READ)
        buffer = b""
        failed = ""
        stopped_clean: bool | None = None
        stop_sent_at: float | None = None
        next_poll = 0.0
        while True:
            for _key, _ in selector.select(timeout=0.2):
                chunk = os.read(self.stack.stdout.fileno(), 65536)
                if not chunk:
                    selector.unregister(self.stack.stdout)
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    event = _parse_event(raw)
                    if event is None:
                        continue
                    failed = failed or self._on_event(event, plan, where, endpoints)
                    if event["event"] == "stopped":
                        stopped_clean = bool(event.get("clean"))
            if self.stack.poll() is not None:
                break
            if (self.stop_requested or failed) and stop_sent_at is None:
                self._poll()  # the last events and numbers, while everything still runs
                self.term.end()
                self.term.say("stopping: services first, then the simulator, ClickHouse, Redis...")
                self.stack.send_signal(signal.SIGTERM)
                stop_sent_at = time.monotonic()
            if stop_sent_at is not None:
                overdue = time.monotonic() - stop_sent_at > 4 * self.run.stop_timeout_s + 30
                if self.force or overdue:
                    self.term.say("forcing: killing the stack")
                    kill_tree(self.stack.pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.stack.pid, signal.SIGKILL)
                    self.stack.wait()
                    break
                continue
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + self.run.progress_interval_s
                self._poll()
        code = self.stack.wait()
        self.term.end()
        p = self.progress
        self.term.say(
            f"stopped. {p.signals} signals, {p.orders} orders, {p.fills} filled"
            + (f", P&L {p.pnl:+,.2f}" if p.pnl is not None else "")
        )
        if failed:
            self.term.say(f"the run failed: {failed}; see {where.log}/run.log")
            return PROBLEM
        if code != 0 or stopped_clean is False:
            self.term.say(f"not everything stopped cleanly (exit {code}); see {where.log}/run.log")
            return PROBLEM
        return 0

    def _poll(self) -> None:
        if self.watcher is None:
            return
        self.progress, events = self.watcher.poll()
        for line in events:
            self.term.say(line)
        self.term.status(status_line(self.progress))

    def _on_event(
        self, event: dict[str, Any], plan: RunPlan, where: Layout, endpoints: Path
    ) -> str:
        """React to a stack event; returns a failure description or ''."""
        kind = event["event"]
        say = self.term.say
        if kind == "reset":
            say(f"fresh simulated state (RUN_RESET_SIMULATION=true): cleared {event['path']}")
        elif kind == "redis":
            say(f"redis       up at {event['url']}")
            self.watcher = StackWatcher(str(event["url"]), plan.metrics_urls(), timeout_s=2.0)
        elif kind == "clickhouse":
            say(
                f"clickhouse  up at 127.0.0.1:{event['port']} (database {self.run.clickhouse_database})"
            )
        elif kind == "simulator":
            say(f"simulator   up at http://127.0.0.1:{event['port']} (log {event['log']})")
        elif kind == "supervisord":
            say("services    starting under supervisord (per-service autorestart)")
            endpoints.touch(mode=0o600)
            endpoints.write_text(endpoints_text(plan, self.run.clickhouse_database))
        elif kind == "ready":
            say("services    ready: " + ", ".join(event.get("services", [])))
        elif kind == "replay":
            late = event.get("not_ready") or []
            why = f" (started anyway; not ready: {', '.join(late)})" if late else ""
            say(f"replay      clock started at {event.get('now') or '?'}{why}")
        elif kind == "slow":
            say(
                f"services    still not answering /healthz: {', '.join(event['waiting_for'])} "
                f"(see {where.log}/)"
            )
        elif kind == "service_exited":
            say(
                f"service     {event['name']} exited unexpectedly ({event['detail']}); supervisord "
                f"restarts it. Its log ends: {event['last']}"
            )
        elif kind == "orphans":
            say(f"stopped orphaned processes {event['stopped']}")
        elif kind == "stopping":
            say(f"stopping    {event['what']}")
        elif kind == "failed":
            return str(event.get("reason", "unknown failure"))
        return ""


def hold_run_lock(path: Path) -> IO[str]:
    """An exclusive lock on the var dir for the whole run (released when the file is closed or
    the process dies): a second run on the same state is refused before it touches anything."""
    handle = path.open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise CliError(f"tradealgo run is already running here ({owner})", PROBLEM) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()
    return handle


def _parse_event(raw: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None
