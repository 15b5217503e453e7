"""The hand-over from the WebSocket (Twisted reactor) thread to the asyncio publisher.

The reactor thread must never block: `put` appends the raw frame to a bounded deque and, only
when the publisher is waiting, asks it to wake up (one `call_soon_threadsafe` per idle period, not
per frame). When the publisher falls `max_frames` behind, the OLDEST frame is dropped: the newest
prices matter most (risk needs current prices) and every dropped frame and packet is counted
(tradealgo_ticks_dropped_total, a warning log), never lost silently.

Thread safety: deque append/popleft are atomic under the GIL; the `_armed` flag is written by
both threads, and the protocol tolerates a spurious wake-up but never a missed one (the consumer
arms before it re-checks for emptiness).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from services.producer.packets import packet_count


class Frame(NamedTuple):
    connection: str
    payload: bytes
    received_ns: int


class FrameBuffer:
    def __init__(self, max_frames: int, wake: Callable[[], None]) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be >= 1 (got {max_frames})")
        self.max_frames = max_frames
        self._wake = wake
        self._frames: deque[Frame] = deque()
        self._armed = False
        self.frames_in = 0
        self.dropped_frames = 0
        self.dropped_packets = 0

    def put(self, frame: Frame) -> None:
        """Called on the reactor thread for every binary frame; O(1), never blocks."""
        frames = self._frames
        if len(frames) >= self.max_frames:
            try:
                oldest = frames.popleft()
            except IndexError:  # the publisher drained it meanwhile
                pass
            else:
                self.dropped_frames += 1
                self.dropped_packets += packet_count(oldest.payload)
        frames.append(frame)
        self.frames_in += 1
        if self._armed:
            self._armed = False
            self._wake()

    def arm(self) -> bool:
        """Called by the publisher before it waits; True when there is already work (no wait)."""
        self._armed = True
        return bool(self._frames)

    def drain(self, max_packets: int) -> list[Frame]:
        """Frames in arrival order until about `max_packets` packets (at least one frame)."""
        out: list[Frame] = []
        packets = 0
        frames = self._frames
        while frames and (not out or packets < max_packets):
            frame = frames.popleft()
            out.append(frame)
            packets += packet_count(frame.payload)
        return out

    def __len__(self) -> int:
        return len(self._frames)
