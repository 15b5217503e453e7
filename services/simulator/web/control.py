"""The simulator's own control API under /_sim (not part of Kite): clock, replay and faults.

- GET  /_sim/state: the clock, the replay, the faults and counts (no secrets).
- POST /_sim/clock: {"action": "pause" | "resume" | "step" | "seek" | "speed", "seconds": s,
  "to": "HH:MM[:SS]" or an ISO time, "speed": x (0 = max)}.
- POST /_sim/faults: see services.simulator.faults.KNOWN_FAULTS, e.g. {"drop_websocket": true},
  {"stall_ticks_s": 5}, {"expire_token": true}, {"rate_limit_s": 3}, {"reject_orders": 2},
  {"slow_ms": 500, "slow_for_s": 10}, {"clear": true}.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import date, datetime
from datetime import time as dt_time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services.simulator.errors import InputError
from services.simulator.web.common import server_of, success
from shared.clock import IST, from_epoch_s

if TYPE_CHECKING:
    from services.simulator.service import SimulatorServer

logger = logging.getLogger(__name__)


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text() or "{}")
    except ValueError:
        raise InputError("the body must be JSON") from None
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def describe(server: SimulatorServer) -> dict[str, Any]:
    """The simulator's state for tests and people; never a secret."""
    sim = server.sim
    wall = time.monotonic()
    upcoming = sim.replay.next_epoch()
    book = sim.book
    return {
        "now": from_epoch_s(server.now()).isoformat(),
        "epoch": server.now(),
        "day": sim.day.isoformat(),
        "paused": sim.clock.paused,
        "speed": sim.clock.speed,
        "next_tick": None if upcoming is None else from_epoch_s(upcoming).isoformat(),
        "finished": upcoming is None,
        "session_closed": sim.session_closed,
        "market_open": sim.market.is_open(server.now()),
        "ticks_per_minute": sim.replay.ticks_per_minute,
        "connections": len(server.connections),
        "faults": sim.faults.describe(wall),
        "reject_next_orders": book.reject_next,
        "orders": len(book.orders),
        "trades": len(book.trades),
        "charges": round(book.account.charges, 2),
        "data_gaps": [d.isoformat() for d in sim.gaps],
    }


def _seek_target(text: str, day: date) -> float:
    try:
        if len(text) <= 8:
            hour, minute, *rest = (int(p) for p in text.split(":"))
            second = rest[0] if rest else 0
            return datetime.combine(day, dt_time(hour, minute, second), IST).timestamp()
        when = datetime.fromisoformat(text)
    except (ValueError, TypeError):
        raise InputError(f"`to` {text!r} is neither HH:MM[:SS] nor an ISO time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=IST)
    return when.timestamp()


async def state(request: web.Request) -> web.Response:
    return success(describe(server_of(request)))


async def clock(request: web.Request) -> web.Response:
    server = server_of(request)
    sim = server.sim
    body = await _json_body(request)
    action = body.get("action")
    wall = time.monotonic()
    if action == "pause":
        sim.clock.pause(wall)
    elif action == "resume":
        sim.clock.resume(wall)
    elif action == "speed":
        speed = body.get("speed")
        if not isinstance(speed, int | float) or isinstance(speed, bool) or speed < 0:
            raise InputError("`speed` must be a number >= 0 (0 = as fast as possible)")
        sim.clock.set_speed(float(speed), wall)
    elif action == "step":
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
            raise InputError("`seconds` must be a number > 0")
        sim.clock.jump(server.now() + float(seconds), wall)
    elif action == "seek":
        target = _seek_target(str(body.get("to", "")), sim.day)
        sim.replay.seek(target)
        sim.market.reset()
        sim.clock.jump(target, wall)
        sim.session_closed = target >= sim.day_end_epoch and sim.session_closed
    else:
        raise InputError("`action` must be pause, resume, speed, step or seek")
    logger.info("control: clock %s %s", action, {k: v for k, v in body.items() if k != "action"})
    server.wake()
    return success(describe(server))


async def faults(request: web.Request) -> web.Response:
    server = server_of(request)
    body = await _json_body(request)
    actions = server.sim.faults.apply(body, time.monotonic())
    logger.info("control: faults %s", body)
    if actions.reject_orders:
        server.sim.book.reject_next += actions.reject_orders
    if actions.expire_token:
        expired = server.sim.sessions.expire_all()
        logger.info("fault: %s access token(s) expired", expired)
        server.drop_connections()
    if actions.drop_websocket:
        server.drop_connections()
    server.wake()
    return success(describe(server))


def control_routes() -> list[web.RouteDef]:
    return [
        web.get("/_sim/state", state),
        web.post("/_sim/clock", clock),
        web.post("/_sim/faults", faults),
    ]
