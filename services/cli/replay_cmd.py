"""`tradealgo replay`: run the whole pipeline over a past trading day, on paper.

    tradealgo replay --date 2024-03-05 [--speed 100] [--start 10:00]
    tradealgo replay --date 2025-02-03 --from-clickhouse     a day recorded by the live system
    tradealgo replay --date 2024-03-05 --data DIR            your own 1-minute files

What it replays, honestly: 1-minute bars of NIFTY 50 and NIFTY BANK (the bundled real NSE files
cover 2024-01-01 to 2024-08-23; --from-clickhouse exports the minute candles the Consumer recorded;
--data reads files named as SIM_NIFTY_MINUTE_FILE / SIM_BANKNIFTY_MINUTE_FILE), turned into ticks
by the simulator's deterministic tick path, with modelled option premiums. Everything downstream
is the production code: the Sentinel logs in to the simulator, the Producer parses the binary
ticker frames, the Consumer builds candles and runs the strategies, the Gatekeeper decides and
fills on paper. It is `tradealgo run` with the simulator forced and the day chosen; its state
starts empty (unless --keep-state) and is kept apart from a real account's.
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

from clickhouse_driver.errors import Error as ClickHouseError

from services.cli import connections
from services.cli.errors import USAGE, CliError
from services.cli.run.launcher import Launcher
from services.cli.run_cmd import add_run_options, overrides_from
from services.cli.settings import RunSettings, load_cli_settings
from shared.settings import load_settings


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="replay a past day through the whole pipeline on paper (simulator)",
        description=(__doc__ or "").split("\n\n", 1)[-1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(parser, broker=False)
    parser.add_argument(
        "--date", dest="replay_day", type=date.fromisoformat, required=True,
        help="the trading day to replay, YYYY-MM-DD",
    )  # fmt: skip
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--from-clickhouse",
        action="store_true",
        help="the minute candles recorded in ClickHouse (CLI_CLICKHOUSE_*), up to that day",
    )
    source.add_argument("--data", type=Path, help="a directory with your own 1-minute files")
    parser.set_defaults(func=run)


def available_days(
    data_dir: Path | None = None, nifty_file: str | None = None
) -> tuple[set[date], str]:
    """The days the simulator's NIFTY minute file holds (and the file it read)."""
    from services.simulator.market_data import bars_by_session_day, read_bars_by_day
    from services.simulator.settings import SimulatorSettings
    from shared.calendar import load_calendar

    sim = load_settings(SimulatorSettings)
    path = (data_dir or sim.data_path()) / (nifty_file or sim.nifty_minute_file)
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


def recorded_day(day: date, var_dir: Path) -> tuple[dict[str, object], Path]:
    """Export the recorded minutes up to `day`; the simulator settings that read them."""
    from services.cli.replay_source import export_recorded_minutes
    from services.simulator.settings import SimulatorSettings

    settings = load_cli_settings()
    sim = load_settings(SimulatorSettings)
    try:
        client = connections.clickhouse_client(settings)
        try:
            exported = export_recorded_minutes(
                client, day, var_dir / "replay" / day.isoformat(),
                sim.data_path() / sim.nifty_daily_file,
            )  # fmt: skip
        finally:
            client.disconnect()
    except (ClickHouseError, OSError, EOFError) as exc:
        raise connections.clickhouse_unreachable(settings, exc) from None
    counts = ", ".join(f"{symbol} {rows:,}" for symbol, rows in exported.rows.items())
    print(f"exported recorded 1-minute candles up to {day} ({counts}) to {exported.data_dir}")
    return {"data_dir": str(exported.data_dir), **exported.files}, exported.data_dir


def run(args: argparse.Namespace) -> int:
    from services.simulator.market_data import DataError

    run_settings = load_settings(RunSettings, **overrides_from(args))
    overrides: dict[str, object] = {}
    data_dir: Path | None = None
    if args.from_clickhouse:
        overrides, data_dir = recorded_day(args.replay_day, Path(run_settings.var_dir))
    elif args.data is not None:
        data_dir = args.data.resolve()
        overrides["data_dir"] = str(data_dir)
    try:
        nifty_file = overrides.get("nifty_minute_file")
        days, source = available_days(data_dir, str(nifty_file) if nifty_file else None)
    except DataError as exc:
        raise CliError(f"cannot read the replay data: {exc}", USAGE) from None
    problem = day_problem(args.replay_day, days, source)
    if problem:
        raise CliError(problem, USAGE)
    settings = load_settings(
        RunSettings, **{**overrides_from(args), "broker": "simulator", "day": args.replay_day}
    )
    return Launcher(settings, simulator_overrides=overrides).start()
