"""`tradealgo replay`: run the whole pipeline over a recorded trading day, on paper.

What it replays, honestly: the simulator's real NSE 1-minute bars of that day (NIFTY 50 and NIFTY
BANK; the bundled files cover 2024-01-01 to 2024-08-23, or your own files through SIM_DATA_DIR),
turned into ticks by its deterministic tick path, with modelled option premiums. Everything
downstream is the production code: the Sentinel logs in to the simulator, the Producer parses the
binary ticker frames, the Consumer builds candles and runs the strategies, the Gatekeeper decides
and fills on paper. It is `tradealgo run` with the simulator forced and the day chosen; trading
state starts empty (unless --keep-state) and is kept apart from a real account's.
"""

from __future__ import annotations

import argparse
from datetime import date

from services.cli.errors import USAGE, CliError
from services.cli.run.launcher import Launcher
from services.cli.run_cmd import add_run_options, overrides_from
from services.cli.settings import RunSettings
from shared.settings import load_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay a recorded day through the whole pipeline on paper (simulator)",
        description=(__doc__ or "").split("\n\n", 1)[-1],
    )
    add_run_options(parser, broker=False)
    parser.add_argument(
        "--date", dest="replay_day", type=date.fromisoformat, required=True,
        help="the trading day to replay, YYYY-MM-DD",
    )  # fmt: skip
    parser.set_defaults(func=run)


def available_days() -> tuple[set[date], str]:
    """The days the simulator's configured minute files hold (and the file it read)."""
    from services.simulator.market_data import bars_by_session_day, read_bars_by_day
    from services.simulator.settings import SimulatorSettings
    from shared.calendar import load_calendar

    sim = load_settings(SimulatorSettings)
    path = sim.data_path() / sim.nifty_minute_file
    days = bars_by_session_day(
        read_bars_by_day(path), load_calendar(sim.market_calendar_path or None)
    )
    return set(days), str(path)


def day_problem(day: date, days: set[date], source: str) -> str | None:
    """Why `day` cannot be replayed, or None."""
    if day in days:
        return None
    if not days:
        return f"{source} holds no trading day"
    first, last = min(days), max(days)
    if first <= day <= last:
        return (
            f"{day} is not in {source}: not a trading day, or missing from the data "
            f"(the data covers {first} to {last} with gaps; never filled with invented bars)"
        )
    return f"{day} is outside {source}, which covers {first} to {last}"


def run(args: argparse.Namespace) -> int:
    from services.simulator.market_data import DataError

    try:
        days, source = available_days()
    except DataError as exc:
        raise CliError(f"cannot read the replay data: {exc}", USAGE) from None
    problem = day_problem(args.replay_day, days, source)
    if problem:
        raise CliError(problem, USAGE)
    overrides = {**overrides_from(args), "broker": "simulator", "day": args.replay_day}
    return Launcher(load_settings(RunSettings, **overrides)).start()
