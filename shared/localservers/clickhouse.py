"""Launcher for the embedded ClickHouse 26.x server (see clickhouse_main)."""

from __future__ import annotations

import sys
from pathlib import Path

from shared.localservers.process import LocalServer


class ClickHouseServer(LocalServer):
    """A real ClickHouse (native protocol) on 127.0.0.1 with its data under `data_dir`."""

    label = "ClickHouse"
    log_name = "clickhouse.log"
    start_timeout = 60.0
    stop_timeout = 30.0  # SIGTERM kills the keep-alive query; the server waits for its clients

    def __init__(self, data_dir: Path, port: int = 0, *, python: str | None = None) -> None:
        super().__init__(data_dir, port)
        self._python = python or sys.executable

    def command(self) -> list[str]:
        args = [self._python, "-m", "shared.localservers.clickhouse_main"]
        args += ["--data", str(self.data_dir / "data"), "--run-dir", str(self.data_dir / "run")]
        return [*args, "--port", str(self.port)]

    def cwd(self) -> Path:
        return Path(__file__).resolve().parents[2]  # the repository: `-m shared...` resolves
