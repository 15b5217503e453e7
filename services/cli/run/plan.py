"""What `tradealgo run` starts and with which environment, decided without IO (pure).

Two shapes of the same stack (Redis and ClickHouse from packages under the var dir, the four
services under supervisord):
- simulator: no Kite credentials configured (or RUN_BROKER=simulator). The Kite simulator replays a
  real NSE day; every Kite root points at it, the Sentinel logs in automatically with the
  simulator's documented fake account, and the Gatekeeper runs in PAPER mode (forced, for this
  local run only).
- kite: a Kite API key is configured (or RUN_BROKER=kite). No simulator; the services read their
  Kite settings and the Gatekeeper's mode from `.env` as they are (default logging-only; live
  still needs GATEKEEPER_LIVE_CONFIRM, which the Gatekeeper's settings enforce).

Variables are named through the settings classes (a field's first alias, e.g.
`SENTINEL_API_ROOT`), so a rename in a service's settings cannot silently detach the run from it;
environment variables win over `.env` in pydantic-settings, whatever alias `.env` uses.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from enum import Enum
from typing import Literal

from pydantic import AliasChoices, SecretStr

from services.cli.settings import Broker
from shared.settings import ServiceSettings

SERVICES = ("sentinel", "producer", "consumer", "gatekeeper")
Chosen = Literal["simulator", "kite"]


class PlanError(ValueError):
    """A run that cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class Ports:
    redis: int
    clickhouse: int
    sentinel: int
    producer: int
    consumer: int
    gatekeeper: int
    sim_rest: int = 0
    sim_ws: int = 0
    sim_metrics: int = 0

    def metrics(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in SERVICES}


@dataclass(frozen=True)
class RunPlan:
    broker: Chosen
    why: str  # why this broker was chosen, for the banner
    mode: str  # the Gatekeeper's mode in this run
    ports: Ports
    service_env: dict[str, str]  # given to supervisord and inherited by its programs
    simulator_env: dict[str, str] = field(default_factory=dict)  # empty: no simulator
    day: date | None = None
    start_time: time | None = None
    speed: float | None = None

    def metrics_urls(self) -> dict[str, str]:
        urls = {name: f"http://127.0.0.1:{port}" for name, port in self.ports.metrics().items()}
        if self.simulator_env and self.ports.sim_metrics:
            urls["simulator"] = f"http://127.0.0.1:{self.ports.sim_metrics}"
        return urls


def choose_broker(setting: Broker, kite_api_key: str, simulator_api_key: str) -> tuple[Chosen, str]:
    """Simulator or real Kite, and why."""
    # In auto mode the simulator's own (fake) key is not a Kite account; asked for explicitly,
    # any key is used as configured (e.g. a simulator started elsewhere standing in for Kite).
    configured = bool(kite_api_key) and kite_api_key != simulator_api_key
    if setting == "simulator":
        return "simulator", "RUN_BROKER=simulator"
    if setting == "kite":
        if not kite_api_key:
            raise PlanError(
                "RUN_BROKER=kite needs Kite credentials in .env (KITE_API_KEY, KITE_API_SECRET, "
                "KITE_USER_ID, KITE_PASSWORD, KITE_TOTP_SECRET); see .env.example"
            )
        return "kite", "RUN_BROKER=kite"
    if configured:
        return "kite", "a Kite API key is configured in .env (RUN_BROKER=auto)"
    return "simulator", "no Kite API key configured (RUN_BROKER=auto): using the simulator"


def env_name(cls: type[ServiceSettings], name: str) -> str:
    """The environment variable a settings field is read from first."""
    info = cls.model_fields.get(name)
    if info is None:
        raise PlanError(f"{cls.__name__} has no setting {name!r} (the run plan is out of date)")
    alias = info.validation_alias
    if isinstance(alias, AliasChoices) and alias.choices and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    return cls.env_name(name)


def env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def settings_env(cls: type[ServiceSettings], values: Mapping[str, object]) -> dict[str, str]:
    """{variable: value} that sets these fields of `cls` whatever `.env` says."""
    return {env_name(cls, name): env_value(value) for name, value in values.items()}


@dataclass(frozen=True)
class SimAccount:
    """The simulator's documented fake account and replay defaults (from SimulatorSettings)."""

    api_key: str
    api_secret: str
    user_id: str
    password: str
    totp_secret: str
    day: date | None = None
    start_time: time | None = None
    opening_cash: float | None = None  # the paper account's capital


@dataclass(frozen=True)
class StackPaths:
    """Absolute paths of the run's state (the IO shell creates them)."""

    var_dir: str
    log_dir: str
    spool_dir: str


def infrastructure(ports: Ports, paths: StackPaths, database: str) -> dict[str, object]:
    """The shared fields every service gets: the local Redis and ClickHouse."""
    return {
        "redis_url": f"redis://127.0.0.1:{ports.redis}/0",
        "clickhouse_host": "127.0.0.1",
        "clickhouse_port": ports.clickhouse,
        "clickhouse_database": database,
        "clickhouse_user": "default",
        "clickhouse_password": "",
        "spool_dir": paths.spool_dir,
    }


