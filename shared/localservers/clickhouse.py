"""Launcher for the embedded ClickHouse 26.x server (see clickhouse_main)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from shared.localservers.process import (
    ServerError,
    die_with_parent,
    free_port,
    stop_process,
    tail,
    wait_until_listening,
)


class ClickHouseServer:
    """A real ClickHouse (native protocol) on 127.0.0.1 with its data under `data_dir`."""

    def __init__(self, data_dir: Path, port: int = 0, *, python: str | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._python = python or sys.executable
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "clickhouse.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 60.0) -> ClickHouseServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [self._python, "-m", "shared.localservers.clickhouse_main"]
        args += ["--data", str(self.data_dir / "data"), "--run-dir", str(self.data_dir / "run")]
        args += ["--port", str(self.port)]
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
            cwd=Path(__file__).resolve().parents[2],
        )
        log.close()
        try:
            wait_until_listening(self._proc, self.port, timeout, lambda: tail(self.log_path))
        except ServerError as exc:
            self._proc = None
            raise ServerError(f"ClickHouse on port {self.port}: {exc}") from None
        return self

    def stop(self, timeout: float = 30.0) -> int:
        """Graceful stop: SIGTERM kills the keep-alive query; returns the exit code (0 when clean)."""
        if self._proc is None:
            return 0
        code = stop_process(self._proc, timeout)
        self._proc = None
        return code

    def kill(self) -> None:
        """kill -9, for crash tests."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
