"""Processes of the local stack: liveness from /proc, children, orphans, the subreaper flag."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36


def running(pid: int) -> bool:
    """The process exists and is not a zombie (reaping is left to whoever owns it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def children(pid: int) -> list[int]:
    """Live processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and state != "Z":
            found.append(int(entry))
    return found


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children, ...), parents first."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = [child for parent in frontier for child in children(parent)]
        found += below
        frontier = below
    return found


def kill_tree(pid: int) -> list[int]:
    """SIGKILL `pid` and everything below it. The services under supervisord run in process
    groups of their own, so killing the stack's group alone would orphan them."""
    tree = [pid, *descendants(pid)]
    for member in tree:
        _signal(member, signal.SIGKILL)
    return tree


def stop_orphans(timeout: float, keep: set[int]) -> list[int]:
    """SIGTERM, then SIGKILL, every child of this subreaper except `keep` (the servers it stops
    itself, in order): processes re-parented here because their parent died. Reaps them."""
    strays = [pid for pid in children(os.getpid()) if pid not in keep]
    for pid in strays:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_reap(p) for p in strays):
        time.sleep(0.1)
    for pid in strays:
        if _reap(pid):
            _signal(pid, signal.SIGKILL)
            while _reap(pid):
                time.sleep(0.05)
    return sorted(strays)


def _reap(pid: int) -> bool:
    """True while `pid` still runs; reaps it once it exited."""
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return running(pid)
    return waited == 0


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def become_subreaper() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1)
