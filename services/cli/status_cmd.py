"""`tradealgo status`: read Redis, each service's endpoints and ClickHouse; show what blocks trading."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from clickhouse_driver.errors import Error as ClickHouseError

from services.cli import connections, history
from services.cli.errors import OK, PROBLEM
from services.cli.metrics_text import Samples, label_values, parse_samples
from services.cli.settings import CliSettings, load_cli_settings
from services.cli.status_view import (
    PositionLine,
    ServiceHealth,
    SessionView,
    SystemStatus,
    problems,
    render,
)
from services.gatekeeper.risk.kill_switch import KillSwitchState
from services.sentinel.checks import HaltState
from shared import constants as c
from shared.clock import SystemClock


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="services, token, mode, halt state, kill switch, positions and P&L",
        description="Exit code 0 when everything is up and trading is allowed, 1 when something "
        "needs attention, 3 when Redis cannot be reached.",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_cli_settings()
    now = SystemClock().now()
    status = gather(settings, now)
    found = problems(status, now, settings.heartbeat_max_age_s)
    if args.json:
        print(json.dumps(as_json(status, found), default=str, indent=2))
    else:
        print(render(status, now, settings.heartbeat_max_age_s))
    return PROBLEM if found else OK


def gather(settings: CliSettings, now: datetime) -> SystemStatus:
    """Everything `status` shows; Redis must answer (else redis's ConnectionError propagates)."""
    client = connections.redis_client(settings)
    try:
        client.ping()
        halt = HaltState.from_hash(connections.hash_of(client, c.HALT_KEY))
        checks = connections.hash_of(client, c.CHECKS_KEY)
        kill = connections.hash_of(client, c.KILL_SWITCH_KEY)
        kill_switch = KillSwitchState.from_fields(kill) if kill else KillSwitchState()
        session = read_session(client)
        heartbeats = {
            name: heartbeat_age(client.get(c.HEARTBEAT_KEY.format(service=name)), now)
            for name in settings.service_urls()
        }
    finally:
        client.close()
    services = [
        probe_service(name, url, settings.http_timeout_s, heartbeats[name])
        for name, url in settings.service_urls().items()
    ]
    answer = connections.http_get(f"{settings.gatekeeper_url}/metrics", settings.http_timeout_s)
    samples = parse_samples(answer.body) if answer.ok else []
    pnl = label_values(samples, "tradealgo_pnl_rupees", "kind")
    mode = gatekeeper_mode(samples)
    positions: list[PositionLine] | None = None
    positions_error = ""
    try:
        ch = connections.clickhouse_client(settings)
        try:
            positions = history.open_positions(ch)
        finally:
            ch.disconnect()
    except history.TableMissing as exc:
        positions_error = str(exc)
    except (ClickHouseError, OSError, EOFError) as exc:
        positions_error = f"ClickHouse: {exc}"
    return SystemStatus(
        services=services,
        session=session,
        halt=halt,
        checks=checks,
        kill_switch=kill_switch,
        mode=mode,
        pnl=pnl,
        positions=positions,
        positions_error=positions_error,
    )


def gatekeeper_mode(samples: Samples) -> str | None:
    """The Gatekeeper's mode from its /metrics: the `tradealgo_gatekeeper_mode{mode}` gauge at 1,
    else the only `mode` label its order counter carries; None when neither says."""
    modes = label_values(samples, "tradealgo_gatekeeper_mode", "mode")
    active = [m for m, v in modes.items() if v == 1]
    if len(active) == 1:
        return active[0]
    from_orders = label_values(samples, "tradealgo_orders", "mode")
    return next(iter(from_orders)) if len(from_orders) == 1 else None


def read_session(client: Any) -> SessionView:
    info = connections.hash_of(client, c.SESSION_INFO_KEY)
    present = bool(client.exists(c.ACCESS_TOKEN_KEY))
    return SessionView(
        token_present=present,
        user_id=info.get("user_id", ""),
        fingerprint=info.get("fingerprint", ""),
        login_time=_when(info.get("login_time", "")),
        expires_at=_when(info.get("expires_at", "")),
    )


# Heartbeat keys expire within a minute or so; a stamp further away than this was written on
# another clock (a service following a replay's market time), so its age means nothing.
OTHER_CLOCK_S = 86_400.0


def heartbeat_age(raw: bytes | None, now: datetime) -> float | None:
    """Seconds since a heartbeat (an ISO time, epoch seconds, or JSON with "ts"); None when
    absent, unreadable, or stamped on another clock (a replay's simulated time)."""
    age = _stamp_age(raw, now)
    if age is None or age > OTHER_CLOCK_S or age < -60.0:
        return None
    return max(0.0, age)


def _stamp_age(raw: bytes | None, now: datetime) -> float | None:
    if raw is None:
        return None
    text = raw.decode(errors="replace").strip()
    try:
        doc = json.loads(text)
    except ValueError:
        doc = text
    if isinstance(doc, dict):
        doc = doc.get("ts") or doc.get("at") or ""
    if isinstance(doc, int | float):
        return now.timestamp() - float(doc)
    when = _when(str(doc))
    return None if when is None else (now - when).total_seconds()


def probe_service(name: str, url: str, timeout_s: float, heartbeat: float | None) -> ServiceHealth:
    alive = connections.http_get(f"{url}/healthz", timeout_s)
    if not alive.ok:
        detail = alive.error or f"/healthz answered {alive.status}"
        return ServiceHealth(name, False, False, detail, heartbeat)
    ready = connections.http_get(f"{url}/ready", timeout_s)
    detail = "ready" if ready.ok else (ready.body or ready.error or f"/ready {ready.status}")
    return ServiceHealth(name, True, ready.ok, detail, heartbeat)


def _when(text: str) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def as_json(status: SystemStatus, found: list[str]) -> dict[str, Any]:
    return {
        "services": [vars(s) for s in status.services],
        "session": vars(status.session),
        "halt": {
            "halted": status.halt.halted,
            "source": status.halt.source,
            "reasons": list(status.halt.reasons),
            "since": status.halt.since,
        },
        "checks": dict(status.checks),
        "kill_switch": status.kill_switch.to_fields(),
        "mode": status.mode,
        "pnl": dict(status.pnl),
        "positions": None if status.positions is None else [vars(p) for p in status.positions],
        "problems": found,
    }
