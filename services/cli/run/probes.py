"""What the stack asks the running parts: supervisord's log, service endpoints, the simulator."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from services.cli.run.supervision import SupervisorEvent, parse_supervisor_line

logger = logging.getLogger("tradealgo.run.stack")


class LogFollower:
    """The supervisord events appended to its log since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = ""

    def skip_to_end(self) -> None:
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def new_events(self) -> list[SupervisorEvent]:
        try:
            with self.path.open("r", errors="replace") as log:
                log.seek(self.offset)
                text = log.read()
                self.offset = log.tell()
        except OSError:
            return []
        lines = (self.partial + text).split("\n")
        self.partial = lines.pop()
        return [e for e in map(parse_supervisor_line, lines) if e is not None]


def answers(port: int, path: str) -> bool:
    """The service on this loopback port answers GET `path` with 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1.0) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def _sim_call(url: str, body: bytes | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=2.0) as answer:
            doc = json.loads(answer.read())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        logger.warning("simulator control %s failed: %s", url, exc)
        return {}
    data = doc.get("data") if isinstance(doc, dict) else None
    return data if isinstance(data, dict) else {}


def sim_state(port: int) -> dict[str, Any]:
    """The simulator's /_sim/state (clock, connections...); {} when it does not answer."""
    return _sim_call(f"http://127.0.0.1:{port}/_sim/state")


def sim_clock(port: int, action: str) -> dict[str, Any]:
    """POST /_sim/clock {"action": action}; the new state, or {}."""
    return _sim_call(f"http://127.0.0.1:{port}/_sim/clock", json.dumps({"action": action}).encode())
