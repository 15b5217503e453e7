from __future__ import annotations

from collections.abc import Callable

import pytest

from services.producer.frame_buffer import Frame, FrameBuffer
from services.producer.settings import ProducerSettings
from services.producer.watchdog import (
    ConnectionView,
    find_stalls,
    instrument_staleness,
    seconds_since_last_tick,
)

DEFAULT_STALL = ProducerSettings().stall_seconds  # the default decision: 5 s


@pytest.mark.parametrize(
    ("started", "last_tick", "now", "market_open", "stalled"),
    [
        (0.0, 100.0, 104.9, True, False),
        (0.0, 100.0, 105.0, True, False),  # exactly 5 s: not yet
        (0.0, 100.0, 105.1, True, True),  # more than 5 s in market hours
        (0.0, 100.0, 500.0, False, False),  # closed market: quiet is normal
        (0.0, None, 4.0, True, False),  # a fresh connection gets a full window
        (0.0, None, 5.5, True, True),  # ... but never ticking at all is a stall
        (200.0, 100.0, 204.0, True, False),  # just reconnected: silence counts from the restart
        (200.0, 100.0, 205.5, True, True),
    ],
)
def test_a_connection_silent_beyond_the_default_5_s_in_market_hours_is_a_stall(
    started: float, last_tick: float | None, now: float, market_open: bool, stalled: bool
) -> None:
    assert DEFAULT_STALL == 5.0
    views = [ConnectionView("c0", started, last_tick)]
    stalls = find_stalls(views, now, market_open, DEFAULT_STALL)
    assert bool(stalls) is stalled
    if stalled:
        assert stalls[0].connection == "c0" and "forcing a reconnect" in stalls[0].reason


@pytest.mark.parametrize(
    ("silent_restarts", "quiet", "stalled"),
    [
        (0, 5.5, True),
        (1, 5.5, False),  # the replacement was silent too: wait 10 s this time
        (1, 10.5, True),
        (2, 19.0, False),
        (2, 20.5, True),
        (10, 60.5, True),  # capped at 60 s
        (10, 59.0, False),
    ],
)
def test_repeated_forced_reconnects_of_a_silent_feed_back_off_up_to_a_cap(
    silent_restarts: int, quiet: float, stalled: bool
) -> None:
    view = ConnectionView("c0", 100.0, None, silent_restarts)
    assert bool(find_stalls([view], 100.0 + quiet, True, 5.0, False, 60.0)) is stalled


def test_a_connection_that_delivered_ticks_gets_the_normal_window_again() -> None:
    view = ConnectionView("c0", 100.0, 101.0, silent_restarts=5)
    assert find_stalls([view], 106.5, True, 5.0, False, 60.0)


def test_the_watchdog_can_be_told_to_watch_outside_market_hours() -> None:
    views = [ConnectionView("c0", 0.0, 0.0)]
    assert find_stalls(views, 10.0, False, 5.0, watch_outside_market_hours=True)


def test_only_the_silent_connection_of_several_is_reported() -> None:
    views = [ConnectionView("c0", 0.0, 99.0), ConnectionView("c1", 0.0, 90.0)]
    assert [s.connection for s in find_stalls(views, 100.0, True, 5.0)] == ["c1"]


@pytest.mark.parametrize(
    ("view", "now", "seconds"),
    [
        (ConnectionView("c0", 0.0, 90.0), 100.0, 10.0),
        (ConnectionView("c0", 95.0, 90.0), 100.0, 10.0),  # the gauge shows the last tick ever
        (ConnectionView("c0", 95.0, None), 100.0, 5.0),
    ],
)
def test_seconds_since_last_tick_for_the_gauge(
    view: ConnectionView, now: float, seconds: float
) -> None:
    assert seconds_since_last_tick(view, now) == seconds


def test_a_quiet_strike_on_a_live_feed_is_stale_while_a_dead_feeds_instruments_are_not() -> None:
    views = {"live": ConnectionView("live", 0.0, 999.0), "dead": ConnectionView("dead", 0.0, 900.0)}
    connection_of = {1: "live", 2: "live", 3: "live", 4: "dead", 5: "dead"}
    last = {1: 999.0, 2: 900.0, 4: 900.0, 5: 900.0}  # 3 never ticked since the start at 0
    result = instrument_staleness(last, connection_of, views, 1000.0, 60.0, 5.0)
    assert (result.stale, result.dead) == (2, 2)
    assert set(result.examples) == {2, 3}


def test_after_a_reconnect_every_instrument_gets_a_fresh_staleness_window() -> None:
    views = {"c0": ConnectionView("c0", 980.0, 999.0)}
    result = instrument_staleness({1: 100.0}, {1: "c0"}, views, 1000.0, 60.0, 5.0)
    assert result.stale == 0


def recorder() -> tuple[list[int], Callable[[], None]]:
    calls: list[int] = []
    return calls, lambda: calls.append(1)


def frame(packets: int, tag: int = 0) -> Frame:
    return Frame("c0", packets.to_bytes(2, "big") + bytes([tag]) * 10, tag)


def test_the_buffer_wakes_a_waiting_publisher_once_not_per_frame() -> None:
    calls, wake = recorder()
    buffer = FrameBuffer(10, wake)
    assert buffer.arm() is False  # nothing yet: the publisher will wait
    buffer.put(frame(1))
    buffer.put(frame(1))
    assert calls == [1]
    assert buffer.arm() is True  # work is there: no wait, no wake needed
    assert [f.received_ns for f in buffer.drain(100)] == [0, 0]


def test_a_full_buffer_drops_the_oldest_frame_and_counts_frames_and_packets() -> None:
    _, wake = recorder()
    buffer = FrameBuffer(2, wake)
    for tag in (1, 2, 3):
        buffer.put(frame(7, tag))
    assert (buffer.dropped_frames, buffer.dropped_packets, buffer.frames_in) == (1, 7, 3)
    assert [f.received_ns for f in buffer.drain(100)] == [2, 3]


@pytest.mark.parametrize(("max_packets", "frames"), [(1, 1), (5, 1), (6, 2), (100, 3)])
def test_drain_takes_whole_frames_up_to_about_max_packets(max_packets: int, frames: int) -> None:
    _, wake = recorder()
    buffer = FrameBuffer(10, wake)
    for tag in range(3):
        buffer.put(frame(5, tag))
    assert len(buffer.drain(max_packets)) == frames
    assert len(buffer) == 3 - frames
