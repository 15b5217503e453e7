"""The simulated clock shared by REST and the ticker: simulated epoch seconds from wall time.

Pure: the caller passes the wall (monotonic) time. Running at speed s, simulated time advances s
seconds per wall second. Speed 0 means "as fast as possible": time then moves only when the replay
driver jumps it to the next tick. Paused, it moves only when stepped or seeked.
"""

from __future__ import annotations


class ReplayClock:
    """Simulated epoch seconds as a function of the wall clock, with pause, speed and jumps."""

    def __init__(self, start_epoch: float, speed: float, paused: bool, wall: float) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (got {speed})")
        self._anchor_sim = start_epoch
        self._anchor_wall = wall
        self.speed = speed
        self.paused = paused

    @property
    def at_max_speed(self) -> bool:
        """True when the replay should run without waiting (speed 0, not paused)."""
        return not self.paused and self.speed == 0

    def now(self, wall: float) -> float:
        if self.paused or self.speed == 0:
            return self._anchor_sim
        return self._anchor_sim + (wall - self._anchor_wall) * self.speed

    def _rebase(self, wall: float) -> None:
        self._anchor_sim = self.now(wall)
        self._anchor_wall = wall

    def pause(self, wall: float) -> None:
        self._rebase(wall)
        self.paused = True

    def resume(self, wall: float) -> None:
        self._rebase(wall)
        self.paused = False

    def set_speed(self, speed: float, wall: float) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (got {speed})")
        self._rebase(wall)
        self.speed = speed

    def jump(self, epoch: float, wall: float) -> None:
        """Set the simulated time (a step, a seek, or the max-speed driver moving on)."""
        self._anchor_sim = epoch
        self._anchor_wall = wall

    def wall_delay_until(self, epoch: float, wall: float) -> float | None:
        """Wall seconds until simulated `epoch` at the current speed; None if time is not running."""
        if self.paused or self.speed == 0:
            return None
        return max(0.0, (epoch - self.now(wall)) / self.speed)
