"""Forcing a stop kills the whole tree, even children that moved to process groups of their own."""

from __future__ import annotations

import subprocess

import pytest

from services.cli.run.processes import descendants, kill_tree, running
from tests.support import eventually_sync

pytestmark = pytest.mark.integration


def test_kill_tree_kills_grandchildren_in_their_own_process_group() -> None:
    # Like supervisord's programs: a grandchild in a new session/process group.
    parent = subprocess.Popen(
        ["/bin/sh", "-c", "setsid sleep 300 & sleep 300"], start_new_session=True
    )
    try:
        below = eventually_sync(
            lambda: len(descendants(parent.pid)) >= 2 and descendants(parent.pid)
        )
        assert isinstance(below, list)
        killed = kill_tree(parent.pid)
        assert set(below) <= set(killed)
        parent.wait(timeout=5)
        eventually_sync(lambda: not any(running(pid) for pid in below), message="tree gone")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
