"""Process plumbing shared by the server launchers: free ports, child death, listen checks."""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Self

_PR_SET_PDEATHSIG = 1


class ServerError(RuntimeError):
    """A server could not be started or stopped; the message says why."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def die_with_parent() -> None:
    """preexec_fn: the child gets SIGTERM when the launching process dies (even by kill -9)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def listening_inodes(port: int) -> set[str]:
    """Socket inodes in LISTEN state on a TCP port (IPv4 and IPv6)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def owns_listener(pid: int, port: int) -> bool:
    """True when process `pid` itself holds the LISTEN socket on `port`."""
    inodes = listening_inodes(port)
    if not inodes:
        return False
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def wait_until_listening(
    proc: subprocess.Popen[bytes], port: int, timeout: float, describe: Callable[[], str]
) -> None:
    """Wait until `proc` owns the listener on `port`; raise with the child's own words if not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"exited with code {proc.returncode} before listening: {describe()}")
        if owns_listener(proc.pid, port):
            return
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise ServerError(f"not listening on port {port} after {timeout:.0f} s: {describe()}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """SIGTERM, wait, then SIGKILL if needed; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def tail(path: Path, lines: int = 3, prefer: tuple[str, ...] = ("Exception", "rror")) -> str:
    """The last lines of a log file for an error message, error lines first."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    errors = [line for line in text if any(word in line for word in prefer)]
    return " | ".join((errors or text)[-lines:]) or "(empty log)"


class LocalServer:
    """A server process on a loopback port, logging to `data_dir/<log_name>`, that dies with us.

    Subclasses say what to run (`command`), where (`cwd`), and how long a start may take."""

    label = "server"
    log_name = "server.log"
    start_timeout = 15.0
    stop_timeout = 10.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def cwd(self) -> Path | None:
        return None

    @property
    def log_path(self) -> Path:
        return self.data_dir / self.log_name

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float | None = None) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
                cwd=self.cwd(),
            )
        try:
            wait_until_listening(
                self._proc, self.port, timeout or self.start_timeout, lambda: tail(self.log_path)
            )
        except ServerError as exc:
            self._proc = None
            raise ServerError(f"{self.label} on port {self.port}: {exc}") from None
        return self

    def stop(self, timeout: float | None = None) -> int:
        """Graceful stop (SIGTERM); returns the exit code (0 when clean)."""
        if self._proc is None:
            return 0
        code = stop_process(self._proc, timeout or self.stop_timeout)
        self._proc = None
        return code

    def kill(self) -> None:
        """kill -9, for crash tests."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._proc = None
