"""`tradealgo run` (what `make run` calls) end to end: a fresh var dir, the simulator replaying a
real NSE day, the four services in paper mode under supervisord; it waits for the FIRST PAPER
FILL (an OrderEvent COMPLETE in paper mode on ta:order_events), then sends SIGINT like a Ctrl-C and
checks that everything stopped: exit code 0, no process of the run left, every port free.

It needs all four services (services/{sentinel,producer,consumer,gatekeeper}/__main__.py),
deploy/supervisord.conf; until they exist it fails and says what is missing. It runs the default
demo strategy of simulator runs (RUN_SIM_STRATEGIES: the trend option seller on NIFTY 50, 15-minute
candles), whose first signal on 2024-08-08 is at 11:00 (SELL a NIFTY CE, filled by the simulator);
the replay starts 15 simulated minutes before it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from services.cli.run.processes import running
from shared import constants as c
from shared.bus import decode_entry
from shared.localservers.process import listening_inodes
from shared.messages import MessageError, OrderEvent

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
# 2024-08-08: the trend turns bearish on the 10:45 candle (closes 11:00): SELL a NIFTY CE.
DAY, START, SPEED = "2024-08-08", "10:45", "60"
FIRST_FILL_TIMEOUT_S = 240.0
STOP_TIMEOUT_S = 120.0


def descendants(pid: int) -> set[int]:
    """Every live process below `pid` (by parent links, across sessions and process groups)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


class Run:
    """The `tradealgo run` subprocess and what it printed."""

    def __init__(self, var: Path) -> None:
        self.var = var
        self.lines: list[str] = []
        args = [sys.executable, "-m", "services.cli.main", "run", "--broker", "simulator"]
        args += ["--day", DAY, "--start", START, "--speed", SPEED, "--var-dir", str(var)]
        env = {**os.environ, "RUN_PROGRESS_LOG_INTERVAL_S": "5", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self) -> str:
        return "\n".join(self.lines)

    def endpoints(self) -> dict[str, str]:
        path = self.var / "run" / "endpoints.env"
        with contextlib.suppress(OSError):
            return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return {}

    def spec(self) -> dict[str, Any]:
        return dict(json.loads((self.var / "run" / "stack.json").read_text()))

    def ports(self) -> list[int]:
        spec = self.spec()
        ports = [spec["redis_port"], spec["clickhouse_port"], spec["sim_rest_port"]]
        return [p for p in ports + list(spec["health_ports"].values()) if p]

    def close(self) -> None:
        if self.proc.poll() is None:
            for pid in descendants(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    started = Run(tmp_path / "var")
    yield started
    started.close()


def first_paper_fill(redis_url: str) -> OrderEvent | None:
    client = redis.Redis.from_url(redis_url, socket_timeout=2)
    try:
        entries = client.xrange(c.ORDER_EVENTS)
    except redis.RedisError:
        return None
    finally:
        client.close()
    for _, fields in entries:
        with contextlib.suppress(MessageError):
            event = decode_entry(c.ORDER_EVENTS, fields)
            if (
                isinstance(event, OrderEvent)
                and event.mode == "paper"
                and event.status == "COMPLETE"
            ):
                return event
    return None


def missing_pieces() -> list[str]:
    pieces = [ROOT / "deploy" / "supervisord.conf"]
    pieces += [ROOT / "services" / name / "__main__.py" for name in
               ("sentinel", "producer", "consumer", "gatekeeper", "simulator")]  # fmt: skip
    return [str(p.relative_to(ROOT)) for p in pieces if not p.exists()]


def test_make_run_reaches_a_paper_fill_and_ctrl_c_stops_everything(run: Run) -> None:
    deadline = time.monotonic() + FIRST_FILL_TIMEOUT_S
    fill = None
    while fill is None and time.monotonic() < deadline:
        if run.proc.poll() is not None:
            pytest.fail(
                f"tradealgo run exited {run.proc.returncode} before a fill; missing: "
                f"{missing_pieces() or 'nothing'}\n{run.output()}"
            )
        url = run.endpoints().get("CLI_REDIS_URL")
        fill = first_paper_fill(url) if url else None
        if fill is None:
            time.sleep(1.0)
    assert fill is not None, (
        f"no paper fill within {FIRST_FILL_TIMEOUT_S:.0f} s; missing: "
        f"{missing_pieces() or 'nothing'}\n{run.output()}"
    )
    assert fill.filled_quantity > 0 and fill.average_price > 0

    tree = descendants(run.proc.pid)
    ports = run.ports()
    assert tree, "the run has no child processes"
    run.proc.send_signal(signal.SIGINT)
    code = run.proc.wait(timeout=STOP_TIMEOUT_S)
    assert code == 0, run.output()
    assert not [pid for pid in tree if running(pid)], f"left running: {tree}\n{run.output()}"
    assert all(not listening_inodes(port) for port in ports), run.output()
    assert not (run.var / "run" / "endpoints.env").exists()
    out = run.output()
    assert "order   COMPLETE" in out  # the fill was shown live
    assert "stopped." in out
