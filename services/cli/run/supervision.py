"""Reading supervisord's log for what happens to the services, and when to give up (pure).

supervisord restarts a crashed service (autorestart) forever when it lived past `startsecs`, so a
service that crashes at every start would loop silently; the stack reports every unexpected exit
with the end of the service's log, and stops the run when one service exits unexpectedly more
than `max_exits` times within `window_s`.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

EventKind = Literal["spawned", "running", "exited", "fatal"]

_PATTERNS: tuple[tuple[EventKind, re.Pattern[str]], ...] = (
    ("spawned", re.compile(r"INFO spawned: '(?P<name>[^']+)' with pid (?P<detail>\d+)")),
    ("running", re.compile(r"INFO success: (?P<name>\S+) entered RUNNING state")),
    (
        "exited",
        re.compile(r"WARN exited: (?P<name>\S+) \((?P<detail>.*); not expected\)"),
    ),
    ("fatal", re.compile(r"INFO gave up: (?P<name>\S+) entered FATAL state, (?P<detail>.*)$")),
)


@dataclass(frozen=True)
class SupervisorEvent:
    kind: EventKind
    name: str
    detail: str = ""


def parse_supervisor_line(line: str) -> SupervisorEvent | None:
    """The event in one line of supervisord's log, or None for anything else (expected exits on
    a stop, supervisord's own chatter)."""
    for kind, pattern in _PATTERNS:
        match = pattern.search(line)
        if match:
            return SupervisorEvent(kind, match.group("name"), match.groupdict().get("detail") or "")
    return None


@dataclass
class CrashWatch:
    """Unexpected exits per service in a sliding window of `window_s` seconds."""

    max_exits: int
    window_s: float
    _exits: dict[str, deque[float]] = field(default_factory=dict)

    def exited(self, name: str, at: float) -> str | None:
        """Record an unexpected exit at monotonic time `at`; the reason to stop, or None."""
        times = self._exits.setdefault(name, deque())
        times.append(at)
        while times and at - times[0] > self.window_s:
            times.popleft()
        if len(times) > self.max_exits:
            return (
                f"{name} exited unexpectedly {len(times)} times within {self.window_s:g} s "
                "(it crashes at start)"
            )
        return None
