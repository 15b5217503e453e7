"""`tradealgo run` with Kite credentials: no simulator is started, the services use `.env`'s Kite
(here a Kite simulator started elsewhere stands in for it; no test ever reaches the real Kite) and
the Gatekeeper's mode as configured (logging-only by default), and Ctrl-C stops everything."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.cli.run.processes import running
from shared import constants as c
from tests.e2e.test_make_run import descendants
from tests.sim_fixtures import KiteSim
from tests.support import eventually_sync

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def kite_run(
    kite_sim: KiteSim, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    env = {
        **os.environ,
        "KITE_API_KEY": kite_sim.api_key,
        "KITE_API_SECRET": kite_sim.api_secret,
        "KITE_USER_ID": kite_sim.user_id,
        "KITE_PASSWORD": kite_sim.password,
        "KITE_TOTP_SECRET": kite_sim.totp_secret,
        "KITE_API_ROOT": kite_sim.rest_root,
        "KITE_LOGIN_ROOT": kite_sim.rest_root,
        "KITE_WS_ROOT": kite_sim.ws_root,
        "RUN_PROGRESS_LOG_INTERVAL_S": "5",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GATEKEEPER_MODE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli.main", "run", "--broker", "kite",
         "--var-dir", str(tmp_path / "var")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    yield proc, lines
    if proc.poll() is None:
        for pid in descendants(proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait()
    reader.join(timeout=5)
    assert proc.stdout is not None
    proc.stdout.close()


def test_run_against_kite_starts_no_simulator_logs_in_there_and_keeps_the_configured_mode(
    kite_run: tuple[subprocess.Popen[str], list[str]], kite_sim: KiteSim, tmp_path: Path
) -> None:
    proc, lines = kite_run
    said = lambda text: any(text in line for line in lines)  # noqa: E731
    eventually_sync(lambda: said("services    ready"), timeout=120, message="\n".join(lines))
    out = "\n".join(lines)
    assert "broker KITE (RUN_BROKER=kite)" in out
    assert "Gatekeeper mode LOGGING (from .env)" in out
    assert "simulator   up" not in out and "metrics: simulator" not in out
    assert "state:   " in out and str(tmp_path / "var" / "state" / "kite") in out

    endpoints = dict(
        line.split("=", 1)
        for line in (tmp_path / "var" / "run" / "endpoints.env").read_text().splitlines()
        if "=" in line
    )
    assert not any(name.startswith("KITE_") for name in endpoints)  # nothing of the account
    client = redis.Redis.from_url(endpoints["CLI_REDIS_URL"])
    try:
        eventually_sync(lambda: client.exists(c.ACCESS_TOKEN_KEY), timeout=60,
                        message="the Sentinel did not log in to the stand-in Kite")  # fmt: skip
        assert client.hget(c.SESSION_INFO_KEY, "user_id") == kite_sim.user_id.encode()
    finally:
        client.close()

    tree = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=120) == 0, "\n".join(lines)
    assert not [pid for pid in tree if running(pid)]


def test_live_mode_without_the_confirmation_is_refused_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from services.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KITE_API_KEY", "a-kite-key")
    monkeypatch.setenv("GATEKEEPER_MODE", "live")
    monkeypatch.delenv("GATEKEEPER_LIVE_CONFIRM", raising=False)
    assert main(["run", "--var-dir", str(tmp_path / "var")]) == 2
    assert 'live mode needs GATEKEEPER_LIVE_CONFIRM="I understand"' in capsys.readouterr().err
    assert not (tmp_path / "var").exists()
