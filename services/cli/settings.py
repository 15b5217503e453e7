"""The CLI's settings (CLI_*) and the local launcher's settings (RUN_*), from the shared `.env`.

`tradealgo status`, `halt`, `positions`... reach Redis, ClickHouse and each service's
/healthz and /metrics with `CliSettings`; `tradealgo run` starts the local stack with `RunSettings`.
While `tradealgo run` is running it writes the addresses it picked to `<RUN_VAR_DIR>/run/endpoints.env`
(CLI_* lines), which `load_cli_settings` reads after `.env`, so a second terminal reaches the running
stack without any configuration.
"""

from __future__ import annotations

import os
from datetime import date, time
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from shared.settings import ENV_FILE, ServiceSettings, load_settings, service_config

Broker = Literal["auto", "simulator", "kite"]


class CliSettings(ServiceSettings):
    """Where the operator CLI finds the running system."""

    model_config = service_config("CLI_")
    UNUSED_SETTINGS: ClassVar[tuple[str, ...]] = ("metrics_port", "metrics_host", "spool_dir")

    sentinel_url: str = Field(
        "http://127.0.0.1:9101", description="Sentinel /healthz /metrics root (status)"
    )
    producer_url: str = Field(
        "http://127.0.0.1:9102", description="Producer /healthz /metrics root (status)"
    )
    consumer_url: str = Field(
        "http://127.0.0.1:9103", description="Consumer /healthz /metrics root (status)"
    )
    gatekeeper_url: str = Field(
        "http://127.0.0.1:9104", description="Gatekeeper /healthz /metrics root (status)"
    )
    http_timeout_s: float = Field(
        2.0, gt=0, description="timeout of one /healthz or /metrics request, seconds"
    )
    heartbeat_max_age_s: float = Field(
        30.0, gt=0, description="a service heartbeat older than this reads as down, seconds"
    )
    operator: str = Field(
        "", description="who the CLI records as the source of halts and releases; empty: login user"
    )
    default_limit: int = Field(20, ge=1, description="rows shown by positions/orders/signals")
    cell_width: int = Field(
        60, ge=0, description="longest text shown in a table cell (reasons); 0: no limit"
    )

    def service_urls(self) -> dict[str, str]:
        """Service name -> root URL of its /healthz, /ready and /metrics."""
        return {
            "sentinel": self.sentinel_url,
            "producer": self.producer_url,
            "consumer": self.consumer_url,
            "gatekeeper": self.gatekeeper_url,
        }


class RunSettings(ServiceSettings):
    """`tradealgo run` (`make run`): the whole system on one machine, without Docker."""

    model_config = service_config("RUN_")
    UNUSED_SETTINGS: ClassVar[tuple[str, ...]] = ("metrics_port", "metrics_host")

    broker: Broker = Field(
        "auto",
        description="auto: real Kite when a Kite API key is configured, else the simulator",
    )
    speed: float = Field(
        60.0, ge=0, description="simulated seconds per wall second (simulator runs; 0: flat out)"
    )
    day: date | None = Field(
        date(2024, 8, 8),
        description="simulated trading day (YYYY-MM-DD; the default has several trades of the "
        "demo strategy); empty: the simulator's SIM_DAY",
    )
    start_time: time | None = Field(
        None, description="simulated start time, IST (HH:MM); empty: the simulator's SIM_START_TIME"
    )
    sim_strategies: str = Field(
        '[{"kind": "trend_option_seller", "symbols": ["NSE:NIFTY 50"]}]',
        description="strategies of simulator runs (JSON as CONSUMER_STRATEGIES; the default sells "
        "NIFTY options with the trend, which the simulator fills); empty: the Consumer's own",
    )
    reset_simulation: bool = Field(
        True, description="simulator runs start from empty Redis and ClickHouse state"
    )
    var_dir: str = Field("var", description="state, logs and run files of the local run")
    redis_server_port: int = Field(
        0, ge=0, le=65535, description="port of the local Redis server (0: a free port)"
    )
    clickhouse_server_port: int = Field(
        0, ge=0, le=65535, description="native port of the local ClickHouse (0: a free port)"
    )
    base_port: int = Field(
        0,
        ge=0,
        le=65500,
        description="fixed ports: services' metrics base+1..4 (sentinel, producer, consumer, "
        "gatekeeper), simulator metrics base+5, REST base+10, WebSocket base+11; 0: free ports",
    )
    supervisord_conf: str = Field(
        "deploy/supervisord.conf", description="supervisord configuration the services run under"
    )
    progress_interval_s: float = Field(
        1.0, gt=0, description="seconds between two progress updates in the terminal"
    )
    progress_log_interval_s: float = Field(
        10.0, gt=0, description="seconds between progress lines when the output is not a terminal"
    )
    start_timeout_s: float = Field(
        120.0, gt=0, description="seconds the servers and services get to come up"
    )
    max_restarts: int = Field(
        5,
        ge=0,
        description="a service exiting unexpectedly more often than this within "
        "RUN_RESTART_WINDOW_S stops the run (it crashes at start)",
    )
    restart_window_s: float = Field(120.0, gt=0, description="window of RUN_MAX_RESTARTS, seconds")
    stop_timeout_s: float = Field(
        60.0, gt=0, description="seconds the services and servers get to stop on Ctrl-C"
    )

    def var_path(self) -> Path:
        return Path(self.var_dir)

    def endpoints_file(self) -> Path:
        """The CLI_* addresses of a running local stack (deleted when it stops)."""
        return self.var_path() / "run" / "endpoints.env"


def load_cli_settings(**overrides: Any) -> CliSettings:
    """CliSettings from `.env`, then the endpoints of a running `tradealgo run`, then the
    environment (which always wins)."""
    run = load_settings(RunSettings)
    endpoints = run.endpoints_file()
    if endpoints_owner_alive(endpoints):
        overrides.setdefault("_env_file", (ENV_FILE, str(endpoints)))
    return load_settings(CliSettings, **overrides)


ENDPOINTS_HEADER = "# written by tradealgo run, pid "


def endpoints_owner_alive(path: Path) -> bool:
    """True when `path` exists and the `tradealgo run` that wrote it still runs (a run killed
    with -9 cannot delete its file; its addresses must not be used)."""
    try:
        first = path.read_text().splitlines()[0]
    except (OSError, IndexError):
        return False
    if not first.startswith(ENDPOINTS_HEADER):
        return False
    try:
        pid = int(first.removeprefix(ENDPOINTS_HEADER).strip())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True
