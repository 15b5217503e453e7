"""What one `tradealgo run` is: the broker, the plan, the ports and the paths, from the settings.

Reads `.env` (through the services' settings classes) and picks free ports; everything it decides
is in services.cli.run.plan (pure).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from services.cli.errors import USAGE, CliError
from services.cli.run.plan import (
    PlanError,
    Ports,
    RunPlan,
    SimAccount,
    StackPaths,
    build_plan,
    choose_broker,
)
from services.cli.settings import ENDPOINTS_HEADER, RunSettings
from shared.localservers import free_port
from shared.settings import ServiceSettings, load_settings

SERVICE_SETTINGS = {
    "sentinel": "services.sentinel.settings:SentinelSettings",
    "producer": "services.producer.settings:ProducerSettings",
    "consumer": "services.consumer.settings:ConsumerSettings",
    "gatekeeper": "services.gatekeeper.settings:GatekeeperSettings",
}
SIMULATOR_SETTINGS = "services.simulator.settings:SimulatorSettings"


def load_class(path: str) -> type[ServiceSettings] | None:
    """A settings class by 'module:Class', or None when that service is not installed."""

    module, name = path.split(":")
    try:
        cls: type[ServiceSettings] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None
    return cls


def sim_account(settings: ServiceSettings) -> SimAccount:
    """The simulator's account fields (read by name: the class is loaded dynamically)."""

    def secret(name: str) -> str:
        value = getattr(settings, name)
        return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)

    return SimAccount(
        api_key=secret("api_key"),
        api_secret=secret("api_secret"),
        user_id=secret("user_id"),
        password=secret("password"),
        totp_secret=secret("totp_secret"),
        day=getattr(settings, "day", None),
        start_time=getattr(settings, "start_time", None),
        opening_cash=getattr(settings, "opening_cash", None),
    )


def resolve_ports(run: RunSettings, simulator: bool) -> Ports:
    """Fixed ports from RUN_BASE_PORT, or free ones."""
    base = run.base_port

    def port(offset: int) -> int:
        return base + offset if base else free_port()

    return Ports(
        redis=run.redis_server_port or free_port(),
        clickhouse=run.clickhouse_server_port or free_port(),
        sentinel=port(1),
        producer=port(2),
        consumer=port(3),
        gatekeeper=port(4),
        sim_rest=port(10) if simulator else 0,
        sim_ws=port(11) if simulator else 0,
        sim_metrics=port(5) if simulator else 0,
    )


@dataclass(frozen=True)
class Layout:
    root: Path
    var: Path
    log: Path
    run: Path
    state: Path
    spool: Path


# The repository this code runs from (an editable install, as `make run` makes): the services
# run with it as their working directory and deploy/supervisord.conf is read from it.
REPOSITORY = Path(__file__).resolve().parents[3]


def layout(run: RunSettings, broker: str) -> Layout:
    root = REPOSITORY
    var = Path(run.var_dir).resolve()  # relative to where `tradealgo run` was started
    return Layout(
        root=root,
        var=var,
        log=var / "log",
        run=var / "run",
        state=var / "state" / broker,  # a simulated day never mixes with a real account's state
        spool=var / "spool",
    )


def plan_run(
    run: RunSettings, simulator_overrides: dict[str, object] | None = None
) -> tuple[RunPlan, Layout]:
    """Choose the broker and build the plan from the settings (reads `.env`);
    `simulator_overrides` are SimulatorSettings fields (a replay's data files)."""
    classes = {name: load_class(path) for name, path in SERVICE_SETTINGS.items()}
    sim_cls = load_class(SIMULATOR_SETTINGS)
    sentinel_cls = classes["sentinel"]
    kite_key = load_settings(sentinel_cls).api_key if sentinel_cls else ""  # type: ignore[attr-defined]
    simulator = sim_account(load_settings(sim_cls)) if sim_cls else None
    sim_key = simulator.api_key if simulator else ""
    try:
        broker, why = choose_broker(run.broker, kite_key, sim_key)
    except PlanError as exc:
        raise CliError(str(exc), USAGE) from None
    gatekeeper_cls = classes["gatekeeper"]
    configured = load_settings(gatekeeper_cls) if gatekeeper_cls else None
    configured_mode = str(getattr(configured, "mode", "?"))
    configured_skew = getattr(configured, "max_clock_skew_s", None)
    found = {name: cls for name, cls in classes.items() if cls is not None}
    where = layout(run, broker)
    ports = resolve_ports(run, broker == "simulator")
    paths = StackPaths(str(where.var), str(where.log), str(where.spool))
    try:
        plan = build_plan(
            broker=broker,
            why=why,
            classes=found,
            simulator_cls=sim_cls,
            simulator=simulator,
            configured_mode=configured_mode,
            ports=ports,
            paths=paths,
            database=run.clickhouse_database,
            day=run.day,
            start_time=run.start_time,
            speed=run.speed,
            strategies=run.sim_strategies,
            simulator_overrides=simulator_overrides,
            configured_clock_skew_s=configured_skew,
        )
    except PlanError as exc:
        raise CliError(str(exc), USAGE) from None
    check_strategies(plan, found.get("consumer"))
    return plan, where


def check_strategies(plan: RunPlan, consumer: type[ServiceSettings] | None) -> None:
    """Refuse, before anything starts, strategies the Consumer would refuse at its start."""
    raw = plan.service_env.get("CONSUMER_STRATEGIES")
    if consumer is None or raw is None:
        return
    try:
        load_settings(consumer, _env_file=None, strategies=json.loads(raw))
    except ValueError as exc:  # not JSON, or SettingsError naming the problem
        raise CliError(f"RUN_SIM_STRATEGIES: {exc}", USAGE) from None


def supervisor_env(plan: RunPlan, where: Layout) -> dict[str, str]:
    """The plan's service environment plus the paths deploy/supervisord.conf refers to."""
    return {
        **plan.service_env,
        "TRADEALGO_HOME": str(where.root),
        "TRADEALGO_PYTHON": sys.executable,
        "TRADEALGO_LOG_DIR": str(where.log),
        "TRADEALGO_RUN_DIR": str(where.run),
    }


def endpoints_text(plan: RunPlan, database: str) -> str:
    """The CLI_* lines a second terminal's `tradealgo status` reads (see CliSettings)."""
    urls = plan.metrics_urls()
    lines = [
        f"{ENDPOINTS_HEADER}{os.getpid()}",
        f"CLI_REDIS_URL=redis://127.0.0.1:{plan.ports.redis}/0",
        "CLI_CLICKHOUSE_HOST=127.0.0.1",
        f"CLI_CLICKHOUSE_PORT={plan.ports.clickhouse}",
        f"CLI_CLICKHOUSE_DATABASE={database}",
    ]
    lines += [f"CLI_{name.upper()}_URL={urls[name]}" for name in SERVICE_SETTINGS]
    # What `tradealgo login` needs to act as this run's Sentinel (its Redis; in a simulator run
    # the simulator's roots and documented fake account; real credentials stay in .env only).
    lines += [
        f"{name}={value}"
        for name, value in sorted(plan.service_env.items())
        if name.startswith("SENTINEL_") or (plan.broker == "simulator" and name.startswith("KITE_"))
    ]
    return "\n".join(lines) + "\n"
