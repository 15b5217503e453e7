"""supervisord's log lines and the crash-loop rule of `tradealgo run`."""

from __future__ import annotations

import pytest

from services.cli.run.supervision import CrashWatch, SupervisorEvent, parse_supervisor_line

T = "2026-11-21 02:19:43,516 "


@pytest.mark.parametrize(
    ("line", "event"),
    [
        (T + "INFO spawned: 'producer' with pid 4544", SupervisorEvent("spawned", "producer", "4544")),
        (
            T + "INFO success: gatekeeper entered RUNNING state, process has stayed up for > than "
            "1 seconds (startsecs)",
            SupervisorEvent("running", "gatekeeper"),
        ),
        (
            T + "WARN exited: sentinel (exit status 1; not expected)",
            SupervisorEvent("exited", "sentinel", "exit status 1"),
        ),
        (
            T + "WARN exited: consumer (terminated by SIGSEGV (core dumped); not expected)",
            SupervisorEvent("exited", "consumer", "terminated by SIGSEGV (core dumped)"),
        ),
        (
            T + "INFO gave up: producer entered FATAL state, too many start retries too quickly",
            SupervisorEvent("fatal", "producer", "too many start retries too quickly"),
        ),
        (T + "WARN stopped: sentinel (exit status 1)", None),  # a stop we asked for
        (T + "INFO exited: consumer (exit status 0; expected)", None),
        (T + "INFO waiting for consumer to die", None),
    ],
)  # fmt: skip
def test_parse_supervisor_line(line: str, event: SupervisorEvent | None) -> None:
    assert parse_supervisor_line(line) == event


def test_crash_watch_stops_after_too_many_exits_within_the_window() -> None:
    watch = CrashWatch(max_exits=3, window_s=60.0)
    assert [watch.exited("producer", t) for t in (0.0, 10.0, 20.0)] == [None, None, None]
    assert watch.exited("sentinel", 25.0) is None  # counted per service
    reason = watch.exited("producer", 30.0)
    assert reason == "producer exited unexpectedly 4 times within 60 s (it crashes at start)"


def test_crash_watch_forgets_exits_older_than_the_window() -> None:
    watch = CrashWatch(max_exits=2, window_s=60.0)
    assert [watch.exited("gatekeeper", t) for t in (0.0, 50.0, 100.0, 150.0)] == [None] * 4
