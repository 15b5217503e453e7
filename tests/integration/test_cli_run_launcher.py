"""`tradealgo run` in the foreground, with stand-in services under supervisord: the banner, the
endpoints file a second terminal's `tradealgo status` reads, Ctrl-C stopping everything with exit
code 0 and nothing left. The real services are exercised by tests/e2e/test_make_run.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.cli.run.processes import running
from shared.localservers.process import listening_inodes
from tests.e2e.test_make_run import descendants
from tests.support import eventually_sync

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

FAKE_SERVICE = textwrap.dedent(
    """
    import http.server, sys
    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            ok = self.path in ("/healthz", "/ready", "/metrics")
            self.send_response(200 if ok else 404)
            self.end_headers()
            self.wfile.write(b"ok" if self.path != "/metrics" else b"")
        def log_message(self, *args):
            pass
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
    """
)
PROGRAM = """
[program:{name}]
command=%(ENV_TRADEALGO_PYTHON)s {fake} %(ENV_{prefix}_METRICS_PORT)s
directory=%(ENV_TRADEALGO_HOME)s
autorestart=true
stopwaitsecs=10
redirect_stderr=true
stdout_logfile=%(ENV_TRADEALGO_LOG_DIR)s/{name}.log
"""


class Launched:
    def __init__(self, tmp: Path) -> None:
        fake = tmp / "fake_service.py"
        fake.write_text(FAKE_SERVICE)
        conf = tmp / "supervisord.conf"
        conf.write_text(
            "[supervisord]\nnodaemon=true\nlogfile=%(ENV_TRADEALGO_LOG_DIR)s/supervisord-main.log\n"
            "pidfile=%(ENV_TRADEALGO_RUN_DIR)s/supervisord.pid\n"
            + "".join(
                PROGRAM.format(name=name, prefix=name.upper(), fake=fake)
                for name in ("sentinel", "producer", "consumer", "gatekeeper")
            )
        )
        self.var = tmp / "var"
        self.env = {
            **os.environ,
            "RUN_SUPERVISORD_CONF": str(conf),
            "RUN_VAR_DIR": str(self.var),
            "RUN_START_TIMEOUT_S": "10",
            "RUN_PROGRESS_LOG_INTERVAL_S": "1",
            "PYTHONUNBUFFERED": "1",
        }
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "run", "--broker", "simulator",
             "--day", "2024-08-08", "--start", "09:45"],
            cwd=tmp, env={**self.env, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            for pid in descendants(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Launched]:
    run = Launched(tmp_path)
    yield run
    run.close()


def test_run_shows_where_things_are_serves_status_and_stops_cleanly_on_ctrl_c(
    launched: Launched, tmp_path: Path
) -> None:
    eventually_sync(lambda: launched.said("replay      clock started"), timeout=90,
                    message="\n".join(launched.lines))  # fmt: skip
    out = "\n".join(launched.lines)
    assert "broker SIMULATOR (RUN_BROKER=simulator)" in out
    assert "replaying 2024-08-08 09:45 IST at 60x; Gatekeeper mode PAPER" in out
    assert f"logs:    {launched.var / 'log'}/" in out
    assert "metrics: gatekeeper" in out
    assert "services    ready: consumer, gatekeeper, producer, sentinel" in out

    # A second terminal: `tradealgo status` finds the running stack through the endpoints file.
    status = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "status"],
        cwd=tmp_path, env={**launched.env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "sentinel    ready" in status.stdout, status.stdout + status.stderr
    assert status.returncode == 1  # stand-ins publish no token: "no Kite access token"
    assert "no Kite access token" in status.stdout

    tree = descendants(launched.proc.pid)
    spec_ports = [int(line.split(":")[-1].split("/")[0]) for line in
                  (launched.var / "run" / "endpoints.env").read_text().splitlines()
                  if line.startswith(("CLI_REDIS_URL", "CLI_SENTINEL_URL", "CLI_GATEKEEPER_URL"))]  # fmt: skip
    launched.proc.send_signal(signal.SIGINT)
    assert launched.proc.wait(timeout=120) == 0, "\n".join(launched.lines)
    launched.reader.join(timeout=5)
    out = "\n".join(launched.lines)
    assert "stopping    services" in out and "stopping    redis" in out
    assert "stopped. 0 signals, 0 orders, 0 filled" in out
    assert not [pid for pid in tree if running(pid)]
    assert all(not listening_inodes(port) for port in spec_ports)
    assert not (launched.var / "run" / "endpoints.env").exists()


def test_a_second_run_on_the_same_var_dir_is_refused(launched: Launched, tmp_path: Path) -> None:
    eventually_sync(lambda: launched.said("redis       up"), timeout=90,
                    message="\n".join(launched.lines))  # fmt: skip
    second = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "run", "--broker", "simulator"],
        cwd=tmp_path, env={**launched.env, "PYTHONPATH": str(ROOT)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert second.returncode == 1
    assert "tradealgo run is already running here" in second.stderr