def build_plan(
    *,
    broker: Chosen,
    why: str,
    classes: Mapping[str, type[ServiceSettings]],
    simulator_cls: type[ServiceSettings] | None,
    simulator: SimAccount | None,
    configured_mode: str,
    ports: Ports,
    paths: StackPaths,
    database: str,
    day: date | None,
    start_time: time | None,
    speed: float,
    strategies: str = "",
    simulator_overrides: Mapping[str, object] | None = None,
    configured_clock_skew_s: float | None = None,
) -> RunPlan:
    """The environment of every process of the run.

    `classes` maps each service to its settings class; `simulator` is the simulator's settings
    (its account is what the Sentinel logs in with); `configured_mode` is the Gatekeeper's mode
    from `.env` (used as is against real Kite); `strategies` (JSON, simulator runs only) replaces
    the Consumer's strategies when not empty; `configured_clock_skew_s` is the Gatekeeper's
    max_clock_skew_s from `.env` or the environment (None: its settings default), which a fast
    replay scales.
    """
    missing = [name for name in SERVICES if name not in classes]
    if missing:
        raise PlanError(f"services not installed: {', '.join(missing)}")
    infra = infrastructure(ports, paths, database)
    env: dict[str, str] = {}
    for name in SERVICES:
        env |= settings_env(classes[name], {**infra, "metrics_port": ports.metrics()[name]})
    if broker == "kite":
        return RunPlan(broker, why, configured_mode, ports, env)

    if simulator is None or simulator_cls is None:
        raise PlanError("the simulator is not installed (services/simulator)")
    rest = f"http://127.0.0.1:{ports.sim_rest}"
    ws = f"ws://127.0.0.1:{ports.sim_ws}"
    account = {
        "api_key": simulator.api_key,
        "api_secret": simulator.api_secret,
        "user_id": simulator.user_id,
        "password": simulator.password,
        "totp_secret": simulator.totp_secret,
    }
    # The unprefixed Kite names too, for any service field that falls back to them.
    env |= {
        "KITE_API_ROOT": rest,
        "KITE_LOGIN_ROOT": rest,
        "KITE_WS_ROOT": ws,
        "KITE_API_KEY": simulator.api_key,
        "KITE_API_SECRET": simulator.api_secret,
        "KITE_USER_ID": simulator.user_id,
        "KITE_PASSWORD": simulator.password,
        "KITE_TOTP_SECRET": simulator.totp_secret,
    }
    env |= settings_env(
        classes["sentinel"],
        {
            **account,
            "kite_api_root": rest,
            "kite_login_root": rest,
            "login_method": "auto",
            "static_ip": "",
            "redirect_port": 0,
        },
    )
    env |= settings_env(
        classes["producer"],
        {"api_key": account["api_key"], "kite_api_root": rest, "kite_ws_root": ws},
    )
    consumer = _kite_fields(classes["consumer"], account, rest)
    if strategies.strip():
        consumer["strategies"] = strategies.strip()
    env |= settings_env(classes["consumer"], consumer)
    gatekeeper: dict[str, object] = {
        **_kite_fields(classes["gatekeeper"], account, rest),
        "mode": "paper",
    }
    if simulator.opening_cash:
        # The risk limits refer to the capital: in a simulator run it is the simulated account's.
        gatekeeper["capital"] = simulator.opening_cash
    if speed and speed > 1:
        # A replay runs `speed` market seconds per wall second, so the wall-clock transport
        # between services (ticks, intents) shows up `speed` times larger on the market clock:
        # scale the tolerated clock skew with it, or a fresh signal reads as "from the future".
        # Scale what the user configured, not the default: the plan's variable overrides theirs.
        skew = configured_clock_skew_s
        if skew is None:
            skew = classes["gatekeeper"].model_fields["max_clock_skew_s"].default
        gatekeeper["max_clock_skew_s"] = round(float(skew) * speed, 3)
    env |= settings_env(classes["gatekeeper"], gatekeeper)
    sim_values: dict[str, object] = {
        "host": "127.0.0.1",
        "rest_port": ports.sim_rest,
        "ws_port": ports.sim_ws,
        "speed": speed,
        "metrics_port": ports.sim_metrics,
        "paused": True,  # the stack starts the clock once the services are ready
    }
    if day is not None:
        sim_values["day"] = day
    if start_time is not None:
        sim_values["start_time"] = start_time
    sim_values.update(simulator_overrides or {})  # e.g. the data files of a recorded day
    sim_env = settings_env(simulator_cls, sim_values)
    return RunPlan(
        "simulator",
        why,
        "paper",
        ports,
        env,
        sim_env,
        day=day or simulator.day,
        start_time=start_time or simulator.start_time,
        speed=speed,
    )


def _kite_fields(
    cls: type[ServiceSettings], account: Mapping[str, object], rest: str
) -> dict[str, object]:
    """The Kite account and REST root for a service that talks to Kite (only the fields its
    settings class has: not every service needs the API key or the root)."""
    wanted = {"api_key": account["api_key"], "kite_api_root": rest}
    return {name: value for name, value in wanted.items() if name in cls.model_fields}


def strategies_summary(raw: str) -> str:
    """'trend_option_seller on NSE:NIFTY 50' for the banner, from a strategies JSON list."""
    try:
        configs = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(configs, list):
        return raw
    parts = []
    for config in configs:
        if not isinstance(config, dict):
            continue
        name = config.get("name") or config.get("kind", "?")
        symbols = ", ".join(str(s) for s in config.get("symbols", []))
        parts.append(f"{name} on {symbols}" if symbols else str(name))
    return "; ".join(parts) or "none"
