"""`tradealgo status` as data and as text: what is up, what blocks trading, and why (pure).

`SystemStatus` is everything the status command read (Redis keys, each service's /healthz and
/ready, the Gatekeeper's /metrics, ClickHouse positions); `problems` lists what keeps the system
from trading normally (each a sentence the operator can act on) and `render` lays it all out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from services.cli.output import format_duration, format_rupees, format_time, render_table
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.sentinel.checks import CHECK_NAMES, HaltState


@dataclass(frozen=True)
class ServiceHealth:
    """One service as its endpoint and its Redis heartbeat show it."""

    name: str
    alive: bool  # /healthz answered 200
    ready: bool  # /ready answered 200
    detail: str  # "ready", the /ready reason, or why the endpoint could not be reached
    heartbeat_age_s: float | None = None  # None: no heartbeat key


@dataclass(frozen=True)
class SessionView:
    """The Kite session as the Sentinel published it (never the token itself)."""

    token_present: bool
    user_id: str = ""
    fingerprint: str = ""
    login_time: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class PositionLine:
    symbol: str
    quantity: int
    average_price: float
    last_price: float | None
    pnl: float | None


@dataclass(frozen=True)
class SystemStatus:
    services: Sequence[ServiceHealth]
    session: SessionView
    halt: HaltState
    checks: Mapping[str, str]  # CHECKS_KEY: name -> "ok" | reason (empty: Sentinel never ran)
    kill_switch: KillSwitchState
    mode: str | None  # the Gatekeeper's mode (None: unknown)
    pnl: Mapping[str, float] = field(default_factory=dict)  # realised, unrealised, mtm
    positions: Sequence[PositionLine] | None = None  # None: ClickHouse unreachable
    positions_error: str = ""


def failing_checks(checks: Mapping[str, str]) -> list[str]:
    """'name: reason' for every pre-market check that does not pass; a check that never ran
    (missing from the hash) fails, as the Sentinel itself counts it."""
    failing = []
    for name in CHECK_NAMES:
        value = checks.get(name)
        if value is None:
            failing.append(f"{name}: not checked yet (is the Sentinel running?)")
        elif value != "ok":
            failing.append(f"{name}: {value}")
    return failing


def token_seconds_left(session: SessionView, now: datetime) -> float | None:
    """Seconds until the access token expires; None when unknown; 0 when expired."""
    if session.expires_at is None:
        return None
    return max(0.0, (session.expires_at - now).total_seconds())


def problems(status: SystemStatus, now: datetime, heartbeat_max_age_s: float) -> list[str]:
    """What keeps the system from trading normally, one actionable sentence each."""
    out = []
    for svc in status.services:
        if not svc.alive:
            out.append(f"{svc.name} is down ({svc.detail})")
        elif not svc.ready:
            out.append(f"{svc.name} is not ready: {svc.detail}")
        elif svc.heartbeat_age_s is not None and svc.heartbeat_age_s > heartbeat_max_age_s:
            out.append(
                f"{svc.name} heartbeat is {format_duration(svc.heartbeat_age_s)} old "
                f"(more than {heartbeat_max_age_s:g} s)"
            )
    left = token_seconds_left(status.session, now)
    if not status.session.token_present:
        out.append("no Kite access token: run `tradealgo login`")
    elif left == 0:
        out.append("the Kite access token has expired: run `tradealgo login`")
    if status.kill_switch.tripped:
        out.append(
            f"kill switch TRIPPED: {status.kill_switch.reason or 'no reason recorded'} "
            "(release: `tradealgo kill-switch release --reason ...`)"
        )
    if status.halt.halted:
        why = "; ".join(status.halt.reasons) or "no reason recorded"
        out.append(f"trading HALTED by {status.halt.source or 'unknown'}: {why}")
    return out


def render(status: SystemStatus, now: datetime, heartbeat_max_age_s: float) -> str:
    """The status screen."""
    lines = ["Services"]
    rows = []
    for svc in status.services:
        state = "ready" if svc.alive and svc.ready else ("up" if svc.alive else "DOWN")
        age = None if svc.heartbeat_age_s is None else format_duration(svc.heartbeat_age_s)
        rows.append((svc.name, state, age, svc.detail))
    lines += _indent(render_table(("service", "state", "heartbeat", "detail"), rows))

    lines += ["", "Kite session"]
    session = status.session
    if not session.token_present:
        lines.append("  no access token")
    else:
        left = token_seconds_left(session, now)
        expiry = "expiry unknown"
        if session.expires_at is not None and left is not None:
            expiry = (
                f"EXPIRED at {format_time(session.expires_at)}"
                if left == 0
                else f"valid, expires {format_time(session.expires_at)} (in {format_duration(left)})"
            )
        who = session.user_id or "unknown user"
        lines.append(f"  {who}, token {session.fingerprint or '?'}: {expiry}")
        if session.login_time is not None:
            lines.append(f"  logged in at {format_time(session.login_time)}")

    lines += ["", "Trading"]
    lines.append(f"  mode: {status.mode or 'unknown (Gatekeeper unreachable)'}")
    if status.halt.halted:
        lines.append(f"  HALTED since {status.halt.since or '?'} by {status.halt.source or '?'}")
        lines += [f"    - {reason}" for reason in status.halt.reasons]
    else:
        lines.append("  not halted")
    failing = failing_checks(status.checks)
    lines.append(
        "  pre-market checks: all pass"
        if not failing
        else "  pre-market checks failing:\n" + "\n".join(f"    - {r}" for r in failing)
    )
    ks = status.kill_switch
    if ks.tripped:
        when = format_time(ks.tripped_at) if ks.tripped_at else "?"
        lines.append(f"  kill switch: TRIPPED at {when}: {ks.reason}")
    else:
        lines.append("  kill switch: armed (not tripped)")

    lines += ["", "Positions and P&L"]
    if status.pnl:
        parts = [
            f"{kind} {format_rupees(status.pnl[kind])}"
            for kind in ("realised", "unrealised", "mtm")
            if kind in status.pnl
        ]
        lines.append("  " + ", ".join(parts))
    else:
        lines.append("  P&L unknown (Gatekeeper metrics unreachable)")
    if status.positions is None:
        lines.append(f"  positions unknown: {status.positions_error or 'ClickHouse unreachable'}")
    else:
        prow = [
            (p.symbol, p.quantity, p.average_price, p.last_price, p.pnl) for p in status.positions
        ]
        lines += _indent(render_table(("symbol", "qty", "avg", "last", "pnl"), prow))

    found = problems(status, now, heartbeat_max_age_s)
    lines += [""]
    if found:
        lines.append("Attention")
        lines += [f"  ! {p}" for p in found]
    else:
        lines.append("All good: every service ready, token valid, not halted.")
    return "\n".join(lines)


def _indent(text: str) -> list[str]:
    return ["  " + line for line in text.splitlines()]
