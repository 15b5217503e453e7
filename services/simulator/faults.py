"""Injected faults: what the control endpoint (or settings) asked the simulator to get wrong.

Durations are wall seconds (resilience is about real time); `wall` is passed in. One-shot actions
(drop the WebSocket, expire tokens, reject the next N orders) are returned by `apply` for the shell
to carry out; lasting conditions are kept here and queried per request or per frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.simulator.errors import InputError

KNOWN_FAULTS = {
    "drop_websocket": bool,  # close every ticker connection abruptly (clients reconnect)
    "stall_ticks_s": float,  # send no ticks for this long, sockets stay open
    "stall_heartbeats": bool,  # with stall_ticks_s: send no heartbeats either
    "expire_token": bool,  # every access token dies now (REST 403, ticker 403)
    "rate_limit_s": float,  # answer every API request with 429 for this long
    "reject_orders": int,  # reject the next N orders
    "slow_ms": float,  # delay every REST response by this much...
    "slow_for_s": float,  # ...for this long (0 or absent: until cleared with slow_ms 0)
    "clear": bool,  # end every lasting fault
}


@dataclass(frozen=True, slots=True)
class FaultActions:
    drop_websocket: bool
    expire_token: bool
    reject_orders: int


@dataclass(slots=True)
class Faults:
    rate_limited_until: float = 0.0
    stalled_until: float = 0.0
    stall_heartbeats: bool = False
    slow_s: float = 0.0
    slow_until: float = 0.0

    def apply(self, request: Mapping[str, Any], wall: float) -> FaultActions:
        """Validate and apply a control request; InputError names an unknown or bad field."""
        unknown = set(request) - set(KNOWN_FAULTS)
        if unknown:
            raise InputError(f"unknown faults {sorted(unknown)}; known: {sorted(KNOWN_FAULTS)}")
        values: dict[str, Any] = {}
        for name, value in request.items():
            kind = KNOWN_FAULTS[name]
            if kind is bool and not isinstance(value, bool):
                raise InputError(f"fault {name} must be true or false")
            if kind is not bool:
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise InputError(f"fault {name} must be a number >= 0")
                if kind is int and value != int(value):
                    raise InputError(f"fault {name} must be a whole number")
            values[name] = value
        if values.get("clear"):
            self.rate_limited_until = self.stalled_until = self.slow_until = 0.0
            self.slow_s = 0.0
        if "rate_limit_s" in values:
            self.rate_limited_until = wall + values["rate_limit_s"]
        if "stall_ticks_s" in values:
            self.stalled_until = wall + values["stall_ticks_s"]
            self.stall_heartbeats = bool(values.get("stall_heartbeats", False))
        if "slow_ms" in values:
            self.slow_s = values["slow_ms"] / 1000.0
            duration = values.get("slow_for_s", 0)
            self.slow_until = wall + duration if duration else math.inf
        return FaultActions(
            bool(values.get("drop_websocket", False)),
            bool(values.get("expire_token", False)),
            int(values.get("reject_orders", 0)),
        )

    def rate_limited(self, wall: float) -> bool:
        return wall < self.rate_limited_until

    def ticks_stalled(self, wall: float) -> bool:
        return wall < self.stalled_until

    def heartbeats_stalled(self, wall: float) -> bool:
        return self.stall_heartbeats and wall < self.stalled_until

    def response_delay(self, wall: float) -> float:
        return self.slow_s if wall < self.slow_until else 0.0

    def describe(self, wall: float) -> dict[str, float | bool]:
        return {
            "rate_limited_for_s": max(0.0, self.rate_limited_until - wall),
            "ticks_stalled_for_s": max(0.0, self.stalled_until - wall),
            "heartbeats_stalled": self.heartbeats_stalled(wall),
            "slow_ms": self.response_delay(wall) * 1000,
        }
