"""`tradealgo run` (what `make run` calls): the whole system on this machine, Ctrl-C stops it."""

from __future__ import annotations

import argparse
from datetime import date, time
from typing import Any

from services.cli.run.launcher import Launcher
from services.cli.settings import RunSettings
from shared.settings import load_settings


def add_run_options(parser: argparse.ArgumentParser, *, broker: bool = True) -> None:
    """Flags that override RUN_* settings for one run."""
    parser.add_argument("--speed", type=float, help="simulated seconds per wall second (RUN_SPEED)")
    parser.add_argument("--day", type=date.fromisoformat, help="simulated day YYYY-MM-DD (RUN_DAY)")
    parser.add_argument(
        "--start", type=time.fromisoformat, help="simulated start time HH:MM IST (RUN_START_TIME)"
    )
    parser.add_argument("--var-dir", help="state, logs and run files (RUN_VAR_DIR)")
    if broker:
        parser.add_argument(
            "--broker", choices=("auto", "simulator", "kite"), help="RUN_BROKER for this run"
        )
    parser.add_argument(
        "--keep-state",
        action="store_true",
        help="keep the previous simulated run's Redis and ClickHouse state (RUN_RESET_SIMULATION)",
    )


def overrides_from(args: argparse.Namespace) -> dict[str, Any]:
    chosen: dict[str, Any] = {}
    for flag, field in (
        ("speed", "speed"),
        ("day", "day"),
        ("start", "start_time"),
        ("var_dir", "var_dir"),
        ("broker", "broker"),
    ):
        value = getattr(args, flag, None)
        if value is not None:
            chosen[field] = value
    if getattr(args, "keep_state", False):
        chosen["reset_simulation"] = False
    return chosen


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "run",
        help="run the whole system here: Redis, ClickHouse, simulator or Kite, the four services",
        description="Without Kite credentials: the simulator replays a real NSE day and the "
        "Gatekeeper trades on paper. With Kite credentials in .env: the same stack against Kite "
        "in the Gatekeeper's configured mode. Ctrl-C stops everything.",
    )
    add_run_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(RunSettings, **overrides_from(args))
    return Launcher(settings).start()
