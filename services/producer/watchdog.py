"""The feed watchdog's decisions (pure: monotonic seconds and market state are passed in).

KiteTicker never notices a silently dead connection (its ping loop sends no pings), so the
Producer watches the ticks themselves:
- a connection with no tick for more than `stall_seconds` (5 s) while the market is open is
  STALLED: alert and force a reconnect (a fresh KiteTicker). Silence is counted from the later of
  the last tick and the connection's (re)start, so a fresh connection gets a full window. While a
  replacement stays silent too (an exchange-wide stall), each further forced reconnect waits twice
  as long (capped), so an outage does not become a reconnect storm against Kite;
- an instrument silent for `instrument_stale_seconds` on a connection that is otherwise alive is
  STALE: a quiet strike, counted in a gauge, not a reason to reconnect. Instruments of a stalled
  connection are the dead feed's business, not counted as stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ConnectionView:
    """What the watchdog knows about one connection (monotonic seconds)."""

    name: str
    started_at: float  # when this connection (or its replacement) was started
    last_tick_at: float | None  # the last tick received on it, None before the first
    silent_restarts: int = 0  # forced reconnects in a row without a tick in between


@dataclass(frozen=True, slots=True)
class Stall:
    connection: str
    silent_for: float
    reason: str


def silence(view: ConnectionView, now: float) -> float:
    """Seconds since the later of the last tick and the connection's start."""
    since = (
        view.started_at if view.last_tick_at is None else max(view.last_tick_at, view.started_at)
    )
    return max(0.0, now - since)


def seconds_since_last_tick(view: ConnectionView, now: float) -> float:
    """For the gauge: since the last tick ever on this connection, else since its start."""
    since = view.last_tick_at if view.last_tick_at is not None else view.started_at
    return max(0.0, now - since)


def stall_threshold(view: ConnectionView, stall_seconds: float, max_seconds: float) -> float:
    """The silence that counts as a stall: doubled per silent forced reconnect, capped."""
    if view.last_tick_at is not None and view.last_tick_at >= view.started_at:
        return stall_seconds  # this connection has delivered: a normal window
    factor = float(2 ** min(view.silent_restarts, 16))
    return min(max(stall_seconds, max_seconds), stall_seconds * factor)


def find_stalls(
    views: Iterable[ConnectionView],
    now: float,
    market_open: bool,
    stall_seconds: float,
    watch_outside_market_hours: bool = False,
    max_backoff_seconds: float = 60.0,
) -> list[Stall]:
    """Connections to alert on and reconnect; none while the market is closed (quiet is normal)."""
    if not market_open and not watch_outside_market_hours:
        return []
    stalls = []
    for view in views:
        quiet = silence(view, now)
        threshold = stall_threshold(view, stall_seconds, max_backoff_seconds)
        if quiet > threshold:
            what = "since it started" if view.last_tick_at is None else "since the last tick"
            stalls.append(
                Stall(
                    view.name,
                    quiet,
                    f"no tick on connection {view.name} for {quiet:.1f} s {what} "
                    f"(threshold {threshold:g} s): forcing a reconnect",
                )
            )
    return stalls


@dataclass(frozen=True, slots=True)
class Staleness:
    stale: int  # instruments silent too long on live connections
    dead: int  # instruments on connections that are themselves silent
    examples: tuple[int, ...]  # a few stale tokens, for the log


def instrument_staleness(
    last_tick_by_token: Mapping[int, float],
    connection_of: Mapping[int, str],
    views: Mapping[str, ConnectionView],
    now: float,
    stale_seconds: float,
    stall_seconds: float,
    examples: int = 5,
) -> Staleness:
    """Count quiet instruments on live connections apart from those on dead connections."""
    stale = dead = 0
    sample: list[int] = []
    for token, connection in connection_of.items():
        view = views.get(connection)
        if view is None:
            continue
        since = max(last_tick_by_token.get(token, view.started_at), view.started_at)
        if now - since <= stale_seconds:
            continue
        if silence(view, now) > stall_seconds:
            dead += 1
            continue
        stale += 1
        if len(sample) < examples:
            sample.append(token)
    return Staleness(stale, dead, tuple(sample))
